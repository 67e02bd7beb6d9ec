"""Adding a benchmark with its own option touches nothing in harness/: a test-local module plus one register call,
run through `spar eval` and `spar score`, with the option set by --bench and checked like any other."""

from __future__ import annotations

import json

import pytest

import evaluators
from harness.commands import main


@pytest.fixture
def toy():
    evaluators.register("toy", "toy_benchmark:ToyEvaluator")
    yield
    evaluators.REGISTRY.pop("toy", None)


def test_toy_benchmark_through_eval_and_score(toy, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--benchmarks", "toy", "--model", "m", "--backend", "fake", "--bench", "toy.min_words=2",
                 "--output", str(out), "--cache", str(tmp_path / "c.sqlite")]) == 0
    metrics = json.loads((out / "toy" / "metrics.json").read_text())
    assert metrics["pass_rate"] == 1.0 and metrics["min_words"] == 2  # the fake echo answers have two words
    assert "pass_rate" in capsys.readouterr().out

    responses = tmp_path / "r.jsonl"
    responses.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in
                                 zip(["Say hello.", "Name a colour.", "Count to three."], ["hi", "deep blue", "1 2 3"])))
    assert main(["score", "toy", "--responses", str(responses), "--bench", "toy.min_words=3",
                 "--output", str(tmp_path / "score")]) == 0
    metrics = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert metrics["pass_rate"] == pytest.approx(1 / 3) and metrics["min_words"] == 3
    record = json.loads((tmp_path / "score" / "record.json").read_text())
    assert record["status"] == "finished" and record["config"]["bench"] == {"toy": {"min_words": 3}}


def test_toy_option_is_checked_before_work(toy, tmp_path, capsys):
    assert main(["eval", "--benchmarks", "toy", "--model", "m", "--backend", "fake", "--bench", "toy.min_words=0",
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--bench toy.min_words" in err and "greater than or equal to 1" in err
    assert not (tmp_path / "o").exists()
