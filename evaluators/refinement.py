"""Refinement evaluation (SPaR Table 3): the model under test (a refiner) rewrites a flawed response given the
critique, with the SPaR 3-turn refine chat; the refined output is parsed from [[start]] ... [[end]]; a judge model
decides with the SPaR judge prompt (majority of `votes`) whether the refinement follows the prompt.

Data: JSONL with `prompt`, `response` (the flawed one) and `critique` per line (hub id or local path; a small
built-in set, `builtin`, serves demos and tests). Accuracy counts parse failures and judge ties as failures; both
are reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from evaluators.base import Evaluator, GenerationConfig, LoadedData, ScoreResult
from evaluators.judging import JudgeConfig, get_parser, judge_messages, majority_vote, parse_refinement, \
    refine_messages
from harness.core.data import load_hub_rows, read_jsonl, require, sha256_of
from harness.core.errors import DataError, SparError
from harness.core.options import option, options
from harness.core.types import ChatRequest

BUILTIN = Path(__file__).parent / "data" / "refinement_builtin.jsonl"


@options
class RefinementOptions:
    require_end_marker: bool = option(False, "accept a refinement only when it has both [[start]] and [[end]] "
                                             "(the official code accepts a missing [[end]])")


class RefinementEvaluator(Evaluator):
    name = "refinement"
    Options = RefinementOptions
    headline = ("accuracy",)
    needs_judge = True

    def __init__(self, options=None, judge=None) -> None:
        super().__init__(options, judge)
        self.parser = get_parser(self.judge.parser)
        self.require_end = self.options.require_end_marker

    def describe(self) -> dict:
        return {"prompt": "SPaR 3-turn refine chat (search-time variant)", "judge": self.judge.describe(),
                "refinement_parser": "[[start]]...[[end]]" + (" (both required)" if self.require_end else
                                                               " (missing [[end]] accepted, as the official code)")}

    def load(self, source: str | None, limit: int | None = None) -> LoadedData:
        source = source or "builtin"
        path = BUILTIN if source == "builtin" else Path(source)
        if path.exists():
            rows, provenance = read_jsonl(path), {"path": str(path.resolve()), "sha256": sha256_of(path)}
            where: Any = path
        else:
            rows, provenance = load_hub_rows(source)
            where = source
        items = []
        for line, row in enumerate(rows, 1):
            items.append({"prompt": require(row, "prompt", str, where, line),
                          "response": require(row, "response", str, where, line),
                          "critique": require(row, "critique", str, where, line)})
        if not items:
            raise DataError(where, "no items")
        items = items[:limit] if limit else items
        provenance.update(num_items=len(items), limit=limit)
        return LoadedData(items, provenance)

    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]:
        return [ChatRequest(refine_messages(it["prompt"], it["response"], it["critique"]), config.sampling,
                            seed=config.seed) for it in data.items]

    def judge_requests(self, data: LoadedData, responses: Sequence[str]) -> list[ChatRequest]:
        out = []
        for it, text in zip(data.items, responses):
            refined = parse_refinement(text, self.require_end)
            if refined is not None:
                out.append(self.judge.request(judge_messages(it["prompt"], refined)))
        return out

    def match_outputs(self, data: LoadedData, path: str, fmt: str | None = None, allow_partial: bool = False,
                      skip_invalid: bool = False) -> tuple[LoadedData, list[str]]:
        by_prompt = {it["prompt"]: it for it in data.items}
        items, texts = [], []
        for line, row in enumerate(read_jsonl(path), 1):
            prompt = require(row, "prompt", str, path, line)
            if prompt not in by_prompt:
                raise DataError(path, f"prompt not in the refinement data: {prompt[:60]!r}", line, "prompt")
            items.append(by_prompt[prompt])
            texts.append(require(row, "response", str, path, line))
        if not items:
            raise SparError(f"{path}: no responses in the file")
        return LoadedData(items, dict(data.source, num_items=len(items))), texts

    def score(self, data: LoadedData, responses: Sequence[str], judgments=None) -> ScoreResult:
        judged = iter(judgments or [])
        samples = []
        for it, text in zip(data.items, responses):
            refined = parse_refinement(text, self.require_end)
            sample = dict(it, refine_output=text, refined=refined, parsed=refined is not None)
            if refined is None:
                sample.update(follows=False, vote=None)
            else:
                texts = next(judged, None)
                if texts is None:
                    raise SparError("refinement: fewer judge outputs than parsed refinements")
                vote = majority_vote(texts, self.parser)
                sample.update(follows=vote.label == 1, vote=vote.to_dict(), judgments=list(texts))
            samples.append(sample)
        n = len(samples)
        metrics = {"accuracy": sum(s["follows"] for s in samples) / n,
                   "counts": {"items": n, "parse_failures": sum(not s["parsed"] for s in samples),
                              "judge_ties": sum(1 for s in samples if s["vote"] and s["vote"]["label"] is None),
                              "unparseable_judgments": sum(s["vote"]["invalid"] for s in samples if s["vote"])}}
        return ScoreResult(samples, metrics)
