"""`spar compare`: paired on the same prompts; two sampled runs of one model differ only by chance, a third of the
responses emptied is a significant drop; runs on different data or scorer settings are refused (fast: the fake
backend and made-up responses on the built-in IFEval prompts)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from report_fixtures import score_ifeval, spar, write_responses


def _sampled_run(folder, seed: int):
    assert spar("eval", "--backend", "fake", "--model", "m", "--set", "model.script=report_fixtures:noisy_reply",
                "--data", "quickstart", "--temperature", "0.7", "--seed", str(seed), "--output", folder) == 0
    return folder


def test_two_seeds_of_one_sampled_model_show_no_significant_difference(tmp_path, capsys):
    a, b = _sampled_run(tmp_path / "a", 1), _sampled_run(tmp_path / "b", 2)
    responses = [json.loads(x)["response"] for x in (a / "ifeval" / "samples.jsonl").read_text().splitlines()]
    others = [json.loads(x)["response"] for x in (b / "ifeval" / "samples.jsonl").read_text().splitlines()]
    assert responses != others  # really two different samples
    capsys.readouterr()
    assert spar("compare", a, b, "--json", tmp_path / "cmp.json") == 0
    out = capsys.readouterr().out
    assert "no significant difference on any metric (Holm-adjusted over 5 metrics" in out and "95% CI" in out
    data = json.loads((tmp_path / "cmp.json").read_text())
    assert {m["metric"] for m in data["metrics"]} >= {"prompt_level_strict_acc", "average"}
    for m in data["metrics"]:
        assert m["verdict"] == "no significant difference" and m["low"] <= m["diff"] <= m["high"]
        assert m["low"] < 0 < m["high"] and m["n"] == 26 and m["unit"] == "prompt"
    assert {m["test"] for m in data["metrics"]} == {"McNemar (exact)", "clustered McNemar (Obuchowski)",
                                                     "paired bootstrap"}
    # reproducible: the same seed gives the same intervals
    assert spar("compare", a, b, "--json", tmp_path / "again.json") == 0
    assert json.loads((tmp_path / "again.json").read_text())["metrics"] == data["metrics"]


def test_a_third_of_responses_emptied_is_a_significant_drop(tmp_path, capsys):
    full = score_ifeval(tmp_path / "full", write_responses(tmp_path / "full.jsonl"))
    emptied = score_ifeval(tmp_path / "emptied", write_responses(tmp_path / "emptied.jsonl", emptied_every=3))
    capsys.readouterr()
    assert spar("compare", full, emptied, "--metrics", "prompt_level_strict_acc,inst_level_loose_acc,average",
                "--json", tmp_path / "cmp.json") == 0
    out = capsys.readouterr().out
    assert "A better on 3 of 3 metrics" in out
    rows = {m["metric"]: m for m in json.loads((tmp_path / "cmp.json").read_text())["metrics"]}
    strict = rows["prompt_level_strict_acc"]
    assert strict["a"] == 1.0 and strict["b"] == pytest.approx(17 / 26) and strict["diff"] == pytest.approx(-9 / 26)
    assert strict["high"] < 0 and strict["p"] < 0.01 and strict["verdict"] == "A better"
    assert strict["p"] == pytest.approx(2 / 2 ** 9) and strict["test"] == "McNemar (exact)"  # 9 vs 0 discordant
    assert strict["p"] <= strict["p_holm"] <= 3 * strict["p"] and strict["p_holm"] < 0.05
    assert rows["average"]["verdict"] == "A better"
    # the other way round B is better
    assert spar("compare", emptied, full, "--metrics", "average") == 0
    assert "B better on 1 of 1 metrics" in capsys.readouterr().out


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("spar: error: ") and "\n" not in err, err
    return err


def test_refuses_runs_on_different_data_or_scorer_settings(tmp_path, capsys):
    from evaluators.ifeval import QUICKSTART_FILE

    responses = write_responses(tmp_path / "r.jsonl")
    a = score_ifeval(tmp_path / "a", responses)
    changed = tmp_path / "data.jsonl"
    changed.write_text(QUICKSTART_FILE.read_text() + "\n")  # same prompts, another file (another sha256)
    assert spar("score", "ifeval", "--responses", responses, "--data", changed, "--output", tmp_path / "b") == 0
    capsys.readouterr()
    assert spar("compare", a, tmp_path / "b") == 2
    err = _one_error(capsys)
    assert "different data" in err and "sha256" in err
    c = tmp_path / "c"
    shutil.copytree(a, c)
    record = json.loads((c / "record.json").read_text())
    record["extra"]["scorer"]["loose_variants"] = 7
    (c / "record.json").write_text(json.dumps(record))
    assert spar("compare", a, c) == 2
    err = _one_error(capsys)
    assert "different scorer settings" in err and "loose_variants (8 vs 7)" in err


def test_user_mistakes_are_one_line_errors(tmp_path, capsys):
    a = score_ifeval(tmp_path / "a", write_responses(tmp_path / "r.jsonl"))
    (tmp_path / "empty").mkdir()
    no_samples = tmp_path / "no-samples"
    shutil.copytree(a, no_samples)
    (no_samples / "samples.jsonl").unlink()
    capsys.readouterr()
    cases = [((tmp_path / "missing", a), "no such folder"),
             ((tmp_path / "empty", a), "not a run folder"),
             ((a, no_samples), "run without samples"),
             ((a, a, "--metrics", "nope"), "unknown metric 'nope'"),
             ((a, a, "--resamples", "0"), "--resamples must be at least 1")]
    for args, message in cases:
        assert spar("compare", *args) == 2, args
        assert message in _one_error(capsys)


def test_runs_on_different_prompts_need_intersect(tmp_path, capsys):
    a = _sampled_run(tmp_path / "a", 1)
    assert spar("eval", "--backend", "fake", "--model", "m", "--set", "model.script=report_fixtures:noisy_reply",
                "--data", "quickstart", "--temperature", "0.7", "--seed", "2", "--limit", "20",
                "--output", tmp_path / "b") == 0
    capsys.readouterr()
    assert spar("compare", a, tmp_path / "b") == 2
    assert "different units" in _one_error(capsys)
    assert spar("compare", a, tmp_path / "b", "--intersect", "--metrics", "average", "--json",
                tmp_path / "cmp.json") == 0
    assert json.loads((tmp_path / "cmp.json").read_text())["metrics"][0]["n"] == 20


# ------------------------------------------------------------------------------------------ error rates, simulated
def _ifeval_runs(rng, prompts: int, sizes, difficulty, drop: float = 0.0) -> list[dict]:
    """Per-sample IFEval records of one run: instruction j of prompt i is followed (strict) with probability
    difficulty[i] - drop, so a prompt's instructions are correlated; loose adds a 30% second chance."""
    strict = rng.random((prompts, sizes.max())) < (difficulty - drop)[:, None]
    loose = strict | (rng.random(strict.shape) < 0.3)
    out = []
    for i in range(prompts):
        s, lo = [bool(x) for x in strict[i, :sizes[i]]], [bool(x) for x in loose[i, :sizes[i]]]
        out.append({"key": i, "prompt": f"p{i}", "follow_all_instructions_strict": all(s),
                    "follow_all_instructions_loose": all(lo), "follow_instruction_list_strict": s,
                    "follow_instruction_list_loose": lo})
    return out


def _overall_rate(sims: int, drop: float, seed: int) -> tuple[float, list[str]]:
    from evaluators.ifeval import METRICS
    from harness.reports.compare import adjust, compare_samples, overall_verdict

    rng = np.random.default_rng(seed)
    prompts = 60
    hits, lines = 0, []
    for _ in range(sims):
        sizes = rng.integers(1, 4, size=prompts)
        difficulty = rng.beta(4, 2, size=prompts)
        a, b = _ifeval_runs(rng, prompts, sizes, difficulty), _ifeval_runs(rng, prompts, sizes, difficulty, drop)
        rows = adjust([compare_samples("ifeval", m, a, b, n_resamples=400, seed=int(rng.integers(1 << 30)))
                       for m in (*METRICS, "average")])
        line = overall_verdict(rows)
        hits += not line.startswith("no significant difference")
        lines.append(line)
    return hits / sims, lines


def test_overall_verdict_holds_alpha_on_runs_of_one_distribution():
    """300 pairs of runs drawn from one distribution (60 prompts, 1-3 correlated instructions each, 5 metrics):
    the overall line claims a difference at most alpha of the time (within Monte-Carlo error)."""
    sims, alpha = 300, 0.05
    rate, lines = _overall_rate(sims, 0.0, seed=7)
    assert rate <= alpha + 2.5 * math.sqrt(alpha * (1 - alpha) / sims), rate
    assert all("Holm-adjusted over 5 metrics, alpha 0.05" in line for line in lines)


def test_planted_drops_are_found():
    """B follows each instruction with probability 0.35 lower: found (A better) in at least 90% of 40 pairs."""
    rate, lines = _overall_rate(40, 0.35, seed=8)
    assert rate >= 0.9 and all("B better" not in line for line in lines), rate


def test_each_row_names_its_unit_and_test(tmp_path, capsys):
    full = score_ifeval(tmp_path / "full", write_responses(tmp_path / "full.jsonl"))
    emptied = score_ifeval(tmp_path / "emptied", write_responses(tmp_path / "emptied.jsonl", emptied_every=3))
    capsys.readouterr()
    assert spar("compare", full, emptied, "--json", tmp_path / "cmp.json") == 0
    out = capsys.readouterr().out
    assert "McNemar (exact)" in out and "clustered McNemar" in out and "paired bootstrap" in out
    assert "Holm p" in out and "instructions in" in out
    data = json.loads((tmp_path / "cmp.json").read_text())
    assert data["correction"] == "holm" and data["overall"].startswith("A better on 5 of 5 metrics")
    rows = {m["metric"]: m for m in data["metrics"]}
    assert rows["prompt_level_strict_acc"]["test"] == "McNemar (exact)"
    inst = rows["inst_level_loose_acc"]
    assert inst["test"] == "clustered McNemar (Obuchowski)" and inst["unit"] == "prompt"
    assert inst["outcome_unit"] == "instruction" and inst["outcomes"] > inst["n"] == 26
    assert rows["average"]["test"] == "paired bootstrap" and rows["average"]["p"] == rows["average"]["p_bootstrap"]
    ps = [m["p"] for m in data["metrics"]]
    assert max(m["p_holm"] for m in data["metrics"]) >= max(ps) and all(
        m["p_holm"] >= m["p"] for m in data["metrics"])
