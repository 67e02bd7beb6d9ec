"""`spar tables` figures: per-iteration lines for every method of an experiment set (paper Figure 3), the refiner's
LLMBar accuracy per iteration, and the inference-scaling curve when runs decoded at a budget (paper Figure 5);
PNG and SVG; skipped with a reason when there is nothing to draw."""

from __future__ import annotations

import json

import pytest

from report_fixtures import make_llmbar_dir, score_ifeval, spar, write_responses
from test_report import build_experiment

pytest.importorskip("matplotlib")


def _decoded_run(folder, work, name: str, strategy: str, budget: int, every: int):
    run = score_ifeval(folder / f"decode-{name}", write_responses(work / f"{name}.jsonl", every))
    record = json.loads((run / "record.json").read_text())
    record["config"]["decode"] = {"strategy": strategy, "budget": budget}
    (run / "record.json").write_text(json.dumps(record))
    return run


def test_figures_for_an_experiment_set_and_decoded_runs(tmp_path, capsys):
    work, root = tmp_path / "work", tmp_path / "set"
    work.mkdir()
    llmbar = make_llmbar_dir(work / "llmbar", pairs=6)
    build_experiment(root, work, "spar-a", {0: (2, 0.5), 1: (3, 0.6), 2: (5, 0.7)}, llmbar=llmbar)
    build_experiment(root, work, "sr-a", {1: (4, 0.6)}, method="self_rewarding", llmbar=llmbar)
    out = tmp_path / "out"
    assert spar("tables", root, "--output", out, "--resamples", "200") == 0
    printed = capsys.readouterr().out
    plots = out / "plots"
    for name in ("iterations", "refiner"):
        for fmt in ("png", "svg"):
            path = plots / f"{name}.{fmt}"
            assert path.is_file() and path.stat().st_size > 5000, path
    assert (plots / "iterations.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (plots / "iterations.svg").read_text()
    for text in ("self-play iteration", "IFEval average", "spar (spar-a)", "self_rewarding (sr-a)",
                 "paper: SPaR-SFT / SPaR-DPO (LLaMA3-8B-Instruct)"):
        assert text in svg, text
    assert "LLMBar accuracy" in (plots / "refiner.svg").read_text()
    assert not (plots / "scaling.png").exists()
    assert "figure skipped: scaling: no run decoded at a budget" in printed.replace("\n", " ")

    for name, strategy, budget, every in (("greedy", "greedy", 15, 3), ("bon4", "best-of-n", 4, 4),
                                          ("bfs15", "bfs", 15, 8)):
        _decoded_run(root, work, name, strategy, budget, every)
    assert spar("tables", root, "--output", out, "--resamples", "200", "--tables", "1") == 0
    svg = (plots / "scaling.svg").read_text()
    for text in ("generations per prompt", "best-of-n", "bfs", "greedy", "inference tree search"):
        assert text in svg, text
    assert (plots / "scaling.png").stat().st_size > 5000


def test_no_plots_flag(tmp_path):
    run = score_ifeval(tmp_path / "run", write_responses(tmp_path / "r.jsonl"))
    assert spar("tables", run, "--no-plots", "--resamples", "100") == 0
    assert not (run / "tables" / "plots").exists() and (run / "tables" / "tables.md").is_file()
