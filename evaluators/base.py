"""The evaluator interface: a benchmark turns items into requests, and responses into per-sample verdicts and
metrics. Metrics are computed only from per-sample records, so `spar eval` and `spar score` share one path."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

from harness.types import ChatRequest, SamplingParams


@dataclass
class LoadedData:
    """Benchmark items plus where they came from (path and sha256, or hub id and fingerprint)."""

    items: list[Any]
    source: dict = field(default_factory=dict)


@dataclass
class ScoreResult:
    samples: list[dict]
    metrics: dict


@dataclass(frozen=True)
class GenerationConfig:
    """How the actor answers benchmark prompts (greedy by default, as IFEval/FollowBench are reported)."""

    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.0, max_new_tokens=1280))
    seed: int = 0
    system_prompt: str | None = None


class Evaluator(ABC):
    """A benchmark. Flow: load -> requests (answered by the model under test) -> [judge_requests (answered by a
    judge model) when `needs_judge`] -> score. `options` are benchmark-specific settings from the run config."""

    name: str = ""
    #: metric names shown in the CLI summary table, in order
    headline: tuple[str, ...] = ()
    needs_judge: bool = False
    #: whether inference-time tree search may replace the model's answers (actor benchmarks)
    searchable: bool = False

    def __init__(self, options: dict | None = None) -> None:
        self.options = dict(options or {})

    def judge_requests(self, data: LoadedData, responses: Sequence[str], judge: Any) -> list[ChatRequest]:
        """Requests for the judge model (one per judged sample); `judge` is an evaluators.judging.JudgeConfig."""
        return []

    @abstractmethod
    def load(self, source: str | None, limit: int | None = None) -> LoadedData: ...

    @abstractmethod
    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]: ...

    @abstractmethod
    def score(self, data: LoadedData, responses: Sequence[str],
              judgments: Sequence[Sequence[str]] | None = None) -> ScoreResult:
        """Per-sample records and metrics; `judgments` answers `judge_requests` (n texts each) in order."""

    @abstractmethod
    def match_responses(self, data: LoadedData, path: str) -> tuple[LoadedData, list[str]]:
        """Pair a responses file made elsewhere with the data; returns the matched items and their responses."""

    def describe(self) -> dict:
        """Scorer settings that the run record must carry."""
        return {}
