"""FollowBench, LLMBar and refinement end to end through the CLI on a tiny model (model and judge)."""

from __future__ import annotations

import json

from conftest import run_spar


def test_eval_followbench_llmbar_refinement(tiny_model_dir, fb_dir, llmbar_dir, tmp_path):
    out = tmp_path / "run"
    proc = run_spar("eval", "--benchmarks", "followbench,llmbar,refinement", "--model", str(tiny_model_dir),
                    "--judge", str(tiny_model_dir), "--limit", "5", "--max-new-tokens", "12",
                    "--judge-max-new-tokens", "12", "--bench", "followbench.categories=content,example",
                    "--data", f"followbench={fb_dir},llmbar={llmbar_dir}", "--cache", str(tmp_path / "c.sqlite"),
                    "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "ssr_avg" in proc.stdout and "Overall avg acc" in proc.stdout and "accuracy" in proc.stdout
    assert "FollowBench per category" in proc.stdout  # the paper's per-category view is printed too
    record = json.loads((out / "record.json").read_text())
    assert record["status"] == "finished"
    fb = record["benchmarks"]["followbench"]
    assert fb["judge"]["generation_stats"]["requests"] == 5  # the five LLM-judged content items
    for name, n in (("followbench", 10), ("llmbar", 20), ("refinement", 5)):
        samples = (out / name / "samples.jsonl").read_text().splitlines()
        assert len(samples) == n, name
        assert json.loads((out / name / "metrics.json").read_text()) == json.loads((out / "metrics.json").read_text())[name]
    llmbar = json.loads((out / "llmbar" / "metrics.json").read_text())
    assert llmbar["counts"]["pairs"] == 20 and 0.0 <= llmbar["overall_acc"] <= 1.0


def test_score_followbench_with_a_judge(tiny_model_dir, fb_dir, tmp_path):
    responses = tmp_path / "r.jsonl"
    rows = [{"prompt": f"content {e} L{k}", "response": "The storm is coming."} for e in (1, 2) for k in range(1, 6)]
    responses.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_spar("score", "followbench", "--responses", str(responses), "--data", str(fb_dir),
                    "--bench", "followbench.categories=content", "--judge", str(tiny_model_dir),
                    "--judge-max-new-tokens", "8", "--cache", str(tmp_path / "c.sqlite"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["counts"] == {"items": 10, "llm_judged": 5, "rule_scored": 5,
                                 "invalid_judgments": metrics["counts"]["invalid_judgments"]}
    assert metrics["per_category"]["content"]["hsr"]["1"] in (0.5, 1.0)  # the xsum item passes level 1 by rule
    record = json.loads((tmp_path / "o" / "record.json").read_text())
    assert record["benchmarks"]["followbench"]["judge"]["generation_stats"]["requests"] == 5
