"""Benchmark registry: one module per benchmark, one line here per module."""

from __future__ import annotations

import importlib

from evaluators.base import Evaluator
from harness.errors import SparError

REGISTRY: dict[str, str] = {
    "ifeval": "evaluators.ifeval:IFEvalEvaluator",
    "followbench": "evaluators.followbench:FollowBenchEvaluator",
    "llmbar": "evaluators.llmbar:LLMBarEvaluator",
    "refinement": "evaluators.refinement:RefinementEvaluator",
}


def get_evaluator(name: str, options: dict | None = None) -> Evaluator:
    if name not in REGISTRY:
        raise SparError(f"unknown benchmark {name!r} (choose from {', '.join(REGISTRY)})")
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)(options)


__all__ = ["REGISTRY", "Evaluator", "get_evaluator"]
