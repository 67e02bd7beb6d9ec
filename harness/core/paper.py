"""The SPaR paper's published tables (Cheng et al., ICLR 2025, arXiv v1) as typed rows.

The numbers live in `results/paper/*.csv` (one file per table, percent exactly as printed; see
`results/paper/README.md` for the columns and how each maps to a spar metric key). This module only reads them:

    >>> from harness.core.paper import load_table, find_rows
    >>> rows = load_table("table1")                      # or "table1_ifeval_followbench", or the file name
    >>> row = find_rows("table1", model="SPaR-8B-DPO-iter3")[0]
    >>> row["ifeval.average"], row["iteration"]
    (81.8, 3)

Typing: metric columns are floats (None where the paper prints nothing); `iteration` is an int or None;
`inconsistent_cells` is a list of column names (empty when the row's printed averages match its cells); the other
identifying columns are strings ("" stays "", except that empty `note` is kept as "").

The folder is `results/paper/` next to the `harness` package (the package is installed in editable mode), or the
folder named by the environment variable `SPAR_PAPER_DIR`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from harness.core.errors import SparError

PAPER_DIR_ENV = "SPAR_PAPER_DIR"
#: columns that identify a row or annotate it; every other column is a number (percent) or blank
TEXT_COLUMNS = ("source_table", "base_model", "model", "method", "value_kind", "note")
INT_COLUMNS = ("iteration",)
LIST_COLUMNS = ("inconsistent_cells",)


def paper_dir() -> Path:
    """The folder holding the paper's CSV tables: `$SPAR_PAPER_DIR` when set, else `<repo>/results/paper`."""
    value = os.environ.get(PAPER_DIR_ENV)
    path = Path(value) if value else Path(__file__).resolve().parents[2] / "results" / "paper"
    if not path.is_dir():
        raise SparError(f"paper tables folder {path} does not exist (set {PAPER_DIR_ENV} to the folder holding "
                        "table1_ifeval_followbench.csv and the others)")
    return path


def table_names() -> list[str]:
    """The available tables, as file stems (e.g. 'table1_ifeval_followbench'), in table order."""
    return sorted((p.stem for p in paper_dir().glob("table*.csv")), key=_table_order)


def _table_order(stem: str) -> tuple[int, str]:
    digits = "".join(ch for ch in stem[len("table"):].split("_")[0] if ch.isdigit())
    return (int(digits) if digits else 10**6, stem)


def table_path(name: str) -> Path:
    """The CSV file for `name`: a file name ('table2_llmbar.csv'), a stem ('table2_llmbar') or just the table's
    label ('table2', '2'), matched against the folder's files."""
    folder = paper_dir()
    stem = name[:-4] if name.endswith(".csv") else name
    if (folder / f"{stem}.csv").is_file():
        return folder / f"{stem}.csv"
    label = stem if stem.startswith("table") else f"table{stem}"
    matches = [p for p in sorted(folder.glob("table*.csv")) if p.stem == label or p.stem.startswith(label + "_")]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(table_names())
    if not matches:
        raise SparError(f"no paper table {name!r} in {folder} (known: {known})")
    raise SparError(f"paper table {name!r} is ambiguous in {folder}: {', '.join(p.stem for p in matches)}")


def _convert(column: str, value: str, path: Path, line: int):
    value = value.strip()
    if column in TEXT_COLUMNS:
        return value
    if column in LIST_COLUMNS:
        return [v.strip() for v in value.split(";") if v.strip()]
    if value == "":
        return None
    try:
        return int(value) if column in INT_COLUMNS else float(value.replace("\u2212", "-"))
    except ValueError:
        raise SparError(f"{path}:{line}: column {column!r} must be a number, got {value!r}") from None


def load_table(name: str) -> list[dict]:
    """The rows of paper table `name` (see `table_path` for the accepted names), in the paper's order.

    Each row is a dict keyed by the CSV's columns: floats for numbers (percent, as printed; deltas are negative
    numbers in the ablation tables, whose `value_kind` says 'absolute' or 'delta'), None for blank cells, `iteration`
    as an int or None, `inconsistent_cells` as a list of column names whose printed average does not match the mean
    of the printed cells it averages (explained in `note`), and text for the identifying columns."""
    path = table_path(name)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "model" not in reader.fieldnames:
            raise SparError(f"{path}: not a paper table (no 'model' column)")
        rows = []
        for line, raw in enumerate(reader, 2):
            if None in raw:
                raise SparError(f"{path}:{line}: more cells than columns")
            rows.append({col: _convert(col, raw[col] or "", path, line) for col in reader.fieldnames})
    return rows


def metric_columns(rows: list[dict]) -> list[str]:
    """The numeric (metric) columns of a loaded table, in file order."""
    if not rows:
        return []
    return [c for c in rows[0] if c not in TEXT_COLUMNS + INT_COLUMNS + LIST_COLUMNS]


def find_rows(name: str, **match) -> list[dict]:
    """Rows of table `name` whose columns equal every given value, e.g.
    `find_rows("table2", base_model="LLaMA3-8B-Instruct", method="SPaR-RFT", iteration=3)`."""
    rows = load_table(name)
    for key in match:
        if rows and key not in rows[0]:
            raise SparError(f"paper table {name!r} has no column {key!r}")
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def spar_metric_path(column: str) -> tuple[str, tuple[str, ...]] | None:
    """Where a paper column lives in spar's output: (benchmark, path of keys inside that benchmark's metrics.json),
    e.g. 'llmbar.per_subset.GPTInst.acc' -> ('llmbar', ('per_subset', 'GPTInst', 'acc')). Only dotted columns name
    a spar metric; None for the others (Table 3's acc_gpt / acc_spar are `refinement.accuracy` under a particular
    judge; Table 7's general benchmarks map to `lm-eval:<task>` runs through `results/paper/tables.yaml`)."""
    head, _, rest = column.partition(".")
    if not head or not rest:
        return None
    return head, tuple(rest.split("."))


def run_value(metrics: dict, column: str) -> float | None:
    """The value of paper column `column` in a spar run, in percent (as the paper prints it).

    `metrics` is a run folder's top-level metrics.json (benchmark name -> that benchmark's metrics), or one
    benchmark's own metrics.json (then the column's benchmark prefix is skipped). None when the run lacks it."""
    where = spar_metric_path(column)
    if where is None:
        return None
    benchmark, path = where
    node = metrics.get(benchmark, metrics) if isinstance(metrics, dict) else None
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return 100.0 * node if isinstance(node, (int, float)) and not isinstance(node, bool) else None


#: the paper model `spar tables` compares with unless told otherwise
DEFAULT_PAPER_MODEL = "LLaMA3-8B-Instruct"


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def base_models() -> list[str]:
    """Every `base_model` of the published tables, in order of first appearance."""
    seen: dict[str, None] = {}
    for name in table_names():
        for row in load_table(name):
            seen.setdefault(row["base_model"], None)
    return list(seen)


def resolve_paper_model(name: str | None) -> str:
    """The published base model `name` means: exact, or the one whose name starts with (else contains) `name`,
    ignoring case and punctuation ('llama3-8b', 'mistral', 'glm'); unknown or ambiguous names are errors."""
    known = base_models()
    if not name:
        return DEFAULT_PAPER_MODEL
    if name in known:
        return name
    want = _norm(name)
    for test in (lambda k: _norm(k) == want, lambda k: _norm(k).startswith(want), lambda k: want in _norm(k)):
        matches = [k for k in known if want and test(k)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise SparError(f"paper model {name!r} is ambiguous: {', '.join(matches)}")
    raise SparError(f"no paper model {name!r} (the tables have {', '.join(known)})")


def rows_of_model(tables: list[str] | tuple[str, ...], base_model: str) -> tuple[str | None, list[dict]]:
    """(table, rows) of the first of `tables` that has rows of `base_model` ((None, []) if none has)."""
    for name in tables:
        rows = [r for r in load_table(name) if r["base_model"] == base_model]
        if rows:
            return name, rows
    return None, []
