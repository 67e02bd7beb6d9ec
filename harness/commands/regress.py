"""`spar regress`: a run's metrics against a stored baseline; exit 1 when a guarded metric dropped."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.flags import add_stats_flags, csv_list, float_flag, int_flag
from harness.core.errors import SparError

NAME = "regress"


def add_parser(sub) -> None:
    """Add `spar regress` to the subcommand parser."""
    p = sub.add_parser(NAME, help="check a run's metrics against a stored baseline (exit 1 on a drop)")
    p.add_argument("run", metavar="RUN", help="a run folder (or an experiment folder: its last iteration)")
    p.add_argument("--baseline", required=True, help="the baseline JSON file")
    p.add_argument("--tolerance", default=None, help="largest allowed drop, as a fraction (default: the "
                                                     "baseline's, else 0.02)")
    p.add_argument("--metrics", default="", help="comma-separated benchmark.metric names (default: the "
                                                 "baseline's; with --update: the judge benchmark's *_acc/*_f1)")
    p.add_argument("--update", action="store_true", help="(re)write the baseline from this run")
    add_stats_flags(p)
    p.set_defaults(handler=handle)


def _runs(path: str) -> list:
    """The run, or an experiment's last iteration."""
    from harness.reports import collect_runs

    runs = collect_runs([path])
    if any(r.experiment for r in runs):
        last = max(r.iteration or 0 for r in runs if r.experiment)
        runs = [r for r in runs if r.experiment and r.iteration == last]
    return runs


def handle(args: argparse.Namespace, console) -> int:
    """1 when a guarded metric dropped, else 0; `--update` rewrites the baseline."""
    from harness.reports import CellMaker
    from harness.reports.regress import DEFAULT_TOLERANCE, check, read_baseline, regress_table, write_baseline

    runs = _runs(args.run)
    baseline_path = Path(args.baseline)
    tolerance = None if args.tolerance is None else float_flag(args.tolerance, "--tolerance", 0.0, 1.0)
    metrics = csv_list(args.metrics) or None
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
