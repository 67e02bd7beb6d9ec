"""The SPaR paper's tables (results/paper/*.csv): the averages the paper prints agree with its own cells, the loader
types the rows, and the tables agree with each other where they repeat numbers."""

from __future__ import annotations

import shutil

import pytest

from harness.core.errors import SparError
from harness.core.paper import (find_rows, load_table, metric_columns, paper_dir, run_value, spar_metric_path,
                                table_names)

TOL = 0.051  # a printed average rounded from the mean of the printed cells is off by at most 0.05
ROUNDING_REACH = 0.101  # averages of unrounded cells: up to 0.05 from the cells plus 0.05 from the average
IFEVAL4 = ["ifeval.prompt_level_loose_acc", "ifeval.inst_level_loose_acc", "ifeval.prompt_level_strict_acc",
           "ifeval.inst_level_strict_acc"]
ADV = [f"llmbar.per_subset.{s}" for s in ("GPTInst", "GPTOut", "Manual", "Neighbor")]
TABLES = ["table1_ifeval_followbench", "table2_llmbar", "table3_refinement", "table4_ablations",
          "table5_refiner_ablations", "table6_ifeval_followbench_full", "table7_general", "table8_llmbar_mistral"]


def _averages(row: dict) -> list[tuple[str, list[str]]]:
    """(printed average column, the columns it is the mean of) for every average this row prints."""
    out = []
    if "ifeval.average" in row:
        out.append(("ifeval.average", IFEVAL4))
    if "followbench.ssr_lv1" in row:
        out.append(("followbench.ssr_avg", [f"followbench.ssr_lv{k}" for k in range(1, 6)]))
    if "llmbar.overall_acc" in row:
        for m in ("acc", "f1"):
            out.append((f"llmbar.adversarial_{m}", [f"{a}.{m}" for a in ADV]))
            out.append((f"llmbar.overall_{m}", [f"llmbar.natural_{m}"] + [f"{a}.{m}" for a in ADV]))
    if "gsm8k" in row:
        out.append(("average", ["gsm8k", "triviaqa", "mmlu", "humaneval"]))
    return out


def _checks():
    for table in TABLES:
        for row in load_table(table):
            for target, parts in _averages(row):
                yield pytest.param(table, row, target, parts, id=f"{table}:{row['base_model']}:{row['model']}:{target}")


def test_all_tables_present_and_typed():
    assert table_names() == TABLES
    for table in TABLES:
        rows = load_table(table)
        assert rows, table
        for row in rows:
            assert {"source_table", "base_model", "model", "method", "iteration", "inconsistent_cells",
                    "note"} <= set(row)
            assert row["source_table"] == table[len("table")]
            assert row["iteration"] is None or row["iteration"] in (0, 1, 2, 3)
            assert isinstance(row["inconsistent_cells"], list)
            for col in metric_columns(rows):
                assert row[col] is None or isinstance(row[col], float), (table, row["model"], col)
            for cell in row["inconsistent_cells"]:
                assert cell in row and cell in row["note"]
        keys = [(r["base_model"], r["model"], r["method"], r["iteration"]) for r in rows]
        assert len(keys) == len(set(keys)), f"{table}: duplicate rows"


@pytest.mark.parametrize("table,row,target,parts", list(_checks()))
def test_printed_average_matches_its_cells(table, row, target, parts):
    mean = sum(row[p] for p in parts) / len(parts)
    diff = abs(row[target] - mean)
    if target in row["inconsistent_cells"]:
        # documented, not hidden: it must really be off (else the note is stale) and the note must say by how much
        assert diff > TOL, f"{target} is listed as inconsistent but matches its cells (off by {diff:.3f})"
        assert f"{mean:.3f}" in row["note"]
        if "genuine inconsistency" not in row["note"].split(target + ":", 1)[1].split(" | ")[0]:
            assert diff <= ROUNDING_REACH, f"{target} off by {diff:.3f}: beyond rounding but not documented so"
        pytest.skip(f"documented in the CSV: {target} printed {row[target]}, mean of cells {mean:.3f}")
    assert diff <= TOL, f"{table} {row['model']}: {target} printed {row[target]}, mean of its cells {mean:.3f}"


def test_documented_inconsistencies():
    found = {(r["source_table"], r["model"], c) for t in TABLES for r in load_table(t) for c in r["inconsistent_cells"]}
    assert found == {
        ("2", "SELF", "llmbar.adversarial_acc"), ("2", "Self-Rewarding", "llmbar.overall_f1"),
        ("2", "SPaR-8B-RFT-iter3", "llmbar.overall_acc"), ("2", "GLM-4-9B-Chat", "llmbar.overall_f1"),
        ("2", "SPaR-9B-SFT", "llmbar.overall_f1"), ("2", "SPaR-9B-RFT-iter3", "llmbar.adversarial_f1"),
        ("6", "Mistral-7B-Instruct", "followbench.ssr_avg"), ("8", "SPaR-7B-SFT", "llmbar.adversarial_f1"),
        ("8", "SPaR-7B-RFT-iter3", "llmbar.adversarial_f1"), ("8", "SPaR-7B-RFT-iter3", "llmbar.overall_f1")}
    genuine = [r for r in load_table("table8") if "genuine inconsistency" in r["note"]]
    assert [r["model"] for r in genuine] == ["SPaR-7B-SFT"]


def test_ablation_first_rows_equal_the_main_tables():
    t4 = load_table("table4")
    assert [r["value_kind"] for r in t4] == ["absolute", "delta", "delta", "delta"]
    main = find_rows("table1", model="SPaR-8B-DPO-iter3")[0]
    for col in ("ifeval.prompt_level_strict_acc", "ifeval.inst_level_strict_acc", "followbench.ssr_avg"):
        assert t4[0][col] == main[col]
    assert all(r[c] < 0 for r in t4[1:] for c in metric_columns(t4))
    t5 = load_table("table5")
    refiner = find_rows("table2", model="SPaR-8B-RFT-iter3")[0]
    for col in ("llmbar.natural_acc", "llmbar.natural_f1", "llmbar.adversarial_acc", "llmbar.adversarial_f1"):
        assert t5[0][col] == refiner[col]


def test_table1_rows_repeated_in_table6_agree():
    t6 = {(r["base_model"], r["model"]): r for r in load_table("table6")}
    repeated = [r for r in load_table("table1") if r["base_model"] != "LLaMA3-8B-Instruct"]
    assert len(repeated) == 6
    for row in repeated:
        other = t6[(row["base_model"], row["model"])]
        assert {k: v for k, v in row.items() if k != "source_table"} == \
               {k: v for k, v in other.items() if k != "source_table"}


def test_table7_gains_and_table3_granularity():
    base = None
    for row in load_table("table7"):
        if row["method"] == "base":
            base = row
            assert row["average_delta"] is None
        else:
            assert row["base_model"] == base["model"]
            assert abs(row["average"] - base["average"] - row["average_delta"]) < 1e-6
    for row in load_table("table3"):
        for col in ("acc_gpt", "acc_spar"):
            assert (2 * row[col]) == int(2 * row[col])  # multiples of 0.5: 200 items


def test_loader_names_and_lookups():
    assert load_table("table2") == load_table("table2_llmbar") == load_table("table2_llmbar.csv") == load_table("2")
    row = find_rows("table1", model="SPaR-8B-DPO-iter3")[0]
    assert row["ifeval.average"] == 81.8 and row["iteration"] == 3 and row["method"] == "SPaR-DPO"
    assert find_rows("table1", model="AutoIF-8B")[0]["note"].startswith("\u2020")
    assert find_rows("table2", base_model="LLaMA3-8B-Instruct", method="SPaR-RFT", iteration=2)[0]["model"] == \
        "SPaR-8B-RFT-iter2"
    assert find_rows("table2", model="GPT-4o-Mini")[0]["method"] == "reference"
    assert find_rows("table1", model="SPaR-8B-SFT")[0]["iteration"] == 0
    assert find_rows("table1", model="SELF")[0]["iteration"] is None
    with pytest.raises(SparError, match="no paper table"):
        load_table("table9")
    with pytest.raises(SparError, match="no column"):
        find_rows("table1", nonsense=1)


def test_spar_metric_mapping():
    assert spar_metric_path("llmbar.per_subset.GPTInst.acc") == ("llmbar", ("per_subset", "GPTInst", "acc"))
    assert spar_metric_path("acc_gpt") is None and spar_metric_path("gsm8k") is None
    run = {"ifeval": {"average": 0.818, "prompt_level_loose_acc": 0.799},
           "llmbar": {"per_subset": {"GPTInst": {"acc": 0.5}}, "overall_f1": 0.631}}
    assert run_value(run, "ifeval.average") == pytest.approx(81.8)
    assert run_value(run, "llmbar.per_subset.GPTInst.acc") == pytest.approx(50.0)
    assert run_value(run["llmbar"], "llmbar.overall_f1") == pytest.approx(63.1)  # one benchmark's metrics.json
    assert run_value(run, "followbench.ssr_avg") is None and run_value(run, "acc_gpt") is None
    # every dotted column of the tables names a key spar's scorers write
    known = {"ifeval": {"prompt_level_loose_acc", "inst_level_loose_acc", "prompt_level_strict_acc",
                        "inst_level_strict_acc", "average"},
             "followbench": {f"ssr_lv{k}" for k in range(1, 6)} | {"ssr_avg"},
             "llmbar": {"natural_acc", "natural_f1", "adversarial_acc", "adversarial_f1", "overall_acc", "overall_f1"}
             | {f"per_subset.{s}.{m}" for s in ("GPTInst", "GPTOut", "Manual", "Neighbor") for m in ("acc", "f1")}}
    for table in TABLES:
        rows = load_table(table)
        for col in metric_columns(rows):
            where = spar_metric_path(col)
            if where is not None:
                assert ".".join(where[1]) in known[where[0]], (table, col)


def test_env_override(tmp_path, monkeypatch):
    shutil.copy(paper_dir() / "table3_refinement.csv", tmp_path / "table3_refinement.csv")
    monkeypatch.setenv("SPAR_PAPER_DIR", str(tmp_path))
    assert table_names() == ["table3_refinement"]
    assert load_table("table3")[0]["acc_gpt"] == 79.0
    (tmp_path / "table3_refinement.csv").write_text("source_table,model,acc_gpt\n3,X,seventy\n")
    with pytest.raises(SparError, match=r"table3_refinement.csv:2: column 'acc_gpt'"):
        load_table("table3")
    monkeypatch.setenv("SPAR_PAPER_DIR", str(tmp_path / "missing"))
    with pytest.raises(SparError, match="SPAR_PAPER_DIR"):
        load_table("table1")


def test_paper_model_names_and_rows():
    from harness.core.paper import DEFAULT_PAPER_MODEL, base_models, resolve_paper_model, rows_of_model

    assert DEFAULT_PAPER_MODEL in base_models() and "Mistral-7B-Instruct" in base_models()
    assert resolve_paper_model(None) == DEFAULT_PAPER_MODEL
    assert resolve_paper_model("mistral") == "Mistral-7B-Instruct"
    assert resolve_paper_model("llama3-70b") == "LLaMA3-70B-Instruct"
    assert resolve_paper_model("GLM-4-9B-Chat") == "GLM-4-9B-Chat"
    with pytest.raises(SparError, match="ambiguous"):
        resolve_paper_model("llama3")
    with pytest.raises(SparError, match="no paper model"):
        resolve_paper_model("gpt-5")
    table, rows = rows_of_model(["table1_ifeval_followbench", "table6_ifeval_followbench_full"],
                                "Mistral-7B-Instruct")
    assert table == "table6_ifeval_followbench_full" and rows and all(r["base_model"] == "Mistral-7B-Instruct"
                                                                       for r in rows)
    assert rows_of_model(["table3_refinement"], "Mistral-7B-Instruct") == (None, [])
