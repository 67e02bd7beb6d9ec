"""The `spar` command line: one module per subcommand, each owning its parser (`add_parser`) and its handler
(`handle(args, console) -> exit code`); the flag handling they share is `harness.commands.flags`.

Commands sit on top of the house: they call the evaluation suite (`harness.suite`), the training loop
(`training/`) and the report builders (`harness.reports`), and nothing below imports them. Every user mistake ends
as one line `spar: error: ...` and exit code 2; Ctrl-C or SIGTERM as exit code 130 with the run record marked
"interrupted".
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Sequence

from harness.commands import (benchmarks, compare, contamination, eval as eval_command, prompts, quickstart, regress,
                              run, score, tables, view)
from harness.commands.flags import SparParser
from harness.core.errors import SparError

#: the subcommands in the order `spar --help` lists them
COMMANDS = (eval_command, score, quickstart, run, benchmarks, prompts, contamination, tables, compare, regress, view)


def build_parser() -> argparse.ArgumentParser:
    """The `spar` parser: each command module adds its subcommand and sets `handler`."""
    parser = SparParser(prog="spar", description="SPaR evaluation harness")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=SparParser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv) and run the subcommand; returns the exit code."""
    from pydantic import ValidationError
    from rich.console import Console

    from harness.core.options import validation_message

    console = Console(width=None if sys.stdout.isatty() else 160)  # piped output keeps wide tables readable
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args, console)
    except SparError as exc:
        print(f"spar: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a value checked where it was built rather than where it was read
        print(f"spar: error: {validation_message(exc, 'option')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spar: interrupted; run the same command again to resume from the cache", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
