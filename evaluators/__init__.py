"""Benchmark registry: one module per benchmark, one line here per module.

A benchmark module defines an `Evaluator` subclass with its own `Options`; adding a benchmark is that module plus
one line in REGISTRY (or `register(name, "package.module:Class")` from your own code).

A family of benchmarks named `<prefix>:<argument>` (`lm-eval:gsm8k`: one lm-eval task) is one line in PREFIXES: its
class's `specialize(argument)` returns the Evaluator class of that name.
"""

from __future__ import annotations

import importlib
from typing import Any

from evaluators.base import Evaluator
from harness.core.errors import SparError

REGISTRY: dict[str, str] = {
    "ifeval": "evaluators.ifeval:IFEvalEvaluator",
    "followbench": "evaluators.followbench:FollowBenchEvaluator",
    "llmbar": "evaluators.llmbar:LLMBarEvaluator",
    "refinement": "evaluators.refinement:RefinementEvaluator",
}

#: name prefixes: `<prefix>:<argument>` resolves to `Class.specialize(argument)` (an Evaluator class named so)
PREFIXES: dict[str, str] = {
    "lm-eval": "evaluators.lm_eval_tasks:LMEvalTaskEvaluator",
}

#: what `spar eval` runs when no benchmark is named, and what `spar quickstart` scores on its built-in prompts
DEFAULT_BENCHMARKS = "ifeval"
QUICKSTART = {"benchmark": "ifeval", "data": "quickstart"}


def register(name: str, target: str) -> None:
    """Add a benchmark: `target` is "package.module:EvaluatorClass"."""
    REGISTRY[name] = target


def _import(name: str, target: str) -> Any:
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise SparError(f"benchmark {name!r}: cannot import {target} ({exc})") from None


def evaluator_class(name: str) -> type[Evaluator]:
    if name in REGISTRY:
        return _import(name, REGISTRY[name])
    prefix, sep, argument = name.partition(":")
    if sep and prefix in PREFIXES:
        return _import(name, PREFIXES[prefix]).specialize(argument)
    families = "".join(f", {p}:..." for p in PREFIXES)
    raise SparError(f"unknown benchmark {name!r} (choose from {', '.join(REGISTRY)}{families})")


def family_class(prefix: str) -> type[Evaluator]:
    """The class behind a family of benchmarks (`lm-eval` for `lm-eval:<task>`), before it names one task."""
    return _import(f"{prefix}:<task>", PREFIXES[prefix])


def get_evaluator(name: str, options: Any = None, judge: Any = None) -> Evaluator:
    """An evaluator with its options checked (a mapping or its Options instance) and the run's judge settings."""
    return evaluator_class(name)(options, judge)


__all__ = ["DEFAULT_BENCHMARKS", "PREFIXES", "QUICKSTART", "REGISTRY", "Evaluator", "evaluator_class",
           "family_class", "get_evaluator", "register"]
