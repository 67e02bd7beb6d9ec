"""A toy benchmark defined outside the package: one file (this) plus one `register` call, with its own option."""

from __future__ import annotations

from typing import Sequence

from evaluators.base import Evaluator, GenerationConfig, LoadedData, ScoreResult
from harness.core.data import read_jsonl, require
from harness.core.errors import SparError
from harness.core.options import PositiveInt, option, options
from harness.core.types import ChatRequest

ITEMS = ["Say hello.", "Name a colour.", "Count to three."]


@options
class ToyOptions:
    min_words: PositiveInt = option(2, "a response passes when it has at least this many words")


class ToyEvaluator(Evaluator):
    name = "toy"
    Options = ToyOptions
    headline = ("pass_rate",)

    def load(self, source: str | None, limit: int | None = None) -> LoadedData:
        items = ITEMS[:limit] if limit else ITEMS
        return LoadedData(list(items), {"builtin": True, "num_items": len(items)})

    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]:
        return [ChatRequest.user(p, sampling=config.sampling, seed=config.seed) for p in data.items]

    def score(self, data: LoadedData, responses: Sequence[str], judgments=None) -> ScoreResult:
        samples = [{"prompt": p, "response": r, "passed": len(r.split()) >= self.options.min_words}
                   for p, r in zip(data.items, responses)]
        return ScoreResult(samples, {"pass_rate": sum(s["passed"] for s in samples) / len(samples),
                                     "min_words": self.options.min_words})

    def match_outputs(self, data, path, fmt=None, allow_partial=False, skip_invalid=False):
        by_prompt = {}
        for line, row in enumerate(read_jsonl(path), 1):
            by_prompt[require(row, "prompt", str, path, line)] = require(row, "response", str, path, line)
        missing = [p for p in data.items if p not in by_prompt]
        if missing and not allow_partial:
            raise SparError(f"{path}: no response for {missing[0]!r}")
        items = [p for p in data.items if p in by_prompt]
        return LoadedData(items, dict(data.source)), [by_prompt[p] for p in items]
