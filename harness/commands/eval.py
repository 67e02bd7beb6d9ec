"""`spar eval`: generate with a model and score benchmarks (a YAML config, flags over it)."""

from __future__ import annotations

import argparse

from harness.commands.flags import add_config_flags, config_flag_values

NAME = "eval"


def add_parser(sub) -> None:
    """Add `spar eval` to the subcommand parser."""
    p = sub.add_parser(NAME, help="generate with a model and score benchmarks")
    p.add_argument("--config", help="YAML file of eval options (flags override it)")
    add_config_flags(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """Run the suite, print the results and the run folder."""
    from harness.core.progress import RichReporter
    from harness.reports.summary import print_results
    from harness.suite.config import load_eval_config
    from harness.suite.runner import run_eval

    cfg = load_eval_config(args.config, config_flag_values(args), args.overrides, args.bench_overrides)
    result = run_eval(cfg, RichReporter())
    print_results(console, result.metrics, f"{cfg.model.name} ({cfg.model.backend})")
    console.print(f"run folder: {result.output}")
    return 0
