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
    searched = [s for s in samples if s["tree_search"] is not None]
    assert searched  # the scripted judge rejects most first answers
    for s in searched:
        assert s["response"] != s["tree_search"]["original_response"]
        assert s["response"].startswith(s["tree_search"]["original_response"])  # the scripted refiner appends
    for s in samples:
        if s["tree_search"] is None:
            assert s["response"].startswith("answer ")  # accepted as the actor wrote it
    record = json.loads((out / "record.json").read_text())
    counts = record["benchmarks"]["ifeval"]["tree_search"]["counts"]
    assert counts["answers"] == 4 and counts["searched"] == len(searched)
    assert record["benchmarks"]["ifeval"]["tree_search"]["config"]["algorithm"] == "bfs"
