"""`spar score`: score outputs produced elsewhere (an actor's responses or a judge's judgments)."""

from __future__ import annotations

import argparse

from harness.commands.flags import DECODE_FLAGS, add_config_flags, config_flag_values
from harness.core.errors import SparError

NAME = "score"
#: generation flags that `spar score` accepts (scripts may pass them) but does not list: it generates no responses
HIDDEN_FLAGS = ("model", "max-new-tokens", "temperature", "top-p", "system-prompt")


def add_parser(sub) -> None:
    """Add `spar score` to the subcommand parser."""
    from evaluators import REGISTRY

    p = sub.add_parser(NAME, help="score outputs produced elsewhere (an actor's responses or a judge's judgments, "
                                  "as the benchmark says)",
                       description="Score outputs produced elsewhere. Nothing is generated except by the judge of "
                                   "judged benchmarks (followbench, refinement: --judge ...); the model flags "
                                   "(--backend, --base-url, --batch-size, ...) set the judge's fields it does not "
                                   "set itself.")
    p.add_argument("benchmark", help=f"benchmark name: {', '.join(REGISTRY)}")
    p.add_argument("--outputs", help=argparse.SUPPRESS)  # the earlier name of --responses / --judgments
    p.add_argument("--responses", help="an actor's responses: JSONL with `prompt` (or `key`) and `response` per "
                                       "line, or a format named by --format")
    p.add_argument("--judgments", help="a judge's judgments (llmbar): JSONL with `subset`, `index`, `output` or "
                                       "`order`, and `judgment`/`judgments`/`verdict`, or --format")
    p.add_argument("--format", dest="fmt", default=None,
                   help="the outputs' format (default: detected); `spar benchmarks` lists each benchmark's formats")
    p.add_argument("--allow-partial", action="store_true",
                   help="score a file that covers only part of the benchmark (the headline then says partial)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="count and exclude bad lines instead of stopping at the first one")
    p.add_argument("--config", help="YAML file of options (flags override it)")
    add_config_flags(p, skip=("benchmarks", "limit", "refiner", *DECODE_FLAGS), hidden=HIDDEN_FLAGS)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """Score the one given file, print the results and the run folder."""
    from harness.core.progress import RichReporter
    from harness.reports.summary import print_results
    from harness.suite.config import load_eval_config
    from harness.suite.runner import run_score

    given = [(flag, v) for flag, v in (("--outputs", args.outputs), ("--responses", args.responses),
                                       ("--judgments", args.judgments)) if v]
    if len(given) != 1:
        from evaluators import evaluator_class

        what = "--judgments" if evaluator_class(args.benchmark).scores == "judgments" else "--responses"
        raise SparError(f"spar score {args.benchmark} needs one file: {what} FILE"
                        if not given else f"give one of {', '.join(f for f, _ in given)}, not several")
    cfg = load_eval_config(args.config, config_flag_values(args), args.overrides, args.bench_overrides)
    if not cfg.output:
        raise SparError("spar score needs --output FOLDER")
    result = run_score(args.benchmark, given[0][1], cfg.output, cfg, RichReporter(), args.fmt, args.allow_partial,
                       args.skip_invalid)
    print_results(console, result.metrics, f"scored {given[0][1]}")
    console.print(f"run folder: {result.output}")
    return 0
