"""Benchmark registry: one module per benchmark, one line here per module.

A benchmark module defines an `Evaluator` subclass with its own `Options`; adding a benchmark is that module plus
one line in REGISTRY (or `register(name, "package.module:Class")` from your own code).
"""

from __future__ import annotations

import importlib
from typing import Any

from evaluators.base import Evaluator
from harness.errors import SparError

REGISTRY: dict[str, str] = {
    "ifeval": "evaluators.ifeval:IFEvalEvaluator",
    "followbench": "evaluators.followbench:FollowBenchEvaluator",
    "llmbar": "evaluators.llmbar:LLMBarEvaluator",
    "refinement": "evaluators.refinement:RefinementEvaluator",
}

#: what `spar eval` runs when no benchmark is named, and what `spar quickstart` scores on its built-in prompts
DEFAULT_BENCHMARKS = "ifeval"
QUICKSTART = {"benchmark": "ifeval", "data": "quickstart"}


def register(name: str, target: str) -> None:
    """Add a benchmark: `target` is "package.module:EvaluatorClass"."""
    REGISTRY[name] = target


def evaluator_class(name: str) -> type[Evaluator]:
    if name not in REGISTRY:
        raise SparError(f"unknown benchmark {name!r} (choose from {', '.join(REGISTRY)})")
    module, _, cls = REGISTRY[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise SparError(f"benchmark {name!r}: cannot import {REGISTRY[name]} ({exc})") from None


def get_evaluator(name: str, options: Any = None, judge: Any = None) -> Evaluator:
    """An evaluator with its options checked (a mapping or its Options instance) and the run's judge settings."""
    return evaluator_class(name)(options, judge)


__all__ = ["DEFAULT_BENCHMARKS", "QUICKSTART", "REGISTRY", "Evaluator", "evaluator_class", "get_evaluator",
           "register"]
