"""The paper's tables regenerated from runs: each measured row beside its published row, with the difference.

`build_tables(runs, layout, ...)` gives one `Table` per layout table that has at least one run with its columns.
A row is labelled from the run records (`Run.label`: method, model, iteration, role), never typed by hand. Which
published row sits beside a measured one is the layout's `partner` rule (see results/paper/tables.yaml), and only
when the run was measured as the paper measured the table (`mismatches`: not the fake backend, the full data set,
the table's `paper_setting`); otherwise the row is labelled with what differs and has no published row or Δ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from evaluators import uncertainty
from harness.core.errors import SparError
from harness.core.paper import rows_of_model
from harness.reports.cells import Cell, CellMaker
from harness.reports.layout import Column, Layout, TableLayout
from harness.reports.runs import Run, find_metric

MEASURED, PAPER, DELTA = "measured", "paper", "delta"
UNLIKE_NOTE = ("rows marked [...] were not measured as the paper measured this table (what differs is in the "
               "brackets): no published cell or Δ beside what differs (no published row when nothing is left)")
NOT_IN_PAPER = "not in the paper"


@dataclass
class Row:
    """One printed row: `kind` measured (cells with intervals), paper (published numbers, percent as printed) or
    delta (measured - published, percentage points)."""

    label: str
    kind: str
    cells: list
    source: str = ""


@dataclass
class Table:
    """One regenerated table: its columns and rows (measured, paper, delta), notes for the caption."""

    id: str
    title: str
    columns: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    paper_table: str | None = None
    paper_model: str = ""


def _norm(text: str) -> str:
    text = text.lower().replace("w/o", "wo").replace("without", "wo")
    text = re.sub(r"(?<![a-z])no[-_ ]", "wo", text)
    return re.sub(r"[^a-z0-9]", "", text)


def _paper_value(row: dict | None, column: Column) -> float | None:
    if row is None or not column.paper:
        return None
    value = row.get(column.paper)
    return float(value) if isinstance(value, (int, float)) else None


def _partner(run: Run, layout: TableLayout, paper_rows: list[dict]) -> dict | None:
    """The published row a measured run sits beside (see the layout's `partner`): a method the paper has (by
    name, ignoring case and punctuation) is paired with that method's row; otherwise by the partner rule."""
    config = run.experiment.config if run.experiment else run.config
    method = config.get("method")
    full = layout.partner.get("full_method", "")
    if isinstance(method, str) and method and _norm(method) != _norm(full) and not \
            (run.experiment and run.experiment.ablation):
        named = [r for r in paper_rows if _norm(r["method"]) == _norm(method)
                 and (r["iteration"] is None or run.iteration is None or r["iteration"] == run.iteration)]
        if named:
            return named[-1]
        if run.experiment is not None:
            return None  # a method the paper does not report
    rule = layout.partner
    if run.experiment is not None:
        t = run.iteration
        which = rule.get("init") if t == 0 else rule.get("iteration")
        matches = [r for r in paper_rows if which and r["method"] == which and (t == 0 or r["iteration"] == t)]
    else:
        which = rule.get("standalone")
        matches = [r for r in paper_rows if which and r["method"] == which]
    return matches[0] if matches else None


def _units(run: Run, bench: str) -> int | None:
    """How many units (prompts, pairs, example groups) the run scored on `bench`: from its samples, else the
    record's item count."""
    if run.has_samples(bench):
        try:
            return len(uncertainty.records_for(bench).units(run.samples(bench)))
        except SparError:
            pass
    count = (run.entry(bench).get("data") or {}).get("num_items")
    return count if isinstance(count, int) else None


def _judge_names(run: Run) -> set[str]:
    judge = (run.record.get("models") or {}).get("judge")
    judge = judge if isinstance(judge, dict) else {}
    return {str(judge[k]) for k in ("model", "name", "identity") if judge.get(k)}


def mismatch_map(run: Run, layout: TableLayout, full_data: dict) -> dict[str, list[str]]:
    """What in the run's cells of this table is not measured as the paper measured it, by benchmark ("" for the
    whole row): the fake backend (or a dry run), fewer units than the full data set, or a scorer setting / judge
    other than the table's `paper_setting`. Empty: comparable."""
    out: dict[str, list[str]] = {"": ["fake backend"]} if run.fake else {}
    benches = dict.fromkeys(b for c in layout.columns for b in c.benchmarks if b in run.metrics)
    for bench in benches:
        reasons, full, units = [], full_data.get(bench), None
        if full:
            units = _units(run, bench)
        if units is not None and units != full:
            reasons.append(f"{bench}: {units} of {full} {uncertainty.records_for(bench).unit}s")
        for path, wanted in (layout.paper_setting.get(bench) or {}).items():
            allowed = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
            if path == "judge":
                names = _judge_names(run)
                if not names & set(allowed):
                    reasons.append(f"{bench} judge {min(names) if names else 'none'}")
                continue
            value = find_metric(run.scorer(bench), path)
            if str(value) not in allowed:
                reasons.append(f"{bench} {path} {value if value is not None else 'not recorded'}")
        if reasons:
            out[bench] = reasons
    return out


def mismatches(run: Run, layout: TableLayout, full_data: dict) -> list[str]:
    """`mismatch_map`'s reasons in one list (what a row's label shows in brackets)."""
    return [r for reasons in mismatch_map(run, layout, full_data).values() for r in reasons]


def blank_columns(layout: TableLayout, *maps: dict[str, list[str]]) -> set[int]:
    """The columns whose published cells and differences must stay blank: every column when a map holds a
    row-wide reason, else the columns of a benchmark measured otherwise than the paper."""
    if any("" in m for m in maps):
        return set(range(len(layout.columns)))
    benches = {b for m in maps for b in m}
    return {i for i, c in enumerate(layout.columns) if benches & set(c.benchmarks)}


def _comparable(cells: list[Cell], blank: set[int]) -> bool:
    """Whether any measured cell may sit beside a published one."""
    return any(cell.value is not None and i not in blank for i, cell in enumerate(cells))


def _marked(label: str, reasons: list[str]) -> str:
    return f"{label} [{'; '.join(reasons)}]" if reasons else label


def _group_rows(label: str, run: Run, cells: list[Cell], paper: dict | None, columns: tuple[Column, ...],
                source: str, blank: set[int] = frozenset()) -> list[Row]:
    rows = [Row(label, MEASURED, cells, source)]
    if paper is None:
        return rows
    published = [None if i in blank else _paper_value(paper, c) for i, c in enumerate(columns)]
    rows.append(Row(f"paper: {paper['model']}", PAPER, published, f"{paper['source_table']}"))
    deltas = [None if cell.value is None or pub is None else 100 * cell.value - pub
              for cell, pub in zip(cells, published)]
    rows.append(Row("Δ vs paper", DELTA, deltas))
    return rows


def _runs_for(runs: list[Run], layout: TableLayout, maker: CellMaker) -> list[Run]:
    wanted = set(layout.roles)
    out = [r for r in runs if (r.role if r.experiment else "") in wanted]
    return [r for r in out if any(maker.has(r, c, layout.columns) for c in layout.columns)]


def _order(runs: list[Run], full_method: str) -> list[Run]:
    """Runs outside experiments first, then the full method's experiments, other methods, ablations; each
    experiment's iterations in order (the sort is stable otherwise)."""
    def key(run: Run):
        exp = run.experiment
        if exp is None:
            return (0, 0, "", 0)
        method = _norm(str(exp.config.get("method") or ""))
        rank = 3 if exp.ablation else 1 if method in ("", _norm(full_method)) else 2
        return (1, rank, exp.name, run.iteration or 0)
    return sorted(runs, key=key)


def _headline_metric(metrics: dict) -> str | None:
    """The first numeric metric of a benchmark's metrics.json that is not a standard error or a count."""
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "stderr" not in key \
                and key not in ("n", "n_total", "num_fewshot"):
            return key
    return None


def with_extra_columns(runs: list[Run], layout: TableLayout) -> TableLayout:
    """`layout` plus one column per benchmark named `extra_columns...` that the runs have and no column names
    (e.g. a local lm-eval task in Table 7), placed before the Average column and not averaged."""
    if not layout.extra_columns:
        return layout
    named = {b for c in layout.columns for b in c.benchmarks}
    extra = []
    for run in runs:
        for bench in run.benchmarks:
            if bench.startswith(layout.extra_columns) and bench not in named:
                metric = _headline_metric(run.metrics[bench])
                if metric is not None:
                    named.add(bench)
                    extra.append(Column(f"{bench[len(layout.extra_columns):]} ({metric})", ((bench, metric),)))
    if not extra:
        return layout
    plain = [c for c in layout.columns if not c.mean_of]
    averages = [c for c in layout.columns if c.mean_of]
    return replace(layout, columns=tuple(plain + extra + averages))


def build_rows_table(runs: list[Run], layout: TableLayout, maker: CellMaker, paper_model: str,
                     full_data: dict | None = None) -> Table | None:
    """A table with one measured row per run (None when no run has its columns); a run not measured as the paper
    measured the table (`mismatches`) is labelled so and gets no published row."""
    layout = with_extra_columns(runs, layout)
    chosen = _order(_runs_for(runs, layout, maker), str(layout.partner.get("full_method", "")))
    if not chosen:
        return None
    paper_table, paper_rows = rows_of_model(layout.paper, paper_model)
    table = Table(layout.id, layout.title, [c.label for c in layout.columns], [], paper_table=paper_table,
                  paper_model=paper_model)
    if not paper_rows:
        table.notes.append(f"no published rows of {paper_model} in {', '.join(layout.paper)}")
    unlike = False
    for run in chosen:
        cells = [maker.cell(run, c, layout.columns) for c in layout.columns]
        found = mismatch_map(run, layout, full_data or {})
        reasons = [r for rs in found.values() for r in rs]
        unlike |= bool(reasons)
        blank = blank_columns(layout, found)
        partner = _partner(run, layout, paper_rows) if _comparable(cells, blank) else None
        table.rows += _group_rows(_marked(run.label, reasons), run, cells, partner, layout.columns, str(run.path),
                                  blank)
    if unlike:
        table.notes.append(UNLIKE_NOTE)
    _add_cell_notes(table)
    return table


def _last_iterations(runs: list[Run]) -> list[Run]:
    """Per experiment folder, the runs of its last iteration; runs outside experiments as they are."""
    last: dict[str, int] = {}
    for r in runs:
        if r.experiment:
            key = str(r.experiment.path)
            last[key] = max(last.get(key, -1), r.iteration or 0)
    return [r for r in runs if not r.experiment or r.iteration == last[str(r.experiment.path)]]


def _ablation_name(run: Run) -> str:
    exp = run.experiment
    if exp is None:
        return run.method
    return " ".join(x for x in (exp.ablation, str(exp.config.get("method") or ""), exp.name) if x)


def _ablation_key(run: Run) -> str:
    """The ablation's name in the layout's `ablation_rows`: the config's `ablation`, else its `method`."""
    exp = run.experiment
    if exp is None:
        return ""
    return exp.ablation or str(exp.config.get("method") or "")


def build_ablation_table(runs: list[Run], layout: TableLayout, maker: CellMaker, paper_model: str,
                         full_data: dict | None = None) -> Table | None:
    """An ablation table: the full model's last iteration, then each ablation as its difference from it (None
    without any ablation experiment). The layout's `ablation_rows` says which published row each ablation is
    (null: not in the paper, labelled so); a difference sits beside a published one only when both runs were
    measured as the paper measured the table."""
    chosen = [r for r in _last_iterations(_runs_for(runs, layout, maker)) if r.experiment]
    if not chosen:
        return None
    paper_table, paper_rows = rows_of_model(layout.paper, paper_model)
    full_paper = next((r for r in paper_rows if r.get("value_kind") == "absolute"), None)
    ablations = [r for r in paper_rows if r.get("value_kind") == "delta"]

    def paper_match(run: Run) -> dict | None:
        if layout.ablation_rows:
            model = layout.ablation_rows.get(_ablation_key(run))
            return next((r for r in ablations if model is not None and r["model"] == model), None)
        name = _norm(_ablation_name(run))
        for row in ablations:
            for candidate in (row["model"], row["method"]):
                key = _norm(candidate)
                key = key[key.index("wo"):] if "wo" in key else key
                if key and key in name:
                    return row
        return None

    matched = {id(r): paper_match(r) for r in chosen}
    full_method = _norm(str(layout.partner.get("full_method", "")))

    def is_full(run: Run) -> bool:
        method = _norm(str(run.experiment.config.get("method") or "")) if run.experiment else ""
        return matched[id(run)] is None and not (run.experiment and run.experiment.ablation) and \
            (not full_method or method in ("", full_method))

    def is_ablation(run: Run) -> bool:
        return matched[id(run)] is not None or bool(run.experiment and run.experiment.ablation) or \
            _ablation_key(run) in layout.ablation_rows

    full = [r for r in chosen if is_full(r)]
    ablated = [r for r in chosen if not is_full(r) and is_ablation(r)]
    if not ablated:
        return None  # an ablation table needs an ablation
    chosen = full + ablated
    table = Table(layout.id, layout.title, [c.label for c in layout.columns], [], paper_table=paper_table,
                  paper_model=paper_model)
    reference = full[0] if full else None
    if len(full) > 1:
        table.notes.append(f"several full-model experiments; differences are taken from {reference.label}")
    if reference is None:
        table.notes.append("no full-model experiment (one without an ablation): ablations shown as absolute values")
    found = {id(r): mismatch_map(r, layout, full_data or {}) for r in chosen}
    if any(found.values()):
        table.notes.append(UNLIKE_NOTE)
    for run in ([reference] if reference else []) + [r for r in chosen if r is not reference]:
        is_reference = run is reference
        label = _marked(run.label, [r for rs in found[id(run)].values() for r in rs])
        if is_reference or reference is None:
            cells = [maker.cell(run, c, layout.columns) for c in layout.columns]
            blank = blank_columns(layout, found[id(run)])
            partner = full_paper if is_reference and _comparable(cells, blank) else None
            table.rows += _group_rows(label, run, cells, partner, layout.columns, str(run.path), blank)
            continue
        cells = [maker.difference(reference, run, c, layout.columns) for c in layout.columns]
        in_paper = matched[id(run)] is not None
        label = f"{label} − full model" + ("" if in_paper else f" ({NOT_IN_PAPER})")
        rows = [Row(label, MEASURED, cells, str(run.path))]
        blank = blank_columns(layout, found[id(run)], found[id(reference)])
        partner = matched[id(run)] if _comparable(cells, blank) else None
        if partner is not None:
            published = [None if i in blank else _paper_value(partner, c) for i, c in enumerate(layout.columns)]
            rows.append(Row(f"paper: {partner['model']}", PAPER, published, str(partner["source_table"])))
            rows.append(Row("Δ vs paper", DELTA,
                            [None if c.value is None or p is None else 100 * c.value - p
                             for c, p in zip(cells, published)]))
        table.rows += rows
    _add_cell_notes(table)
    return table


def _add_cell_notes(table: Table) -> None:
    notes = {}
    for row in table.rows:
        if row.kind != MEASURED:
            continue
        for label, cell in zip(table.columns, row.cells):
            if isinstance(cell, Cell) and cell.note and (cell.value is not None or cell.difference):
                notes.setdefault(cell.note, []).append(f"{row.label} / {label}")
    for note, where in notes.items():
        table.notes.append(f"{note}: {', '.join(where[:4])}{' ...' if len(where) > 4 else ''}")


def build_tables(runs: list[Run], layout: Layout, maker: CellMaker, paper_model: str,
                 ids: list[str] | None = None) -> list[Table]:
    """The tables (`ids`: which, default all in the layout) that have rows among `runs`."""
    chosen = [layout.table(i) for i in ids] if ids else list(layout.tables)
    out = []
    for t in chosen:
        build = build_ablation_table if t.kind == "ablation" else build_rows_table
        table = build(runs, t, maker, paper_model, layout.full_data)
        if table is not None:
            out.append(table)
    return out
