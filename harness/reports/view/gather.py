"""Reading run and experiment folders for `spar view`: the options, the folders' runs and self-play iterations,
and the plain data (dicts of text and numbers, no HTML) of the overview, tables and figures sections.

Texts stay raw here; the templates escape them. Helpers shared by `samples` and `trees` live here too.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.core.compute import compute_columns
from harness.core.data import read_jsonl
from harness.core.errors import SparError
from harness.reports.runs import ITER_DIR, Run, collect_runs, is_experiment

SECTIONS = (("overview", "Overview"), ("tables", "Tables"), ("plots", "Figures"), ("samples", "Samples"),
            ("trees", "Refinement trees and DPO pairs"))


@dataclass
class ViewOptions:
    """What goes into the report, and the size guard."""

    max_samples: int = 200
    max_trees: int = 100
    max_chars: int = 20000
    tables: bool = True
    plots: bool = True
    resamples: int = 1000
    seed: int = 0
    paper_model: str | None = None


@dataclass
class Iteration:
    """One `iter_<t>` folder of an experiment as the report reads it."""

    path: Path
    experiment: str
    t: int
    record: dict
    searches: list[dict] | None = None
    pairs: list[dict] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.experiment} · iter {self.t}"

    @property
    def end_gate(self) -> float:
        gate = ((self.record.get("config") or {}).get("search") or {}).get("end_gate")
        if isinstance(gate, (int, float)):
            return float(gate)
        from training.tree_search import SearchConfig

        return float(SearchConfig().end_gate)


@dataclass
class Summary:
    """What `write_view` put in the report (for the CLI's closing line and tests)."""

    runs: int = 0
    samples_shown: int = 0
    samples_left_out: int = 0
    trees_shown: int = 0
    trees_left_out: int = 0
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------- reading
def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _iteration_dirs(path: Path) -> list[Path]:
    """The iteration folders of `path`: itself, its iter_<t>/ folders, or those of experiments one level down."""
    def of(p: Path) -> list[Path]:
        if ITER_DIR.match(p.name) and p.is_dir():
            return [p]
        if is_experiment(p):
            return sorted((c for c in p.iterdir() if c.is_dir() and ITER_DIR.match(c.name)),
                          key=lambda c: int(ITER_DIR.match(c.name).group(1)))  # type: ignore[union-attr]
        return []
    found = of(path)
    if not found and path.is_dir() and not (path / "record.json").is_file():
        for child in sorted(p for p in path.iterdir() if p.is_dir()):
            found += of(child)
    return found


def load_iteration(path: Path) -> Iteration:
    record: dict = {}
    notes = []
    if (path / "record.json").is_file():
        try:
            record = _read_json(path / "record.json")
        except (OSError, ValueError) as exc:
            notes.append(f"{path / 'record.json'}: unreadable ({exc})")
    if not record.get("config") and (path.parent / "config.json").is_file():
        try:
            record = dict(record, config=_read_json(path.parent / "config.json"))
        except (OSError, ValueError):
            pass
    name = str(record.get("experiment") or (record.get("config") or {}).get("experiment") or path.parent.name)
    t = int(ITER_DIR.match(path.name).group(1))  # type: ignore[union-attr]
    it = Iteration(path, name, int(record.get("iteration", t)), record, notes=notes)
    for attr, file in (("searches", path / "searches.jsonl"), ("pairs", path / "data" / "dpo.jsonl")):
        if file.is_file():
            try:
                setattr(it, attr, read_jsonl(file))
            except (OSError, SparError) as exc:
                it.notes.append(str(exc))
    return it


def read_folders(paths: Iterable[str | Path]) -> tuple[list[Run], list[Iteration], list[str]]:
    """The runs and self-play iterations under `paths` (run folders, experiment folders, iteration folders, or
    folders of those); an experiment still without evaluations gives its iterations only."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise SparError("give at least one run or experiment folder")
    runs: list[Run] = []
    iters: list[Path] = []
    notes: list[str] = []
    for path in paths:
        if not path.exists():
            raise SparError(f"{path}: no such folder")
        if not path.is_dir():
            raise SparError(f"{path}: not a folder (give a run or experiment folder)")
        found_iters = _iteration_dirs(path)
        try:
            runs += collect_runs([path])
        except SparError as exc:
            if not found_iters:
                raise
            notes.append(str(exc))
        iters += found_iters
    seen_runs: set[Path] = set()
    unique_runs = []
    for run in runs:
        if run.path.resolve() not in seen_runs:
            seen_runs.add(run.path.resolve())
            unique_runs.append(run)
    unique_iters = list(dict.fromkeys(p.resolve() for p in iters))
    return unique_runs, [load_iteration(p) for p in unique_iters], notes


# ------------------------------------------------------------------------------------------------- text helpers
def clip(text: Any, limit: int) -> dict:
    """A text for the templates' `pre` macro: cut at `limit` characters, with how many were cut."""
    text = "" if text is None else str(text)
    if limit and len(text) > limit:
        return {"text": text[:limit], "cut": len(text) - limit}
    return {"text": text, "cut": 0}


def snippet(text: Any, n: int = 90) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= n else one[: n - 1] + "…"


def facets_json(data: Any) -> str:
    """The `data-facets` attribute's JSON (the template escapes it into the attribute)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def natural(value: str) -> tuple:
    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in re.split(r"(\d+)", value.lower()) if x)


def format_value(name: str, value: Any) -> str:
    """A metric: fractions in percent, counts and levels as numbers, missing as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not name.endswith(("(levels)", "seconds")) and "loss" not in name:
        return f"{100 * value:.2f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def grid(columns: list[Any], rows: list[list[Any]], first_left: bool = True) -> dict:
    """A plain table for the `grid` macro: header texts, and cells as text with whether they are numbers."""
    columns = [str(c) for c in columns]
    out = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            num = not (i == 0 and first_left) and not isinstance(cell, str)
            text = cell if isinstance(cell, str) else format_value(columns[i] if i < len(columns) else "", cell)
            cells.append({"text": text, "num": num})
        out.append(cells)
    return {"columns": columns, "rows": out}


# ------------------------------------------------------------------------------------------------- overview
def _headline(run: Run, benchmark: str) -> tuple[list[tuple[str, Any]], list]:
    metrics = run.metrics.get(benchmark) or {}
    try:
        from evaluators import get_evaluator

        ev = get_evaluator(benchmark)
        return ev.summary_rows(metrics), ev.detail_tables(metrics)
    except Exception:  # an unknown or unloadable benchmark: its scalar metrics as they are
        return [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)], []


def _run_rows(runs: list[Run]) -> tuple[list[dict], list[dict]]:
    """The overview's row per run (headline metrics) and its metric tables per run and benchmark."""
    rows, details = [], []
    for run in runs:
        metrics = []
        for bench in run.benchmarks:
            head, tables = _headline(run, bench)
            shown = ", ".join(f"{name} {format_value(name, value)}" for name, value in head[:4])
            partial = " (partial)" if (run.metrics.get(bench) or {}).get("partial") else ""
            metrics.append({"benchmark": bench, "partial": partial, "shown": shown})
            if head or tables:
                details.append({"title": f"{run.label} · {bench}", "table": grid(["metric", "value"], list(head)),
                                "tables": [{"title": title, "table": grid(list(columns), trows)}
                                           for title, columns, trows in tables]})
        fake = " [fake backend: not a measurement]" if run.fake else ""  # tables mark partial data too
        rows.append({"label": run.label + fake, "path": str(run.path), "command": run.command,
                     "status": str(run.record.get("status", "")), "metrics": metrics})
    return rows, details


def _experiment_tables(iters: list[Iteration]) -> list[dict]:
    """Per experiment folder, its per-iteration summary (stage counts, losses, headline scores) as a table."""
    by_exp: dict[str, list[Iteration]] = {}
    for it in iters:
        by_exp.setdefault(str(it.path.parent), []).append(it)
    out = []
    for folder, its in by_exp.items():
        rows_by_t = []
        for it in its:
            row = (it.record.get("extra") or {}).get("summary")
            if not isinstance(row, dict):
                row = {"iteration": it.t}
                for stage, info in (it.record.get("stages") or {}).items():
                    if isinstance(info, dict):
                        row.update({f"{stage}.{k}": v for k, v in info.items()
                                    if isinstance(v, (int, float, str)) and not isinstance(v, bool)})
                row.update(compute_columns(it.record.get("stages") or {}))  # tokens, seconds, GPU-seconds
            row = dict(row, status=str(it.record.get("status", "")) or "(no record)")
            rows_by_t.append((it.t, row))
        keys = list(dict.fromkeys(k for _, r in rows_by_t for k in r if k != "iteration"))
        table = grid(["", *(f"iter {t}" for t, _ in rows_by_t)],
                     [[k, *(format_value(k, r[k]) if k in r else "" for _, r in rows_by_t)] for k in keys])
        out.append({"name": its[0].experiment, "folder": folder, "table": table})
    return out


def overview(paths: list[Path], runs: list[Run], iters: list[Iteration], notes: list[str]) -> dict:
    """The overview section: the folders, a row per run, metric tables, and each experiment's iterations."""
    rows, details = _run_rows(runs)
    return {"folders": [str(p) for p in paths], "notes": list(notes), "runs": rows, "details": details,
            "experiments": _experiment_tables(iters)}


# ------------------------------------------------------------------------------------------------- tables, figures
def _paper_table(t: Any, resamples: int) -> dict:
    """One table of `harness.reports.build_tables` as data: measured columns only, each cell's value and interval."""
    from harness.reports.cells import Cell
    from harness.reports.render import cell_text
    from harness.reports.tables import DELTA, MEASURED, PAPER

    keep = [i for i in range(len(t.columns)) if any(r.kind == MEASURED and isinstance(r.cells[i], Cell)
                                                     and r.cells[i].value is not None for r in t.rows)]
    rows = []
    for row in t.rows:
        cells = []
        for i in keep:
            c = row.cells[i]
            cls = "num"
            if row.kind == DELTA and isinstance(c, (int, float)):
                cls += " pos" if c > 0 else " neg" if c < 0 else ""
            value, _, interval = cell_text(c, row.kind).partition(" ")
            cells.append({"cls": cls, "value": value, "interval": interval})
        kind = {MEASURED: "measured", PAPER: "paper", DELTA: "delta"}.get(row.kind, "")
        rows.append({"kind": kind, "source": row.source, "label": row.label, "cells": cells})
    caption = ["measured: percent [95% bootstrap CI, " f"{resamples} resamples]"
               + (f"; paper rows: {t.paper_model} ({t.paper_table})" if t.paper_table else "")] + list(t.notes)
    if len(keep) < len(t.columns):
        caption.append("not measured: " + ", ".join(c for i, c in enumerate(t.columns) if i not in keep))
    return {"title": t.title, "columns": [t.columns[i] for i in keep], "rows": rows, "caption": caption}


def tables_section(runs: list[Run], opts: ViewOptions, summary: Summary) -> tuple[dict, Any, Any, str]:
    """The paper tables ({"tables": [...], "notes": [...]}); also the layout, cell maker and paper model for the
    figures."""
    def noted(text: str) -> dict:
        return {"tables": [], "notes": [text]}

    if not opts.tables and not opts.plots:
        return noted("tables and figures turned off (--no-tables --no-plots)"), None, None, ""
    if not runs:
        return noted("no runs to tabulate"), None, None, ""
    from harness.core.paper import resolve_paper_model
    from harness.reports import CellMaker, build_tables, load_layout

    try:
        layout = load_layout()
        paper_model = resolve_paper_model(opts.paper_model or None)
    except SparError as exc:
        summary.notes.append(f"tables: {exc}")
        return noted(f"no tables: {exc}"), None, None, ""
    maker = CellMaker(opts.resamples, opts.seed)
    if not opts.tables:
        return noted("tables turned off (--no-tables)"), layout, maker, paper_model
    try:
        tables = build_tables(runs, layout, maker, paper_model)
    except SparError as exc:
        summary.notes.append(f"tables: {exc}")
        return noted(f"no tables: {exc}"), layout, maker, paper_model
    if not tables:
        return noted("no run has the columns of any paper table"), layout, maker, paper_model
    return {"tables": [_paper_table(t, opts.resamples) for t in tables], "notes": []}, layout, maker, paper_model


def plots_section(runs: list[Run], layout: Any, maker: Any, paper_model: str, opts: ViewOptions,
                  summary: Summary) -> dict:
    """The figures as base64 PNG data ({"figures": [{"name", "png"}], "notes": [...]})."""
    if not opts.plots:
        return {"figures": [], "notes": ["figures turned off (--no-plots)"]}
    if layout is None or not runs:
        return {"figures": [], "notes": ["no figures (no runs, or no table layout)"]}
    from harness.reports.plots import make_plots

    with tempfile.TemporaryDirectory(prefix="spar-view-") as tmp:
        try:
            written, skipped = make_plots(runs, layout, maker, paper_model, Path(tmp))
        except SparError as exc:
            summary.notes.append(f"figures: {exc}")
            return {"figures": [], "notes": [f"no figures: {exc}"]}
        figures = [{"name": path.stem, "png": base64.b64encode(path.read_bytes()).decode("ascii")}
                   for path in written if path.suffix == ".png"]
    notes = [] if figures else ["no figure has runs to draw"]
    return {"figures": figures, "notes": notes + [f"skipped: {why}" for why in skipped]}
