"""`spar run`: SPaR (or a baseline's) self-play iterations from a YAML experiment config, resumable."""

from __future__ import annotations

import argparse

from harness.commands.flags import optional_int

NAME = "run"
LOSS_NOTE = ("dpo_loss, rft_loss: the stage's mean training loss over all its steps (transformers' train_loss); "
             "the progress line's 'step loss' is the latest logged step's")


def add_parser(sub) -> None:
    """Add `spar run` to the subcommand parser."""
    p = sub.add_parser(NAME, help="SPaR self-play iterations from a YAML experiment config (resumable)")
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("--output", default="", help="experiment folder (default: output_dir, else results/<experiment>)")
    p.add_argument("--iterations", default=None, help="override the number of iterations")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set search.algorithm=dfs (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the config end to end in seconds: every stage runs with fake generation, a tiny "
                        "random model for training and a few prompts, in a temporary folder (training/dry_run.py)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """Run (or dry-run) the experiment and print one column per complete iteration."""
    from harness.core.progress import RichReporter
    from harness.suite.runner import checkpoint_evaluator
    from training.config import load_run_config
    from training.loop import check_prompts, run_experiment, run_label, summary_row
    from training.methods import get_method

    overrides = list(args.overrides)
    if args.output:
        overrides.append(f"output_dir={args.output}")
    if args.iterations is not None:
        overrides.append(f"iterations={optional_int(args.iterations, '--iterations')}")
    run_cfg = load_run_config(args.config, overrides)
    check_prompts(run_cfg)  # cheap checks first; then the eval data, all before any work
    reporter = RichReporter()
    if args.dry_run:
        from training.dry_run import dry_run

        for line in dry_run(run_cfg, reporter, checkpoint_evaluator).lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return 0
    records = run_experiment(run_cfg, reporter, evaluate=checkpoint_evaluator(run_cfg, reporter))
    label = run_label(run_cfg, get_method(run_cfg.method))
    rows = [summary_row(r) for r in records if r["extra"]["complete"]]
    order = dict.fromkeys(k for row in reversed(rows) for k in row)  # a trained iteration's order: counts, then scores
    rows = [{k: row.get(k) for k in order} for row in rows]
    zero = " (iteration 0 = the starting models)" if any(row["iteration"] == 0 for row in rows) else ""
    if rows:
        table = iteration_table(rows, f"{run_cfg.experiment} ({label}): per-iteration summary, scores in %{zero}")
        table.caption = LOSS_NOTE if any(k.endswith("_loss") for row in rows for k in row) else None
        console.print(table)
    else:  # until= stopped every iteration before its last stage: nothing complete to tabulate
        console.print(f"{run_cfg.experiment} ({label}): no complete iteration to summarise (until={run_cfg.until}); "
                      "each stage's counts are in iter_<t>/record.json")
    console.print(f"experiment folder: {run_cfg.out}")
    return 0


def iteration_table(rows: list[dict], title: str):
    """One row per quantity, one column per iteration (scores in %, losses as they are)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("")
    for row in rows:
        table.add_column(f"iter {row['iteration']}", justify="right")
    for key in dict.fromkeys(k for row in rows for k in row if k != "iteration"):
        table.add_row(key, *(_cell(key, row.get(key)) for row in rows))
    return table


def _cell(col: str, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.2f}" if "." in col else f"{value:.4f}"
    return str(value)
