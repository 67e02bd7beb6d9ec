"""`spar compare`: two runs on the same units, per metric B - A with its interval, p-value and verdict."""

from __future__ import annotations

import argparse

from harness.commands.flags import add_stats_flags, csv_list, float_flag, int_flag

NAME = "compare"


def add_parser(sub) -> None:
    """Add `spar compare` to the subcommand parser."""
    p = sub.add_parser(NAME, help="compare two runs on the same prompts: paired bootstrap CI, p-value, McNemar, "
                                  "verdict")
    p.description = ("Pair two runs of the same benchmarks on the same units (IFEval prompts, LLMBar pairs, "
                     "FollowBench example groups) and report, per metric, B - A with its paired bootstrap interval, "
                     "p-value and a verdict. The runs must have scored the same data with the same scorer settings.")
    p.add_argument("run_a", metavar="RUN_A", help="the reference run: a run folder written by spar eval, spar score "
                                                  "or spar quickstart (record.json, metrics.json, "
                                                  "<bench>/samples.jsonl)")
    p.add_argument("run_b", metavar="RUN_B", help="the run compared with it (differences are B - A)")
    p.add_argument("--metrics", default="", help="comma-separated metrics (metrics.json keys, or "
                                                 "benchmark.key); default: each shared benchmark's headline")
    p.add_argument("--alpha", default="0.05", help="significance level (default 0.05: 95%% intervals)")
    p.add_argument("--intersect", action="store_true",
                   help="compare on the units both runs scored (default: the runs must cover the same units)")
    p.add_argument("--json", dest="json_out", default="", help="also write the comparison to this JSON file")
    add_stats_flags(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """The per-metric comparison table and an overall line (and --json)."""
    from harness.core.records import write_json
    from harness.reports import compare_runs, load_run
    from harness.reports.compare import CORRECTION, comparison_table, overall_verdict

    alpha = float_flag(args.alpha, "--alpha", 1e-6, 0.5)
    a, b = load_run(args.run_a), load_run(args.run_b)
    results = compare_runs(a, b, csv_list(args.metrics) or None, int_flag(args.resamples, "--resamples"),
                           int_flag(args.seed, "--seed", 0), alpha, args.intersect)
    console.print(comparison_table(results, a, b, alpha))
    console.print(f"verdict: {overall_verdict(results, alpha)}")
    if args.json_out:
        write_json(args.json_out, {"a": str(a.path), "b": str(b.path), "alpha": alpha,
                                   "resamples": int(args.resamples), "seed": int(args.seed),
                                   "correction": CORRECTION, "overall": overall_verdict(results, alpha),
                                   "metrics": [r.to_dict() for r in results]})
    return 0
