"""`spar prompts evolve`: taxonomy evolution of seed prompts (SPaR's prompt construction)."""

from __future__ import annotations

import argparse

from harness.commands.flags import (DECODE_FLAGS, SparParser, add_config_flags, config_flag_values, float_flag,
                                    optional_int)

NAME = "prompts"
#: the config flags that do not apply to evolving prompts
NOT_HERE = ("benchmarks", "limit", "data", "output", "temperature", "max-new-tokens", "top-p", "system-prompt",
            "judge", "judge-backend", "judge-base-url", "judge-api-key-env", "refiner", "judge-votes",
            "judge-temperature", "judge-max-new-tokens", "judge-parser", *DECODE_FLAGS)


def add_parser(sub) -> None:
    """Add `spar prompts evolve` to the subcommand parser."""
    p = sub.add_parser(NAME, help="build self-play prompts")
    steps = p.add_subparsers(dest="prompts_command", required=True, parser_class=SparParser)
    ev = steps.add_parser("evolve", help="taxonomy evolution of seed prompts (SPaR's prompt construction)")
    ev.add_argument("--seeds", required=True, help="seed prompts: JSON/JSONL rows with `prompt` (or a hub id)")
    ev.add_argument("--output", required=True, help="JSONL of evolved prompts (usable as `prompts:` in a config)")
    ev.add_argument("--limit", default=None, help="evolve only the first N seeds")
    ev.add_argument("--temperature", default="0.7", help="sampling temperature (official: 0.7)")
    ev.add_argument("--max-new-tokens", default="1024", help="generation budget")
    add_config_flags(ev, skip=NOT_HERE)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """Evolve the seeds and say how many prompts each step produced."""
    from harness.core.progress import RichReporter
    from harness.suite.config import load_eval_config
    from harness.suite.runner import run_evolve

    cfg = load_eval_config(None, config_flag_values(args), args.overrides)
    counts = run_evolve(cfg, args.seeds, args.output, optional_int(args.limit, "--limit"),
                        float_flag(args.temperature, "--temperature"),
                        optional_int(args.max_new_tokens, "--max-new-tokens"), RichReporter())
    console.print(f"evolved prompts: {counts} -> {args.output}")
    return 0
