"""`spar tables`: the paper's tables regenerated from run and experiment folders, each measured cell with its
seeded bootstrap interval beside the published number and the difference; ablations as paired differences; lm-eval
benchmarks filling Table 7; Markdown, LaTeX and CSV files; one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from report_fixtures import (add_iteration, llmbar_judgments, make_llmbar_dir, score_ifeval, score_llmbar, spar,
                             write_responses)

IFEVAL_EVERY = {0: 2, 1: 3, 2: 5}  # emptied responses: 50%, 65%, 80% prompt-level accuracy
#: the made-up runs' data sets count as the full benchmarks here, so they sit beside the published rows
FIXTURE_SIZES = "full_data: {ifeval: 26, llmbar: 50}"


@pytest.fixture(autouse=True)
def fixture_sized_benchmarks(tmp_path_factory, monkeypatch):
    """The paper folder with `full_data` set to the fixtures' sizes (SPAR_PAPER_DIR)."""
    import shutil

    from harness.core.paper import paper_dir

    folder = tmp_path_factory.mktemp("paper")
    for f in paper_dir().iterdir():
        if f.is_file():
            shutil.copy(f, folder / f.name)
    text = (folder / "tables.yaml").read_text()
    start = text.index("\nfull_data:") + 1
    end = text.index("\n", start)
    (folder / "tables.yaml").write_text(text[:start] + FIXTURE_SIZES + text[end:])
    monkeypatch.setenv("SPAR_PAPER_DIR", str(folder))
    return folder
LLMBAR_ACC = {0: 0.55, 1: 0.65, 2: 0.75}


def build_experiment(root: Path, work: Path, name: str, iterations: dict, method: str = "spar",
                     ablation: str = "", llmbar: Path | None = None) -> Path:
    """An experiment folder with iter_<t>/eval/actor (IFEval) and, given `llmbar` data, iter_<t>/eval/refiner."""
    exp = root / name
    for t, (every, acc) in iterations.items():
        actor = score_ifeval(work / f"{name}-if-{t}", write_responses(work / f"{name}-if-{t}.jsonl", every))
        add_iteration(exp, t, "actor", [actor], name, method, ablation)
        if llmbar is not None:
            judged = llmbar_judgments(work / f"{name}-lb-{t}.jsonl", llmbar, acc, salt=f"{name}{t}")
            add_iteration(exp, t, "refiner", [score_llmbar(work / f"{name}-lb-{t}", judged, llmbar)], name,
                          method, ablation)
    return exp


@pytest.fixture(scope="module")
def experiment_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("set")
    work = tmp_path_factory.mktemp("work")
    llmbar = make_llmbar_dir(work / "llmbar", pairs=10)
    build_experiment(root, work, "spar-smollm2", {t: (IFEVAL_EVERY[t], LLMBAR_ACC[t]) for t in (0, 1, 2)},
                     llmbar=llmbar)
    build_experiment(root, work, "sr-smollm2", {1: (4, 0.6), 2: (6, 0.6)}, method="self_rewarding",
                     llmbar=llmbar)
    return root


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _paper(model: str, column: str, table: str = "table1") -> float:
    from harness.core.paper import find_rows

    return find_rows(table, base_model="LLaMA3-8B-Instruct", model=model)[0][column]


def test_tables_from_an_experiment_set(experiment_set, tmp_path, capsys):
    out = tmp_path / "tables"
    assert spar("tables", experiment_set, "--output", out, "--no-plots", "--resamples", "500") == 0
    printed = capsys.readouterr().out
    assert "Table 1" in printed and "Table 2" in printed
    for name in ("tables.md", "tables.tex", "tables.csv", "table1.md", "table2.tex", "table2.csv"):
        assert (out / name).is_file(), name
    rows = _csv(out / "tables.csv")
    assert {r["table"] for r in rows} == {"1", "2"}  # no ablation experiment: no Tables 4 and 5
    t1 = [r for r in rows if r["table"] == "1"]
    label = "spar (spar-smollm2) · smollm2-135m-instruct · iter 1 · actor"
    mine = {r["column"]: r for r in t1 if r["row"] == label and r["kind"] == "measured"}
    samples = (experiment_set / "spar-smollm2" / "iter_1" / "eval" / "actor" / "ifeval" / "samples.jsonl")
    strict = [json.loads(x)["follow_all_instructions_strict"] for x in samples.read_text().splitlines()]
    value = float(mine["IFEval P(S)"]["value"])
    assert value == pytest.approx(100 * sum(strict) / len(strict))
    assert float(mine["IFEval P(S)"]["ci_low"]) < value < float(mine["IFEval P(S)"]["ci_high"])
    assert mine["IFEval P(S)"]["n"] == "26" and mine["IFEval P(S)"]["unit"] == "prompt"
    assert mine["FB Avg"]["value"] == ""  # no FollowBench in these runs
    # beside the published row of the same iteration, with the difference
    group = [r for r in t1 if r["column"] == "IFEval Avg"]
    i = next(k for k, r in enumerate(group) if r["row"] == label)
    assert group[i + 1]["row"] == "paper: SPaR-8B-DPO-iter1" and group[i + 1]["kind"] == "paper"
    published = _paper("SPaR-8B-DPO-iter1", "ifeval.average")
    assert float(group[i + 1]["value"]) == published
    assert float(group[i + 2]["value"]) == pytest.approx(float(group[i]["value"]) - published, abs=1e-3)
    # iter_0 is the SFT initialisation; another method is paired with its own published row
    labels = [r["row"] for r in group]
    assert labels[labels.index("spar (spar-smollm2) · smollm2-135m-instruct · iter 0 · actor") + 1] == "paper: SPaR-8B-SFT"
    sr = labels.index("self_rewarding (sr-smollm2) · smollm2-135m-instruct · iter 1 · actor")
    assert labels[sr + 1] == "paper: Self-Rewarding"
    # Table 2: the refiner's LLMBar pairs, stratified by subset
    t2 = [r for r in rows if r["table"] == "2" and r["kind"] == "measured" and r["column"] == "All Acc"]
    assert {r["row"] for r in t2} >= {"spar (spar-smollm2) · smollm2-135m-instruct · iter 2 · refiner"}
    assert all(r["unit"] == "pair" and r["n"] == "50" for r in t2)
    md = (out / "table1.md").read_text()
    assert md.startswith("### Table 1") and "| **spar (spar-smollm2) · smollm2-135m-instruct · iter 1 · actor** |" in md
    tex = (out / "table1.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex and r"{\scriptsize [" in tex


def test_tables_are_reproducible_and_seeded(experiment_set, tmp_path):
    for name in ("a", "b"):
        assert spar("tables", experiment_set, "--output", tmp_path / name, "--no-plots", "--tables", "1",
                    "--resamples", "300", "--seed", "4") == 0
    assert (tmp_path / "a" / "tables.csv").read_text() == (tmp_path / "b" / "tables.csv").read_text()
    assert spar("tables", experiment_set, "--output", tmp_path / "c", "--no-plots", "--tables", "1",
                "--resamples", "300", "--seed", "5") == 0
    assert (tmp_path / "c" / "tables.csv").read_text() != (tmp_path / "a" / "tables.csv").read_text()


def test_default_output_folder_and_paper_model(experiment_set, tmp_path, capsys):
    exp = experiment_set / "spar-smollm2"
    assert spar("tables", exp, "--no-plots", "--tables", "1", "--paper-model", "mistral", "--resamples", "200") == 0
    rows = _csv(exp / "tables" / "tables.csv")
    assert {r["row"] for r in rows if r["kind"] == "paper"} >= {"paper: SPaR-7B-DPO-iter1", "paper: SPaR-7B-SFT"}
    assert "Mistral-7B-Instruct" in capsys.readouterr().out


def test_ablation_table_pairs_each_ablation_with_the_full_model(tmp_path):
    work, root = tmp_path / "work", tmp_path / "set"
    work.mkdir()
    build_experiment(root, work, "spar-full", {1: (0, 0), 2: (5, 0)})
    build_experiment(root, work, "spar-no-iter", {1: (3, 0)}, ablation="no_iterative_training")
    build_experiment(root, work, "spar-no-ts", {2: (4, 0)}, method="spar_no_tree_search")
    assert spar("tables", root, "--tables", "4", "--output", tmp_path / "out", "--no-plots",
                "--resamples", "300") == 0
    rows = [r for r in _csv(tmp_path / "out" / "tables.csv") if r["column"] == "IFEval P(S)"]
    labels = [r["row"] for r in rows]
    full = "spar (spar-full) · smollm2-135m-instruct · iter 2 · actor"
    assert labels[0] == full and labels[1] == "paper: SPaR-8B-DPO-iter3"
    assert float(rows[1]["value"]) == 78.0
    no_iter = labels.index("spar w/o iterative_training (spar-no-iter) · smollm2-135m-instruct · iter 1 · actor"
                           " − full model")
    diff = rows[no_iter]
    assert float(diff["value"]) == pytest.approx(100 * (17 - 20) / 26, abs=1e-3)  # 9 vs 6 of 26 emptied
    assert diff["unit"] == "prompt (paired)" and float(diff["ci_low"]) <= float(diff["value"]) <= float(
        diff["ci_high"])
    assert rows[no_iter + 1]["row"] == "paper: w/o Iterative Training" and float(rows[no_iter + 1]["value"]) == -0.9
    no_ts = next(i for i, x in enumerate(labels) if x.startswith("spar_no_tree_search"))
    assert rows[no_ts + 1]["row"] == "paper: w/o Tree Search" and float(rows[no_ts + 1]["value"]) == -2.0


def _lm_eval_run(folder: Path, scores: dict[str, tuple[str, float]]) -> Path:
    """A made-up run with lm-eval benchmarks: per task a metric key and the share of docs right."""
    folder.mkdir(parents=True)
    metrics, entries = {}, {}
    for task, (key, share) in scores.items():
        name, _, flt = key.partition(",")
        rows = [{"doc_id": i, "filter": flt or "none", name: float(i % 100 < 100 * share)} for i in range(200)]
        bench = f"lm-eval:{task}"
        (folder / bench).mkdir()
        (folder / bench / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        metrics[bench] = {key: sum(r[name] for r in rows) / len(rows)}
        (folder / bench / "metrics.json").write_text(json.dumps(metrics[bench]))
        entries[bench] = {"data": {"hub_id": task, "fingerprint": "x"}, "scorer": {"task": task}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "record.json").write_text(json.dumps({"command": "eval", "status": "finished",
                                                    "config": {"model": {"name": "base-model"}},
                                                    "benchmarks": entries}))
    return folder


def test_general_capabilities_from_lm_eval_benchmarks(tmp_path):
    run = _lm_eval_run(tmp_path / "general", {"gsm8k": ("exact_match,strict-match", 0.7),
                                              "triviaqa": ("exact_match,remove_whitespace", 0.6),
                                              "mmlu": ("acc,none", 0.5), "humaneval": ("pass@1,create_test", 0.4)})
    assert spar("tables", run, "--no-plots", "--resamples", "300") == 0
    rows = _csv(run / "tables" / "tables.csv")
    assert {r["table"] for r in rows} == {"7"}
    measured = {r["column"]: r for r in rows if r["kind"] == "measured"}
    assert float(measured["GSM8k"]["value"]) == pytest.approx(70.0)
    assert float(measured["Average"]["value"]) == pytest.approx(55.0)
    assert float(measured["Average"]["ci_low"]) < 55.0 < float(measured["Average"]["ci_high"])
    assert measured["Average"]["n"] == "800" and measured["GSM8k"]["unit"] == "sample"
    paper = {r["column"]: r for r in rows if r["kind"] == "paper"}
    assert float(paper["GSM8k"]["value"]) == 75.4 and float(paper["Average"]["value"]) == 67.6  # LLaMA3-8B base


def test_any_local_lm_eval_task_gets_a_table7_column(tmp_path):
    """`spar eval --benchmarks lm-eval:<a local task>`: its score appears in Table 7 beside the paper's tasks."""
    run = _lm_eval_run(tmp_path / "local", {"spar_tiny_gen": ("exact_match,strict-match", 0.6),
                                            "gsm8k": ("exact_match,strict-match", 0.5)})
    assert spar("tables", run, "--no-plots", "--resamples", "300") == 0
    measured = {r["column"]: r for r in _csv(run / "tables" / "tables.csv") if r["kind"] == "measured"}
    assert float(measured["spar_tiny_gen (exact_match,strict-match)"]["value"]) == pytest.approx(60.0)
    assert float(measured["GSM8k"]["value"]) == pytest.approx(50.0)


def test_tables_user_mistakes(experiment_set, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    no_samples = tmp_path / "no-samples"
    run = score_ifeval(tmp_path / "run", write_responses(tmp_path / "r.jsonl"))
    cases = [((tmp_path / "missing",), "no such folder"),
             ((tmp_path / "empty",), "not a run or experiment folder"),
             ((experiment_set, "--tables", "9"), "no table '9'"),
             ((experiment_set, "--paper-model", "gpt-5"), "no paper model 'gpt-5'"),
             ((run, "--tables", "2"), "no run has the columns of 2")]
    capsys.readouterr()
    for args, message in cases:
        assert spar("tables", *args, "--no-plots") == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("spar: error: ") and "\n" not in err and message in err, err
    # a run without samples still gets its values, without intervals, and says so
    no_samples.mkdir()
    for name in ("record.json", "metrics.json"):
        (no_samples / name).write_text((run / name).read_text())
    assert spar("tables", no_samples, "--no-plots") == 0
    measured = [r for r in _csv(no_samples / "tables" / "tables.csv") if r["kind"] == "measured"
                and r["value"]]
    assert measured and all(r["ci_low"] == "" and "no samples.jsonl" in r["note"] for r in measured)


def test_layout_columns_exist_in_the_published_tables():
    from harness.core.paper import load_table
    from harness.reports.layout import load_layout

    layout = load_layout()
    assert [t.id for t in layout.tables] == ["1", "2", "3", "4", "5", "7"]
    for table in layout.tables:
        for name in table.paper:
            header = load_table(name)[0]
            for column in table.columns:
                assert column.paper in header, (table.id, name, column.label)
    for plot in layout.plots:
        for name in plot.paper.get("tables", []):
            header = load_table(name)[0]
            for panel in plot.panels:
                assert panel.paper in header, (plot.id, panel.label)


# ------------------------------------------------------------------------------------------ like with like
def _kinds(rows: list[dict], column: str) -> list[tuple[str, str]]:
    return [(r["row"], r["kind"]) for r in rows if r["column"] == column]


def test_runs_not_measured_as_the_paper_get_no_published_row(tmp_path, monkeypatch, capsys):
    """With the real layout: the quickstart's 26 prompts and the fake backend are marked and get no Δ."""
    monkeypatch.delenv("SPAR_PAPER_DIR")
    scored = score_ifeval(tmp_path / "scored", write_responses(tmp_path / "r.jsonl"))
    assert spar("eval", "--backend", "fake", "--model", "m", "--data", "quickstart", "--output",
                tmp_path / "fake") == 0
    capsys.readouterr()
    assert spar("tables", scored, tmp_path / "fake", "--tables", "1", "--no-plots", "--resamples", "200",
                "--output", tmp_path / "out") == 0
    printed = capsys.readouterr().out
    rows = _kinds(_csv(tmp_path / "out" / "tables.csv"), "IFEval Avg")
    assert [k for _, k in rows] == ["measured", "measured"]  # no paper row, no Δ
    labels = [r for r, _ in rows]
    assert labels[0].endswith("[ifeval: 26 of 541 prompts]")
    assert labels[1].endswith("[fake backend; ifeval: 26 of 541 prompts]")
    assert "Δ vs paper" not in printed and "not measured as the paper measured this table" in printed
    assert "not measured as the paper" in (tmp_path / "out" / "table1.md").read_text()


def test_another_llmbar_protocol_gets_its_own_row(tmp_path):
    llmbar = make_llmbar_dir(tmp_path / "llmbar", pairs=10)
    pointwise = score_llmbar(tmp_path / "pointwise", llmbar_judgments(tmp_path / "j.jsonl", llmbar, 0.6), llmbar)
    pairwise = tmp_path / "pairwise"
    shutil.copytree(pointwise, pairwise)
    record = json.loads((pairwise / "record.json").read_text())
    record["extra"]["scorer"]["protocol"] = "pairwise"
    (pairwise / "record.json").write_text(json.dumps(record))
    assert spar("tables", pointwise, pairwise, "--tables", "2", "--no-plots", "--resamples", "200",
                "--output", tmp_path / "out") == 0
    rows = _kinds(_csv(tmp_path / "out" / "tables.csv"), "All Acc")
    assert [k for _, k in rows] == ["measured", "paper", "delta", "measured"]
    assert rows[3][0].endswith("[llmbar protocol pairwise]") and "[" not in rows[0][0]


def test_the_ablation_configs_map_to_the_papers_rows(tmp_path):
    """w/o Tree Search, w/o Refinement, w/o Iterative Training beside their published rows; w/o refiner training
    (and w/o Refinement in Table 5, which has no such row) labelled as not in the paper."""
    work, root = tmp_path / "work", tmp_path / "set"
    work.mkdir()
    llmbar = make_llmbar_dir(work / "llmbar", pairs=10)
    build_experiment(root, work, "full", {1: (5, 0.7)}, llmbar=llmbar)
    build_experiment(root, work, "no-ts", {1: (4, 0.65)}, method="spar_no_tree_search", llmbar=llmbar)
    build_experiment(root, work, "no-ref", {1: (3, 0.6)}, method="spar_no_refinement", llmbar=llmbar)
    build_experiment(root, work, "no-iter", {1: (3, 0.6)}, ablation="no_iterative_training", llmbar=llmbar)
    build_experiment(root, work, "no-rt", {1: (4, 0.6)}, ablation="no_refiner_training", llmbar=llmbar)
    assert spar("tables", root, "--tables", "4,5", "--output", tmp_path / "out", "--no-plots",
                "--resamples", "200") == 0
    rows = _csv(tmp_path / "out" / "tables.csv")

    def partner(table: str, column: str, prefix: str) -> str:
        group = [r for r in rows if r["table"] == table and r["column"] == column]
        i = next(k for k, r in enumerate(group) if r["row"].startswith(prefix))
        return group[i]["row"] + " => " + (group[i + 1]["row"] if i + 1 < len(group) else "")

    t4 = "IFEval P(S)"
    assert partner("4", t4, "spar_no_tree_search").endswith("=> paper: w/o Tree Search")
    assert partner("4", t4, "spar_no_refinement").endswith("=> paper: w/o Refinement")
    assert partner("4", t4, "spar w/o iterative_training").endswith("=> paper: w/o Iterative Training")
    assert "− full model (not in the paper) =>" in partner("4", t4, "spar w/o refiner_training")
    assert "paper:" not in partner("4", t4, "spar w/o refiner_training").split("=>")[1]
    assert partner("5", "Natural Acc", "spar_no_tree_search").endswith("=> paper: w/o Tree Search")
    assert "(not in the paper)" in partner("5", "Natural Acc", "spar_no_refinement")


def test_differences_need_the_same_data_and_scorer(tmp_path):
    from harness.reports import CellMaker, collect_runs, load_layout

    a = score_ifeval(tmp_path / "a", write_responses(tmp_path / "r.jsonl"))
    b = tmp_path / "b"
    shutil.copytree(a, b)
    record = json.loads((b / "record.json").read_text())
    record["extra"]["scorer"]["loose_variants"] = 7
    (b / "record.json").write_text(json.dumps(record))
    run_a, run_b = collect_runs([a, b])
    column = load_layout().table("4").columns[0]
    maker = CellMaker(200)
    assert maker.difference(run_a, run_a, column).value == 0
    cell = maker.difference(run_a, run_b, column)
    assert cell.value is None and cell.note == "no difference: the runs used different scorer settings"


def test_wide_tables_are_printed_whole_when_not_a_terminal(experiment_set, tmp_path, capsys):
    """Piped output is 160 columns wide: Table 2's 14 columns are stacked in parts, none cut or dropped."""
    assert spar("tables", experiment_set, "--tables", "2", "--no-plots", "--resamples", "200",
                "--output", tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 160
    assert "(part 1 of " in printed and "…" not in printed
    for header in ("Natural Acc", "Neighbor F1", "Adv. F1", "All Acc", "All F1"):
        assert header in printed, header
    label = "spar (spar-smollm2) · smollm2-135m-instruct · iter 2 · refiner"
    all_acc = next(r for r in _csv(tmp_path / "out" / "tables.csv") if r["row"] == label and r["column"] ==
                   "All Acc")
    assert f"{float(all_acc['value']):.1f}" in printed.split("All Acc")[1]


def test_view_marks_fake_and_partial_runs(tmp_path, monkeypatch):
    from harness.reports.view import write_view

    monkeypatch.delenv("SPAR_PAPER_DIR")
    assert spar("eval", "--backend", "fake", "--model", "m", "--data", "quickstart", "--output",
                tmp_path / "fake") == 0
    write_view([tmp_path / "fake"], tmp_path / "view.html")
    html = (tmp_path / "view.html").read_text()
    assert "m · eval [fake backend: not a measurement]" in html
    assert "[fake backend; ifeval: 26 of 541 prompts]" in html and "Δ vs paper" not in html


def test_differences_need_the_same_judge():
    """A benchmark scored by a judge model (FollowBench, judged in an experiment by each run's own refiner) is not
    subtracted across runs judged by different models."""
    from harness.reports.cells import _unlike

    class Judged:
        def __init__(self, judge):
            self.judge = judge

        def data_identity(self, bench):
            return ("sha256", "same")

        def scorer(self, bench):
            return {}

        def judge_identity(self, bench):
            return self.judge

    assert _unlike(Judged("refiner-1"), Judged("refiner-1"), "followbench") == ""
    assert _unlike(Judged("refiner-1"), Judged("refiner-2"), "followbench") == "the runs were judged by different models"


def test_a_benchmark_judged_otherwise_loses_only_its_published_cells():
    """Table 1 with FollowBench judged by the run's refiner (the paper used a GPT-4-class judge): the IFEval columns
    keep their published cells and Δ, the FollowBench columns get none; with a GPT-4o judge every column has them."""
    from harness.reports import load_layout
    from harness.reports.cells import Cell
    from harness.reports.tables import _group_rows, blank_columns, mismatch_map

    class Judged:
        fake = False
        metrics = {"ifeval": {}, "followbench": {}}

        def __init__(self, judge):
            self.record = {"models": {"judge": {"model": judge}}}

    layout = load_layout().table("1")
    found = mismatch_map(Judged("results/exp/iter_2/refiner"), layout, {})
    assert found == {"followbench": ["followbench judge results/exp/iter_2/refiner"]}
    blank = blank_columns(layout, found)
    assert [layout.columns[i].label for i in sorted(blank)] == ["FB Lv-1", "FB Lv-2", "FB Lv-3", "FB Lv-4",
                                                                 "FB Lv-5", "FB Avg"]
    paper = {"model": "SPaR-8B-DPO-iter3", "source_table": "table1", **{c.paper: 50.0 for c in layout.columns}}
    cells = [Cell(0.5) for _ in layout.columns]
    rows = _group_rows("run", None, cells, paper, layout.columns, "src", blank)
    published, delta = rows[1].cells, rows[2].cells
    assert all((published[i] is None) == (i in blank) and (delta[i] is None) == (i in blank)
               for i in range(len(layout.columns)))
    assert mismatch_map(Judged("gpt-4o"), layout, {}) == {}
    assert blank_columns(layout, {"": ["fake backend"]}) == set(range(len(layout.columns)))
