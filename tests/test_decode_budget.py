"""Decoding at equal budgets (paper Figure 5): every strategy spends at most `--budget` generations per prompt
(actor samples plus refine requests, failed ones included), the ones that can spend it do, the record's counts are
what the backend received, and unparseable judgments are counted with the reason for each choice."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest

from harness.commands import main
from tests import decode_fakes
from tests.decode_fakes import kind

MODES = ("best-of-n", "iterative", "bfs", "dfs")


def _run(tmp_path, script: str, strategy: str, budget: int, *flags: str):
    out = tmp_path / f"{script}-{strategy}-{budget}"
    model = tmp_path / "models" / script  # the counting fake takes its script from the folder's name
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text("{}")
    decode_fakes.RECEIVED.clear()
    assert main(["eval", "--benchmarks", "ifeval", "--data", "quickstart", "--limit", "5", "--model", str(model),
                 "--backend", "tests.decode_fakes:CountingBackend",
                 "--decode", strategy, "--budget", str(budget), "--decode-votes", "3", *flags,
                 "--output", str(out), "--cache", str(out.with_suffix(".sqlite"))]) == 0
    samples = [json.loads(line) for line in (out / "ifeval" / "samples.jsonl").read_text().splitlines()]
    record = json.loads((out / "record.json").read_text())["benchmarks"]["ifeval"]
    return samples, record.get("decode"), list(decode_fakes.RECEIVED)


def _received_per_prompt(samples, received) -> dict[str, Counter]:
    """Per sample prompt: the actor samples, judge and refine requests the backend got for it."""
    counts = {s["prompt"]: Counter() for s in samples}
    for request in received:
        text = "\n".join(m.content for m in request.messages)
        owners = [p for p in counts if p in text]
        assert len(owners) == 1, text[:200]
        what = kind(request)
        counts[owners[0]][what] += request.n if what == "actor" else 1
    return counts


def _check_counts(samples, decode, received):
    per_prompt = _received_per_prompt(samples, received)
    for s in samples:
        got, d = per_prompt[s["prompt"]], s["decode"]
        assert d["generations"] == got["actor"] + got["refine"], (d, got)
        assert d["judge_requests"] == got["judge"], (d, got)
    assert decode["counts"]["generations"] == sum(c["actor"] + c["refine"] for c in per_prompt.values())
    assert decode["counts"]["judge_requests"] == sum(c["judge"] for c in per_prompt.values())
    assert decode["generations_per_prompt"] == decode["counts"]["generations"] / len(samples)


@pytest.mark.parametrize("budget", [1, 5, 30])
@pytest.mark.parametrize("strategy", MODES)
def test_an_always_no_judge_spends_exactly_the_budget(tmp_path, strategy, budget):
    samples, decode, received = _run(tmp_path, "always-no", strategy, budget)
    assert len(samples) == 5
    _check_counts(samples, decode, received)
    for s in samples:
        assert s["decode"]["generations"] == budget, s["decode"]
        assert s["decode"]["invalid_judgments"] == 0
        assert s["decode"]["reason"], s["decode"]
    assert decode["max_generations"] == budget and decode["budget"] == budget
    if strategy in ("bfs", "dfs") and budget > 1:
        tree = decode["config"]["tree"]
        assert not tree["capped"] and tree["capacity"] >= budget - 1
        assert decode["config"]["max_depth"] == (3 if budget == 5 else 6 if strategy == "bfs" else 4)
        assert all(s["decode"]["reason"].startswith("budget spent") for s in samples)
    if strategy == "best-of-n":
        assert set(decode["config"]) >= {"candidates", "votes", "parser"} and "algorithm" not in decode["config"]
        assert all(s["decode"]["chosen"] == 0 and s["finish_reason"] == "length" for s in samples)
    if strategy == "iterative":
        assert "algorithm" not in decode["config"] and "budget" not in decode["config"]
        assert all(s["decode"]["judge_requests"] == budget - 1 for s in samples)  # the last response is not judged
    if strategy != "best-of-n" and budget > 1:  # the returned answer is a refinement: its ending, not the actor's
        assert all(s["finish_reason"] == "stop" and s["completion_tokens"] > 20 for s in samples)


def test_greedy_makes_one_generation(tmp_path):
    samples, decode, received = _run(tmp_path, "always-no", "greedy", 30)
    assert decode is None
    assert Counter(kind(r) for r in received) == Counter(actor=5) and all(r.n == 1 for r in received)


@pytest.mark.parametrize("strategy", ["iterative", "bfs", "dfs"])
def test_failed_refine_requests_count_against_the_budget(tmp_path, strategy):
    samples, decode, received = _run(tmp_path, "flaky-refiner", strategy, 12)
    _check_counts(samples, decode, received)
    flaky = decode_fakes.CountingBackend(SimpleNamespace(path="flaky-refiner"))
    failed = [r for r in received if kind(r) == "refine" and "[[start]]" not in flaky.completion(r, 0).text]
    assert failed  # some refine requests failed, and they are in `generations` above
    for s in samples:
        d = s["decode"]
        assert d["generations"] <= 12
        assert d["generations"] == 12 or d["reason"].startswith("tree exhausted"), d


def test_a_fixed_tree_is_capped_and_says_so(tmp_path):
    samples, decode, received = _run(tmp_path, "always-no", "bfs", 30, "--set", "decode.tree_growth=none")
    _check_counts(samples, decode, received)
    assert decode["config"]["tree"] == {"growth": "none", "configured_max_depth": 3, "max_depth": 3,
                                        "capacity": 15, "capped": True}
    assert all(s["decode"]["generations"] == 16 and s["decode"]["reason"].startswith("tree exhausted")
               for s in samples)
    assert decode["generations_per_prompt"] == 16


@pytest.mark.parametrize("strategy", MODES)
def test_a_judge_that_never_parses_is_counted_and_explained(tmp_path, strategy):
    samples, decode, received = _run(tmp_path, "never-parses", strategy, 5)
    _check_counts(samples, decode, received)
    judged = Counter(kind(r) for r in received)["judge"]
    assert decode["counts"]["invalid_judgments"] == 3 * judged  # 3 votes per judge request, none parsed
    assert decode["counts"]["no_valid_judgment"] == 5
    metrics = json.loads((tmp_path / f"never-parses-{strategy}-5" / "ifeval" / "metrics.json").read_text())
    assert metrics["counts"]["decode_invalid_judgments"] == 3 * judged
    assert metrics["counts"]["decode_no_valid_judgment"] == 5
    for s in samples:
        assert s["decode"]["invalid_judgments"] == 3 * s["decode"]["judge_requests"] > 0
        assert s["decode"]["reason"].startswith("no valid judgment"), s["decode"]
    if strategy == "best-of-n":
        assert all(s["decode"]["values"] == [None] * 5 and s["decode"]["chosen"] == 0 for s in samples)
    else:  # re-judged as a tie (3 attempts), then the answer is kept as written
        assert all(s["decode"]["judge_requests"] == 3 and s["decode"]["generations"] == 1 for s in samples)


def test_best_of_n_returns_the_chosen_candidates_ending(tmp_path):
    samples, decode, _ = _run(tmp_path, "prefers-2", "best-of-n", 4)
    for s in samples:
        assert s["decode"]["chosen"] == 2 and s["decode"]["reason"] == "highest Yes fraction"
        assert s["response"].endswith("cand2") and s["completion_tokens"] == 102


def test_the_scaling_figure_plots_what_each_run_spent(tmp_path):
    pytest.importorskip("matplotlib")
    _run(tmp_path, "always-no", "bfs", 30, "--set", "decode.tree_growth=none")  # capped: spends 16
    _run(tmp_path, "always-no", "best-of-n", 5)
    runs = [p for p in tmp_path.iterdir() if (p / "record.json").is_file()]
    out = tmp_path / "tables"
    assert main(["tables", *map(str, runs), "--output", str(out), "--resamples", "50", "--tables", "1"]) == 0
    svg = (out / "plots" / "scaling.svg").read_text()
    for text in ("spent, at most the decode budget", "budget 30", "bfs", "best-of-n"):
        assert text in svg, text
    assert "<!-- 16 -->" in svg  # the capped run sits at what it spent (an x tick), labelled with its budget


def test_tree_capacity_matches_the_official_trees_and_grows_by_depth():
    from training.inference_search import grow_tree, tree_capacity
    from training.tree_search import SearchConfig

    bfs, dfs = SearchConfig(algorithm="bfs"), SearchConfig(algorithm="dfs")
    assert tree_capacity(bfs, 3) == 15 and tree_capacity(dfs, 3) == 21  # spar-paper.md §1.3b: 3+2x3+2x3, 3+2(3+2x3)
    grown, info = grow_tree(bfs, 30, "depth")
    assert (grown.max_depth, grown.budget, info["capacity"], info["capped"]) == (6, 29, 33, False)
    grown, info = grow_tree(dfs, 16, "depth")  # 15 refinements fit the official depth
    assert grown.max_depth == 3 and not info["capped"]
    grown, info = grow_tree(dfs, 30, "none")
    assert grown.max_depth == 3 and info["capped"] and info["capacity"] == 21
