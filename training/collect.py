"""Negative collection (SPaR §1.3a): the actor samples k responses per prompt, the refiner judges each n times,
majority vote; a prompt with a majority-No response yields one negative (drawn at random) with its critique."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Sequence

from evaluators.judging import get_parser, judge_messages, majority_vote
from harness.core.backends.base import derive_seed
from harness.core.options import PositiveInt, option, options
from harness.core.types import ChatRequest, Completion, Message, SamplingParams

Generate = Callable[[list[ChatRequest]], list[list[Completion]]]


@options
class CollectConfig:
    """Sampling and judging for negative collection; defaults from the official `infer.py` / `judge.py`."""

    responses_per_prompt: PositiveInt = option(5, "actor samples per prompt (official infer.py: 5)")
    actor_sampling: SamplingParams = option(SamplingParams(temperature=0.9, top_p=0.9, max_new_tokens=2048),
                                            "actor decoding (official: T 0.9, top-p 0.9, 2048 tokens)")
    votes: PositiveInt = option(5, "refiner judgments per response; the majority decides (official judge.py: 5)")
    judge_sampling: SamplingParams = option(SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=2048),
                                            "judge decoding (official: T 0.7, top-p 1.0, 2048 tokens)")
    parser: Literal["official", "strict", "lenient"] = option("official", "verdict parser of the judgments")
    negatives_per_prompt: PositiveInt = option(1, "majority-No responses drawn per prompt as search roots "
                                                  "(official: tmp[:1])")
    seed: int = option(0, "base of the sampling seeds and the negative draw")


@dataclass
class JudgedResponse:
    response: str
    label: int | None  # majority: 1 follows, 0 does not, None tie / nothing parseable (dropped)
    yes: int
    no: int
    invalid: int
    critique: str | None
    judgments: list[str] = field(default_factory=list)
    finish_reason: str = "stop"
    labels: list[int | None] = field(default_factory=list)  # each judgment's verdict (1, 0, None = unparseable)


@dataclass
class CollectedPrompt:
    key: str
    prompt: str
    responses: list[JudgedResponse]
    negatives: list[int]  # indexes into responses chosen as search roots

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CollectedPrompt":
        return cls(d["key"], d["prompt"], [JudgedResponse(**r) for r in d["responses"]], d["negatives"])


@dataclass
class CollectStats:
    prompts: int = 0
    responses: int = 0
    judgments: int = 0
    unparseable_judgments: int = 0
    ties: int = 0
    majority_yes: int = 0
    majority_no: int = 0
    prompts_with_negative: int = 0
    negatives: int = 0


def collect(prompts: Sequence[tuple[str, str]], cfg: CollectConfig, actor: Generate, judge: Generate
            ) -> tuple[list[CollectedPrompt], CollectStats]:
    """`prompts` are (key, text). `actor` and `judge` answer request lists (cached generation)."""
    parser = get_parser(cfg.parser)
    samples = actor([ChatRequest((Message("user", text),), cfg.actor_sampling, seed=derive_seed(cfg.seed, key, "actor"),
                                 n=cfg.responses_per_prompt) for key, text in prompts])
    # the official infer.py / judge.py keep `text.strip()` of every sample and judgment
    pairs = [(p, j, comp) for p, comps in zip(prompts, samples) for j, comp in enumerate(comps)]
    judged = judge([ChatRequest(judge_messages(text, comp.text.strip()), cfg.judge_sampling, n=cfg.votes,
                                seed=derive_seed(cfg.seed, key, "judge", j))
                    for (key, text), j, comp in pairs])
    stats = CollectStats(prompts=len(prompts), responses=len(pairs), judgments=len(pairs) * cfg.votes)
    by_prompt: dict[str, list[JudgedResponse]] = {key: [] for key, _ in prompts}
    for ((key, _), _, comp), judgments in zip(pairs, judged):
        texts = [c.text.strip() for c in judgments]
        vote = majority_vote(texts, parser)
        labels = [parser(t) for t in texts]
        stats.unparseable_judgments += vote.invalid
        stats.ties += vote.tie
        stats.majority_yes += vote.label == 1
        stats.majority_no += vote.label == 0
        by_prompt[key].append(JudgedResponse(comp.text.strip(), vote.label, vote.yes, vote.no, vote.invalid,
                                             vote.critique, texts, comp.finish_reason, labels))
    out = []
    for key, text in prompts:
        responses = by_prompt[key]
        negatives = [i for i, r in enumerate(responses) if r.label == 0 and r.response.strip()]
        # the official code shuffles, keeps [:1]
        random.Random(derive_seed(cfg.seed, key, "negative")).shuffle(negatives)
        negatives = sorted(negatives[: cfg.negatives_per_prompt])
        stats.prompts_with_negative += bool(negatives)
        stats.negatives += len(negatives)
        out.append(CollectedPrompt(key, text, responses, negatives))
    return out, stats
