"""The `spar` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from dataclasses import fields

from harness.config import EvalConfig, add_arguments, build_config
from harness.errors import SparError

QUICKSTART_MAX_NEW_TOKENS = 256


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spar", description="SPaR evaluation harness")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="generate with a model and score benchmarks")
    ev.add_argument("--config", help="YAML file of eval options (flags override it)")
    add_arguments(ev, EvalConfig)

    sc = sub.add_parser("score", help="score outputs produced elsewhere (responses; LLMBar: judgments)")
    sc.add_argument("benchmark", help="benchmark name: ifeval, followbench, llmbar, refinement")
    sc.add_argument("--responses", help="JSONL with `prompt` (or `key`) and `response` per line")
    sc.add_argument("--judgments", help="llmbar: JSONL with `subset`, `index`, `output` (pointwise) or `order` "
                                        "(pairwise), and `judgment` or `judgments` per line")
    sc.add_argument("--output", required=True, help="folder for record.json, metrics.json, samples.jsonl")
    sc.add_argument("--config", help="YAML file of options (flags override it)")
    add_arguments(sc, EvalConfig, skip=("output", "benchmarks", "limit"))

    qs = sub.add_parser("quickstart", help="offline demo: the embedded SmolLM2 on a built-in IFEval-format set")
    qs.add_argument("--output", default="", help="run folder (default results/runs/<time>-quickstart)")
    qs.add_argument("--data", default="quickstart", help="'quickstart' (built-in 26 prompts), or a real IFEval "
                                                         "file/folder/hub id")
    qs.add_argument("--limit", type=int, default=None, help="score only the first N prompts")
    qs.add_argument("--max-new-tokens", type=int, default=QUICKSTART_MAX_NEW_TOKENS, help="generation budget")
    rn = sub.add_parser("run", help="SPaR self-play iterations from a YAML experiment config (resumable)")
    rn.add_argument("config", help="experiment YAML (see configs/)")
    rn.add_argument("--output", default="", help="experiment folder (default: output_dir, else results/<experiment>)")
    rn.add_argument("--iterations", type=int, default=None, help="override the number of iterations")
    rn.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set search.algorithm=dfs (repeatable)")
    pr = sub.add_parser("prompts", help="build self-play prompts")
    prs = pr.add_subparsers(dest="prompts_command", required=True)
    ev_p = prs.add_parser("evolve", help="taxonomy evolution of seed prompts (SPaR's prompt construction)")
    ev_p.add_argument("--seeds", required=True, help="seed prompts: JSON/JSONL rows with `prompt` (or a hub id)")
    ev_p.add_argument("--output", required=True, help="JSONL of evolved prompts (usable as `prompts:` in a config)")
    ev_p.add_argument("--limit", type=int, default=None, help="evolve only the first N seeds")
    ev_p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (official: 0.7)")
    ev_p.add_argument("--max-new-tokens", type=int, default=1024, help="generation budget")
    add_arguments(ev_p, EvalConfig, skip=("output", "benchmarks", "limit", "data", "temperature", "max_new_tokens",
                                          "system_prompt") + tuple(f.name for f in fields(EvalConfig)
                                                                   if f.name.startswith(("judge", "llmbar",
                                                                                         "followbench"))))
    return parser


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


def summary_table(metrics: dict[str, dict], title: str):
    from rich.table import Table

    from evaluators import get_evaluator

    table = Table(title=title)
    table.add_column("benchmark")
    table.add_column("metric")
    table.add_column("value (%)", justify="right")
    for bench, values in metrics.items():
        for i, name in enumerate(get_evaluator(bench).headline):
            if name in values:
                value = values[name]
                table.add_row(bench if i == 0 else "", name, "n/a" if value is None else f"{100 * value:.2f}")
    table.caption = "; ".join(f"{bench}: " + ", ".join(f"{k}={v}" for k, v in values.get("counts", {}).items())
                              for bench, values in metrics.items() if values.get("counts"))
    return table


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    from harness.progress import RichReporter

    console = Console()
    args = _parser().parse_args(argv)
    reporter = RichReporter()
    try:
        from harness import suite

        if args.command == "eval":
            cfg = build_config(EvalConfig, args, yaml_path=args.config)
            result = suite.run_eval(cfg, reporter)
            title = f"{cfg.model} ({cfg.backend})"
        elif args.command == "quickstart":
            from harness.models import EMBEDDED_NAME

            cfg = build_config(EvalConfig, model=EMBEDDED_NAME, benchmarks="ifeval", data=args.data,
                               limit=args.limit, max_new_tokens=args.max_new_tokens,
                               output=args.output or "")
            if not cfg.output:
                cfg.output = str(suite.default_output("quickstart"))
            reporter.note(f"quickstart: {EMBEDDED_NAME} on IFEval-format prompts ({args.data}), offline on CPU")
            result = suite.run_eval(cfg, reporter)
            title = f"{EMBEDDED_NAME} (hf)"
        elif args.command == "run":
            from training.config import load_run_config
            from training.loop import run_experiment, summary_row

            overrides = list(args.overrides)
            if args.output:
                overrides.append(f"output_dir={args.output}")
            if args.iterations is not None:
                overrides.append(f"iterations={args.iterations}")
            run_cfg = load_run_config(args.config, overrides)
            records = run_experiment(run_cfg, reporter)
            console.print(iteration_table([summary_row(r) for r in records if r["status"] == "finished"],
                                          f"{run_cfg.experiment}: per-iteration summary (scores in %)"))
            console.print(f"experiment folder: {run_cfg.out}")
            return 0
        elif args.command == "prompts":
            from training.evolve import run_evolve

            cfg = build_config(EvalConfig, args)
            counts = run_evolve(cfg, args.seeds, args.output, args.limit, args.temperature, args.max_new_tokens,
                                reporter)
            console.print(f"evolved prompts: {counts} -> {args.output}")
            return 0
        else:
            outputs = args.judgments if args.benchmark == "llmbar" else args.responses
            if not outputs:
                raise SparError("spar score llmbar needs --judgments FILE" if args.benchmark == "llmbar"
                                else f"spar score {args.benchmark} needs --responses FILE")
            cfg = build_config(EvalConfig, args, yaml_path=args.config, output=args.output)
            result = suite.run_score(args.benchmark, outputs, args.output, cfg, reporter)
            title = f"scored {outputs}"
    except SparError as exc:
        print(f"spar: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spar: interrupted; run the same command again to resume from the cache", file=sys.stderr)
        return 130
    console.print(summary_table(result.metrics, title))
    console.print(f"run folder: {result.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
