"""`spar tables`: the paper's tables (and figures) from run and experiment folders, beside the published numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.flags import add_stats_flags, csv_list, int_flag
from harness.core.errors import SparError

NAME = "tables"


def add_parser(sub) -> None:
    """Add `spar tables` to the subcommand parser."""
    p = sub.add_parser(NAME, help="the paper's tables (and figures) from run and experiment folders, beside the "
                                  "published numbers")
    p.add_argument("paths", nargs="+", metavar="RUN_OR_EXPERIMENT",
                   help="run folders (spar eval / spar score), experiment folders (spar run), or folders of them")
    p.add_argument("--output", default="", help="folder for the Markdown, LaTeX, CSV files and figures "
                                                "(default: <first folder>/tables)")
    p.add_argument("--tables", default="", help="which tables, e.g. 1,2,3,4,7 (default: every table with rows)")
    p.add_argument("--paper-model", default="", help="the published rows to compare with (default "
                                                     "LLaMA3-8B-Instruct; e.g. mistral, glm, llama3-70b)")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                   help="write the figures (PNG and SVG) next to the tables (default: yes)")
    add_stats_flags(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """Build, print and write the tables (and figures)."""
    from harness.core.paper import resolve_paper_model
    from harness.reports import CellMaker, build_tables, collect_runs, load_layout
    from harness.reports.render import rich_tables, write_tables

    layout = load_layout()
    ids = csv_list(args.tables)
    for table_id in ids:
        layout.table(table_id)
    paper_model = resolve_paper_model(args.paper_model or None)
    maker = CellMaker(int_flag(args.resamples, "--resamples"), int_flag(args.seed, "--seed", 0))
    runs = collect_runs(args.paths)
    out = Path(args.output) if args.output else Path(args.paths[0]) / "tables"
    tables = build_tables(runs, layout, maker, paper_model, ids or None)
    if not tables:
        wanted = ", ".join(ids) if ids else "any table"
        raise SparError(f"no run has the columns of {wanted} ({len(runs)} runs with "
                        f"{', '.join(sorted({b for r in runs for b in r.benchmarks})) or 'no benchmarks'})")
    for renderable in rich_tables(tables, console.width):  # stacked in parts when wider than the output
        console.print(renderable)
    written = write_tables(tables, out)
    console.print(f"tables: {', '.join(str(p) for p in written if p.name.startswith('tables.'))}")
    _print_compute(runs, out, console)
    if args.plots:
        _plots(runs, layout, maker, paper_model, out / "plots", console)
    return 0


def _print_compute(runs: list, out: Path, console) -> None:
    """The compute table (tokens, seconds, GPU-seconds per method and iteration) when experiments recorded it."""
    from harness.reports.costs import compute_rows, rich_compute_table, write_compute

    rows = compute_rows(runs)
    if rows:
        console.print(rich_compute_table(rows))
        console.print(f"compute: {', '.join(str(p) for p in write_compute(rows, out))}")


def _plots(runs: list, layout, maker, paper_model, out: Path, console) -> None:
    from harness.reports.plots import make_plots

    try:
        figures, skipped = make_plots(runs, layout, maker, paper_model, out)
    except SparError as exc:
        console.print(f"figures skipped: {exc}")
        return
    if figures:
        console.print(f"figures: {', '.join(str(p) for p in figures)}")
    for why in skipped:
        console.print(f"figure skipped: {why}")
