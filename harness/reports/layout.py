"""Table and figure layouts as data: `results/paper/tables.yaml` (next to the paper's CSV tables; the folder
`$SPAR_PAPER_DIR` when set). The file documents its own keys; this module reads and checks it, so no benchmark or
metric name has to be written in code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import SparError
from harness.core.paper import paper_dir

LAYOUT_FILE = "tables.yaml"
TABLE_KINDS = ("rows", "ablation")
PLOT_KINDS = ("iterations", "scaling", "compute")


@dataclass(frozen=True)
class Column:
    """One column: where its value is in a run (`candidates`: (benchmark, metric path) pairs, the first present
    wins), the published column beside it (`paper`), or the mean of other columns (`mean_of`)."""

    label: str
    candidates: tuple[tuple[str, str], ...] = ()
    paper: str | None = None
    mean_of: tuple[str, ...] = ()

    @property
    def benchmarks(self) -> tuple[str, ...]:
        """The benchmarks the column may come from, in order."""
        return tuple(dict.fromkeys(b for b, _ in self.candidates))


@dataclass(frozen=True)
class TableLayout:
    """One table: its published CSVs, which runs give rows, how rows are paired with published rows, columns."""

    id: str
    title: str
    paper: tuple[str, ...]
    roles: tuple[str, ...]
    columns: tuple[Column, ...]
    partner: dict = field(default_factory=dict)
    kind: str = "rows"
    #: benchmarks whose names start with this (e.g. "lm-eval:") and that no column names get a column of their own
    extra_columns: str = ""
    #: how the paper measured the table: {benchmark: {scorer setting (dotted path in the record's `scorer`): value
    #: or [values]}}; a run scored otherwise gets no published row and no difference
    paper_setting: dict = field(default_factory=dict)
    #: ablation tables: {method or ablation name: the published row's `model` ("w/o Tree Search"), or null for an
    #: ablation the paper does not report (shown, labelled as not in the paper)}
    ablation_rows: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PlotLayout:
    """One figure: panels of (label, column), which runs feed it, and the published references."""

    id: str
    title: str
    kind: str
    panels: tuple[Column, ...]
    role: str = ""
    paper: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """Every table and figure layout of one layout file."""

    tables: tuple[TableLayout, ...]
    plots: tuple[PlotLayout, ...]
    path: Path
    #: units of each benchmark's full data set ({ifeval: 541, ...}): runs on fewer get no published row
    full_data: dict = field(default_factory=dict)

    def table(self, table_id: str) -> TableLayout:
        """The table with this id (a one-line error naming the known ids otherwise)."""
        for t in self.tables:
            if t.id == table_id:
                return t
        raise SparError(f"no table {table_id!r} in {self.path} (known: {', '.join(t.id for t in self.tables)})")


def _list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _column(raw: Any, where: str) -> Column:
    if not isinstance(raw, dict) or not isinstance(raw.get("label"), str):
        raise SparError(f"{where}: a column needs a `label`")
    label = raw["label"]
    if raw.get("mean_of"):
        return Column(label, (), raw.get("paper"), tuple(str(x) for x in _list(raw["mean_of"])))
    metric = raw.get("metric")
    if metric is None:
        raise SparError(f"{where}: column {label!r} needs `metric` or `mean_of`")
    if "benchmark" in raw:
        candidates = tuple((str(b), str(m)) for b in _list(raw["benchmark"]) for m in _list(metric))
        paper = raw.get("paper")
    else:
        pairs = []
        for m in _list(metric):
            bench, _, path = str(m).partition(".")
            if not path:
                raise SparError(f"{where}: column {label!r}: metric {m!r} is not '<benchmark>.<key>'")
            pairs.append((bench, path))
        candidates = tuple(pairs)
        paper = raw.get("paper", _list(metric)[0])
    return Column(label, candidates, str(paper) if paper else None)


def _mapping(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SparError(f"{where}: `{key}` must be a mapping")
    return dict(value)


def load_layout(path: str | Path | None = None) -> Layout:
    """The layouts in `path` (default: `tables.yaml` in the paper folder)."""
    import yaml

    path = Path(path) if path else paper_dir() / LAYOUT_FILE
    if not path.is_file():
        raise SparError(f"{path}: no table layout file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SparError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    tables = []
    for i, raw in enumerate(data.get("tables") or []):
        where = f"{path}: tables[{i}]"
        if not isinstance(raw, dict) or "id" not in raw:
            raise SparError(f"{where}: a table needs an `id`")
        kind = raw.get("kind", "rows")
        if kind not in TABLE_KINDS:
            raise SparError(f"{where}: kind {kind!r} (choose from {', '.join(TABLE_KINDS)})")
        columns = tuple(_column(c, where) for c in raw.get("columns") or [])
        labels = {c.label for c in columns}
        for c in columns:
            missing = [x for x in c.mean_of if x not in labels]
            if missing:
                raise SparError(f"{where}: column {c.label!r} averages unknown columns {missing}")
        tables.append(TableLayout(str(raw["id"]), str(raw.get("title", f"Table {raw['id']}")),
                                  tuple(_list(raw.get("paper"))), tuple(str(r) for r in _list(raw.get("roles"))),
                                  columns, dict(raw.get("partner") or {}), kind,
                                  str(raw.get("extra_columns") or ""),
                                  _mapping(raw, "paper_setting", where), _mapping(raw, "ablation_rows", where)))
    plots = []
    for i, raw in enumerate(data.get("plots") or []):
        where = f"{path}: plots[{i}]"
        if not isinstance(raw, dict) or "id" not in raw:
            raise SparError(f"{where}: a plot needs an `id`")
        if raw.get("kind") not in PLOT_KINDS:
            raise SparError(f"{where}: kind {raw.get('kind')!r} (choose from {', '.join(PLOT_KINDS)})")
        plots.append(PlotLayout(str(raw["id"]), str(raw.get("title", raw["id"])), raw["kind"],
                                tuple(_column(c, where) for c in raw.get("panels") or []), str(raw.get("role", "")),
                                dict(raw.get("paper") or {})))
    full = _mapping(data, "full_data", str(path))
    for bench, count in full.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise SparError(f"{path}: full_data.{bench}: expected a number of units, got {count!r}")
    return Layout(tuple(tables), tuple(plots), path, full)
