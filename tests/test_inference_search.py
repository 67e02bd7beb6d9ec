"""Inference-time tree search: rejected answers are refined by the refiner's search before scoring."""

from __future__ import annotations

import json

from tests.conftest import run_spar


def test_eval_with_tree_search_replaces_rejected_answers(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    proc = run_spar("eval", "--benchmarks", "ifeval", "--data", "quickstart", "--limit", "4", "--model",
                    str(tiny_model_dir), "--backend", "tests.fakes:SelfPlayBackend", "--tree-search", "bfs",
                    "--tree-search-votes", "3", "--output", str(out), "--cache", str(tmp_path / "c.sqlite"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    samples = [json.loads(line) for line in (out / "ifeval" / "samples.jsonl").read_text().splitlines()]
    searched = [s for s in samples if s["decode"]["searched"]]
    assert searched  # the scripted judge rejects most first answers
    for s in searched:
        assert s["response"] != s["decode"]["original_response"]
        assert s["response"].startswith(s["decode"]["original_response"])  # the scripted refiner appends
        assert s["decode"]["generations"] >= 1
    for s in samples:
        if not s["decode"]["searched"]:
            assert s["response"].startswith("answer ")  # accepted as the actor wrote it
    record = json.loads((out / "record.json").read_text())
    counts = record["benchmarks"]["ifeval"]["decode"]["counts"]
    assert counts["answers"] == 4 and counts["searched"] == len(searched)
    assert record["benchmarks"]["ifeval"]["decode"]["config"]["algorithm"] == "bfs"
    assert record["config"]["decode"]["strategy"] == "bfs"


def _decode_run(tmp_path, *flags):
    from harness.commands import main

    out = tmp_path / "run"
    assert main(["eval", "--benchmarks", "ifeval", "--data", "quickstart", "--limit", "5", "--model", "m",
                 "--backend", "fake", "--set", "model.script=selfplay", "--decode-votes", "3", *flags,
                 "--output", str(out), "--cache", str(tmp_path / "c.sqlite")]) == 0
    samples = [json.loads(line) for line in (out / "ifeval" / "samples.jsonl").read_text().splitlines()]
    return samples, json.loads((out / "record.json").read_text())["benchmarks"]["ifeval"]["decode"]


def test_best_of_n_picks_the_highest_yes_fraction(tmp_path):
    samples, decode = _decode_run(tmp_path, "--decode", "best-of-n", "--budget", "4")
    assert decode["strategy"] == "best-of-n" and decode["budget"] == 4 and decode["generations_per_prompt"] == 4
    for s in samples:
        d = s["decode"]
        assert d["generations"] == 4 and len(d["values"]) == 4
        assert d["values"][d["chosen"]] == max(d["values"])


def test_iterative_refinement_stays_within_the_budget(tmp_path):
    samples, decode = _decode_run(tmp_path, "--decode", "iterative", "--budget", "3")
    assert all(1 <= s["decode"]["generations"] <= 3 for s in samples)
    assert decode["counts"]["generations"] == sum(s["decode"]["generations"] for s in samples)
    refined = [s for s in samples if s["decode"]["changed"]]
    assert refined and all("+" in s["response"] for s in refined)  # the scripted refiner marks its refinements


def test_a_tied_first_vote_is_rejudged_and_the_root_critique_agrees_with_no():
    from harness.core.backends.fake import FakeBackend, selfplay_reply
    from harness.core.types import Completion
    from training.inference_search import refine_answers
    from training.tree_search import SearchConfig

    first_seeds: dict[str, list[int]] = {}

    def reply(r, j):
        text = r.messages[-1].content
        if text.startswith("Please act an expert") and "tied" in text:
            first_seeds.setdefault("tied", []).append(r.seed) if j == 0 else None
            return "Final Judgement: " + ("Yes" if j % 2 else "No")  # always a tie
        if text.startswith("Please act an expert") and "late" in text and "+" not in text:
            seeds = first_seeds.setdefault("late", [])
            if j == 0:
                seeds.append(r.seed)
            if len(seeds) == 1:
                return "Final Judgement: " + ("Yes" if j % 2 else "No")  # the first attempt ties
            return f"Step {j}. Final Judgement: No"
        return selfplay_reply(r, j)

    backend = FakeBackend(reply=reply)
    cfg = SearchConfig(votes=2, max_depth=1)
    decoded = refine_answers(["Say tied things.", "Say late things."],
                             [Completion("tied answer"), Completion("late answer")], cfg, backend.generate)
    out, details, counts = decoded.responses, decoded.details, decoded.counts
    assert len(set(first_seeds["tied"])) == 3  # 3 attempts in all, each its own seed
    assert out[0] == "tied answer" and details[0]["searched"] is False and details[0]["first_attempts"] == 3
    assert details[0]["reason"] == "tied judgments" and details[0]["judge_requests"] == 3
    assert details[1]["searched"] is True and details[1]["first_attempts"] == 2
    assert details[1]["first_vote"]["critique"] == "Step 0. Final Judgement: No"  # consistent with the No verdict
    assert counts["unresolved_ties"] == 1 and counts["searched"] == 1 and counts["answers"] == 2
