"""Flag handling shared by the `spar` subcommands: the parser class, number and list flags, the eval/score config
flags (each sets one dotted key of `harness.suite.config.EvalConfig`) and the bootstrap flags of the reports.

Every mistake is a `SparError` naming the flag: one `spar: error:` line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Callable

from harness.core.errors import SparError
from harness.core.options import help_of
from harness.core.spec import ModelSpec
from harness.core.stats import DEFAULT_RESAMPLES
from harness.suite.config import ALL_FLAGS, SEARCH_FLAGS, DecodeConfig, EvalConfig, JudgingConfig

#: the decoding-strategy flags (only `spar eval` takes them)
DECODE_FLAGS = tuple(flag for flag, _ in SEARCH_FLAGS)

#: a subcommand's handler: (parsed flags, rich console) -> exit code
Handler = Callable[[argparse.Namespace, Any], int]


class SparParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `spar: error:` line (exit 2) like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SparError(f"{self.prog}: {message}")


def int_flag(value: str, flag: str, low: int = 1) -> int:
    """A command-line whole number of at least `low`, or a one-line error naming the flag."""
    try:
        number = int(value)
    except ValueError:
        raise SparError(f"{flag}: expected a whole number, got {value!r}") from None
    if number < low:
        raise SparError(f"{flag} must be at least {low}, got {number}")
    return number


def float_flag(value: str, flag: str, low: float = 0.0, high: float | None = None) -> float:
    """A command-line finite number in [low, high] (no upper bound when `high` is None), or a one-line error."""
    try:
        number = float(value)
    except ValueError:
        raise SparError(f"{flag}: expected a number, got {value!r}") from None
    if high is None and (not math.isfinite(number) or number < low):
        raise SparError(f"{flag} must be a finite number >= {low}, got {value}")
    if high is not None and (not math.isfinite(number) or not low <= number <= high):
        raise SparError(f"{flag} must be between {low} and {high}, got {value}")
    return number


def optional_int(value: str | None, flag: str) -> int | None:
    """`int_flag` for a flag that may be left out."""
    return None if value is None else int_flag(value, flag)


def csv_list(value: str | None) -> list[str]:
    """A comma-separated flag as its non-empty items."""
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def add_stats_flags(p: argparse.ArgumentParser) -> None:
    """--resamples and --seed of the bootstrap intervals (tables, compare, regress)."""
    p.add_argument("--resamples", default=str(DEFAULT_RESAMPLES),
                   help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    p.add_argument("--seed", default="0", help="bootstrap seed (same seed, same intervals; default 0)")


def _field_of(key: str) -> tuple[type, str]:
    """The declaring class and field name of a dotted key (`model.batch_size` -> ModelSpec, batch_size)."""
    head, _, tail = key.partition(".")
    if not tail:
        return EvalConfig, head
    cls = {"model": ModelSpec, "judge": ModelSpec, "refiner": ModelSpec, "judging": JudgingConfig,
           "decode": DecodeConfig}[head]
    return cls, tail


def _default_text(cls: type, name: str) -> str:
    """` (default: X)` for a flag's help, from the field's declared default ('' when the help already says)."""
    from pydantic.fields import FieldInfo

    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    value = f.default.default if isinstance(f.default, FieldInfo) else f.default  # option() with constraints
    if value is dataclasses.MISSING or value is None or value == "" or isinstance(value, (dict, list)):
        return ""
    return f" (default: {value})"


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = (), hidden: tuple[str, ...] = ()) -> None:
    """The eval/score flags (every one optional: unset flags leave the YAML or default value). `hidden` flags are
    accepted but not listed by --help (they do not apply to the command)."""
    for flag, key in ALL_FLAGS:
        if flag in skip:
            continue
        cls, name = _field_of(key)
        help_text = help_of(cls, name)
        if key.startswith(("judge.", "refiner.")) and name != "name":
            help_text = f"the {key.split('.')[0]}'s {name} (default: the model's)"
        elif key in ("judge.name", "refiner.name"):
            help_text = help_of(EvalConfig, key.split(".")[0]) + ": a model name, folder or hub id"
        elif "default" not in help_text.lower():
            help_text += _default_text(cls, name).replace("%", "%%")
        if flag.startswith("tree-search") or flag in hidden:  # earlier names, or flags that do not apply here
            help_text = argparse.SUPPRESS
        parser.add_argument("--" + flag, dest="flag:" + key, default=None, metavar="VALUE", help=help_text)
    parser.add_argument("--bench", dest="bench_overrides", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="a benchmark's own option, e.g. --bench followbench.categories=content (repeatable; "
                             "`spar benchmarks` lists each benchmark's options)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any config key, e.g. --set judge.api_key_env=JUDGE_KEY (repeatable)")


def config_flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config flags given on the command line: {dotted key: raw text} (for `load_eval_config`)."""
    return {k[len("flag:"):]: v for k, v in vars(args).items() if k.startswith("flag:") and v is not None}
