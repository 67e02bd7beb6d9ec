"""The reporting commands of the `spar` CLI (front layer): `spar tables`, `spar compare`, `spar regress`.

`harness.cli` imports this module when it exists and calls `register(subparsers)`, which adds the sub-commands and
returns {command: handler(args, console) -> exit code}. Every user mistake is a `SparError` (one line, exit 2);
`spar regress` exits 1 when a metric regressed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from harness.errors import SparError
from harness.options import float_flag, int_flag
from harness.stats import DEFAULT_RESAMPLES

Handler = Callable[[argparse.Namespace, Any], int]


def _list(value: str | None) -> list[str]:
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def _stats_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resamples", default=str(DEFAULT_RESAMPLES),
                   help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    p.add_argument("--seed", default="0", help="bootstrap seed (same seed, same intervals; default 0)")


def register(sub) -> dict[str, Handler]:
    """Add `tables`, `compare` and `regress` to the `spar` sub-command parser; returns their handlers."""
    tb = sub.add_parser("tables", help="the paper's tables (and figures) from run and experiment folders, beside "
                                       "the published numbers")
    tb.add_argument("paths", nargs="+", metavar="RUN_OR_EXPERIMENT",
                    help="run folders (spar eval / spar score), experiment folders (spar run), or folders of them")
    tb.add_argument("--output", default="", help="folder for the Markdown, LaTeX, CSV files and figures "
                                                 "(default: <first folder>/tables)")
    tb.add_argument("--tables", default="", help="which tables, e.g. 1,2,3,4,7 (default: every table with rows)")
    tb.add_argument("--paper-model", default="", help="the published rows to compare with (default "
                                                      "LLaMA3-8B-Instruct; e.g. mistral, glm, llama3-70b)")
    tb.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                    help="write the figures (PNG and SVG) next to the tables (default: yes)")
    _stats_flags(tb)

    cp = sub.add_parser("compare", help="compare two runs on the same prompts: paired bootstrap CI, p-value, "
                                        "McNemar, verdict")
    cp.description = ("Pair two runs of the same benchmarks on the same units (IFEval prompts, LLMBar pairs, "
                      "FollowBench example groups) and report, per metric, B - A with its paired bootstrap interval, "
                      "p-value and a verdict. The runs must have scored the same data with the same scorer settings.")
    cp.add_argument("run_a", metavar="RUN_A", help="the reference run: a run folder written by spar eval, spar score "
                                                   "or spar quickstart (record.json, metrics.json, <bench>/samples.jsonl)")
    cp.add_argument("run_b", metavar="RUN_B", help="the run compared with it (differences are B - A)")
    cp.add_argument("--metrics", default="", help="comma-separated metrics (metrics.json keys, or "
                                                  "benchmark.key); default: each shared benchmark's headline")
    cp.add_argument("--alpha", default="0.05", help="significance level (default 0.05: 95%% intervals)")
    cp.add_argument("--intersect", action="store_true",
                    help="compare on the units both runs scored (default: the runs must cover the same units)")
    cp.add_argument("--json", dest="json_out", default="", help="also write the comparison to this JSON file")
    _stats_flags(cp)

    rg = sub.add_parser("regress", help="check a run's metrics against a stored baseline (exit 1 on a drop)")
    rg.add_argument("run", metavar="RUN", help="a run folder (or an experiment folder: its last iteration)")
    rg.add_argument("--baseline", required=True, help="the baseline JSON file")
    rg.add_argument("--tolerance", default=None, help="largest allowed drop, as a fraction (default: the "
                                                      "baseline's, else 0.02)")
    rg.add_argument("--metrics", default="", help="comma-separated benchmark.metric names (default: the "
                                                  "baseline's; with --update: the judge benchmark's *_acc/*_f1)")
    rg.add_argument("--update", action="store_true", help="(re)write the baseline from this run")
    _stats_flags(rg)
    return {"tables": run_tables, "compare": run_compare, "regress": run_regress}


# ------------------------------------------------------------------------------------------------- handlers
def run_tables(args: argparse.Namespace, console) -> int:
    """`spar tables`: build, print and write the tables (and figures)."""
    from harness.paper import resolve_paper_model
    from harness.report import CellMaker, build_tables, collect_runs, load_layout
    from harness.report.render import rich_tables, write_tables

    layout = load_layout()
    ids = _list(args.tables)
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
        from harness.report.plots import make_plots

        try:
            figures, skipped = make_plots(runs, layout, maker, paper_model, out / "plots")
        except SparError as exc:
            console.print(f"figures skipped: {exc}")
        else:
            if figures:
                console.print(f"figures: {', '.join(str(p) for p in figures)}")
            for why in skipped:
                console.print(f"figure skipped: {why}")
    return 0


def _print_compute(runs: list, out: Path, console) -> None:
    """The compute table (tokens, seconds, GPU-seconds per method and iteration) when experiments recorded it."""
    from harness.report.costs import compute_rows, rich_compute_table, write_compute

    rows = compute_rows(runs)
    if rows:
        console.print(rich_compute_table(rows))
        console.print(f"compute: {', '.join(str(p) for p in write_compute(rows, out))}")


def run_compare(args: argparse.Namespace, console) -> int:
    """`spar compare`: the per-metric comparison table and an overall line."""
    from harness.records import write_json
    from harness.report import compare_runs, load_run
    from harness.report.compare import CORRECTION, comparison_table, overall_verdict

    alpha = float_flag(args.alpha, "--alpha", 1e-6, 0.5)
    a, b = load_run(args.run_a), load_run(args.run_b)
    results = compare_runs(a, b, _list(args.metrics) or None, int_flag(args.resamples, "--resamples"),
                           int_flag(args.seed, "--seed", 0), alpha, args.intersect)
    console.print(comparison_table(results, a, b, alpha))
    console.print(f"verdict: {overall_verdict(results, alpha)}")
    if args.json_out:
        write_json(args.json_out, {"a": str(a.path), "b": str(b.path), "alpha": alpha,
                                   "resamples": int(args.resamples), "seed": int(args.seed),
                                   "correction": CORRECTION, "overall": overall_verdict(results, alpha),
                                   "metrics": [r.to_dict() for r in results]})
    return 0


def _regress_runs(path: str) -> list:
    from harness.report import collect_runs

    runs = collect_runs([path])
    if any(r.experiment for r in runs):
        last = max(r.iteration or 0 for r in runs if r.experiment)
        runs = [r for r in runs if r.experiment and r.iteration == last]
    return runs


def run_regress(args: argparse.Namespace, console) -> int:
    """`spar regress`: 1 when a guarded metric dropped, else 0; `--update` rewrites the baseline."""
    from harness.report import CellMaker
    from harness.report.regress import DEFAULT_TOLERANCE, check, read_baseline, regress_table, write_baseline

    runs = _regress_runs(args.run)
    baseline_path = Path(args.baseline)
    tolerance = None if args.tolerance is None else float_flag(args.tolerance, "--tolerance", 0.0, 1.0)
    metrics = _list(args.metrics) or None
    if args.update:
        maker = CellMaker(int_flag(args.resamples, "--resamples"), int_flag(args.seed, "--seed", 0))
        if baseline_path.exists() and not baseline_path.is_file():
            raise SparError(f"--baseline {baseline_path}: not a file")
        data = write_baseline(baseline_path, runs, metrics,
                              DEFAULT_TOLERANCE if tolerance is None else tolerance, maker)
        console.print(f"baseline written: {baseline_path} ({len(data['metrics'])} metrics from {runs[0].path})")
        return 0
    baseline = read_baseline(baseline_path)
    checks = check(runs, baseline, metrics, tolerance)
    tol = float(baseline.get("tolerance", DEFAULT_TOLERANCE) if tolerance is None else tolerance)
    console.print(regress_table(checks, tol, baseline_path))
    failed = [c for c in checks if c.failed]
    if failed:
        console.print("regression: " + ", ".join(f"{c.metric} {100 * c.baseline:.1f} -> {100 * c.current:.1f} "
                                                  f"({c.status})" for c in failed))
        return 1
    console.print(f"no regression ({len(checks)} metrics within {100 * tol:.1f} points of {baseline_path})")
    return 0


__all__ = ["register", "run_compare", "run_regress", "run_tables"]
