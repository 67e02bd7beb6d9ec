"""`spar benchmarks`: the registered benchmarks with their options and the output formats they score."""

from __future__ import annotations

import argparse

NAME = "benchmarks"


def add_parser(sub) -> None:
    """Add `spar benchmarks` to the subcommand parser."""
    p = sub.add_parser(NAME, help="list the registered benchmarks with their options and formats")
    p.add_argument("name", nargs="?", help="one benchmark")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """One table per benchmark (or family of benchmarks): each option with its default and help."""
    import dataclasses

    from rich.markup import escape
    from rich.table import Table

    from evaluators import PREFIXES, REGISTRY, evaluator_class, family_class
    from harness.core.options import help_of

    families = {f"{prefix}:<task>": prefix for prefix in PREFIXES}
    for bench in [args.name] if args.name else [*REGISTRY, *families]:
        if bench in families:  # a family of benchmarks: `lm-eval:<task>` names any lm-eval task, group or tag
            cls = family_class(families[bench])
            title = (f"{bench}: one benchmark per task, e.g. --benchmarks {bench.split(':')[0]}:gsm8k; "
                     f"options as --bench {bench.split(':')[0]}:gsm8k.KEY=VALUE")
        else:
            cls = evaluator_class(bench)
            title = f"{bench}: scores {cls.scores}; --format {', '.join(f or 'auto' for f in cls.formats)}"
        table = Table(title=escape(title))
        for col in ("option (--bench NAME.KEY=VALUE)", "default", "help"):
            table.add_column(col)
        defaults = cls.Options()
        for f in dataclasses.fields(cls.Options):
            table.add_row(f"{bench}.{f.name}", escape(repr(getattr(defaults, f.name))),
                          escape(help_of(cls.Options, f.name)))
        console.print(table)
    return 0
