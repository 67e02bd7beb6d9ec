"""`spar view`: one self-contained HTML report of runs and experiments (built by harness/reports/view).

User mistakes are `SparError`s (one line, exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.flags import int_flag
from harness.core.errors import SparError

NAME = "view"


def add_parser(sub) -> None:
    """Add `spar view` to the subcommand parser."""
    from harness.reports.view import ViewOptions

    d = ViewOptions()
    vw = sub.add_parser(NAME, help="one self-contained HTML report of runs and experiments: tables, figures, a "
                                   "per-sample browser and the refinement trees behind each DPO pair")
    vw.add_argument("paths", nargs="+", metavar="RUN_OR_EXPERIMENT",
                    help="run folders (spar eval / spar score), experiment folders (spar run), iteration folders, "
                         "or folders of them")
    vw.add_argument("--output", default="", help="the HTML file (default: <first folder>/view.html)")
    vw.add_argument("--max-samples", default=str(d.max_samples),
                    help=f"samples shown per run and benchmark (default {d.max_samples}; the report says how many "
                         "were left out)")
    vw.add_argument("--max-trees", default=str(d.max_trees),
                    help=f"refinement trees shown per iteration (default {d.max_trees})")
    vw.add_argument("--max-chars", default=str(d.max_chars),
                    help=f"characters shown per text before it is cut (default {d.max_chars})")
    vw.add_argument("--tables", action=argparse.BooleanOptionalAction, default=True,
                    help="the paper's tables with bootstrap intervals (default: yes)")
    vw.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                    help="the figures, embedded as images (default: yes)")
    vw.add_argument("--paper-model", default="", help="the published rows beside the measured ones (default "
                                                      "LLaMA3-8B-Instruct; e.g. mistral, glm)")
    vw.add_argument("--resamples", default=str(d.resamples),
                    help=f"bootstrap resamples of the table intervals (default {d.resamples})")
    vw.add_argument("--seed", default="0", help="bootstrap seed (default 0)")
    vw.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """`spar view`: write the report and say where it is and what it left out."""
    from harness.reports.view import ViewOptions, write_view

    opts = ViewOptions(max_samples=int_flag(args.max_samples, "--max-samples"),
                       max_trees=int_flag(args.max_trees, "--max-trees"),
                       max_chars=int_flag(args.max_chars, "--max-chars", 100),
                       tables=args.tables, plots=args.plots, paper_model=args.paper_model or None,
                       resamples=int_flag(args.resamples, "--resamples"), seed=int_flag(args.seed, "--seed", 0))
    output = Path(args.output) if args.output else Path(args.paths[0]) / "view.html"
    if output.suffix.lower() not in (".html", ".htm"):
        raise SparError(f"--output {output}: give an .html file name")
    summary = write_view(args.paths, output, opts)
    left = []
    if summary.samples_left_out:
        left.append(f"{summary.samples_left_out} samples left out (--max-samples)")
    if summary.trees_left_out:
        left.append(f"{summary.trees_left_out} trees left out (--max-trees)")
    for note in summary.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"view: {output} ({summary.runs} runs, {summary.samples_shown} samples, {summary.trees_shown} "
                  f"trees{'; ' + '; '.join(left) if left else ''})", markup=False, highlight=False)
    return 0

