"""`spar quickstart`: the offline demo, the embedded SmolLM2 on a built-in IFEval-format set."""

from __future__ import annotations

import argparse

from harness.commands.flags import optional_int

NAME = "quickstart"
MAX_NEW_TOKENS = 256


def add_parser(sub) -> None:
    """Add `spar quickstart` to the subcommand parser."""
    p = sub.add_parser(NAME, help="offline demo: the embedded SmolLM2 on a built-in IFEval-format set")
    p.add_argument("--output", default="", help="run folder (default results/runs/<time>-quickstart)")
    p.add_argument("--data", default="", help="'quickstart' (built-in 26 prompts, the default), or a real "
                                              "IFEval file/folder/hub id")
    p.add_argument("--limit", default=None, help="score only the first N prompts")
    p.add_argument("--max-new-tokens", default=str(MAX_NEW_TOKENS), help="generation budget")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """Evaluate the embedded model on the quickstart set, print the results and the run folder."""
    from evaluators import QUICKSTART
    from harness.core.models import EMBEDDED_NAME
    from harness.core.progress import RichReporter
    from harness.reports.summary import print_results
    from harness.suite.config import load_eval_config
    from harness.suite.runner import default_output, run_eval

    values = {"model.name": EMBEDDED_NAME, "benchmarks": QUICKSTART["benchmark"],
              "data": args.data or QUICKSTART["data"],
              "max_new_tokens": optional_int(args.max_new_tokens, "--max-new-tokens"),
              "output": args.output or str(default_output("quickstart"))}
    if args.limit is not None:
        values["limit"] = optional_int(args.limit, "--limit")
    cfg = load_eval_config(**values)
    reporter = RichReporter()
    reporter.note(f"quickstart: {EMBEDDED_NAME} on {QUICKSTART['benchmark']}-format prompts ({cfg.data}), "
                  "offline on CPU")
    result = run_eval(cfg, reporter)
    print_results(console, result.metrics, f"{EMBEDDED_NAME} (hf)")
    console.print(f"run folder: {result.output}")
    return 0
