"""The evaluator interface: a benchmark turns items into requests, and responses into per-sample verdicts and
metrics. Metrics are computed only from per-sample records, so `spar eval` and `spar score` share one path."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

from harness.core.options import options, validate
from harness.core.types import ChatRequest, SamplingParams


@options
class NoOptions:
    """A benchmark without options of its own."""


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
    judge model) when `needs_judge`] -> score.

    A benchmark owns its options: `Options` is an `harness.core.options.options` dataclass, filled from YAML
    (`bench: {name: {key: value}}`) or `--bench name.key=value` and checked before any model loads. `judge` is how
    judge models are asked (votes, decoding, verdict parser), shared by the run's judged benchmarks."""

    name: str = ""
    Options: type = NoOptions
    #: metric names shown in the CLI summary table, in order
    headline: tuple[str, ...] = ()
    needs_judge: bool = False
    #: whether inference-time tree search may replace the model's answers (actor benchmarks)
    searchable: bool = False
    #: what `spar score` reads for this benchmark: "responses" (of an actor) or "judgments" (of a judge)
    scores: str = "responses"
    #: formats `spar score --format` accepts for this benchmark (the first is the default)
    formats: tuple[str, ...] = ("jsonl",)

    def __init__(self, options: Any = None, judge: Any = None) -> None:
        from evaluators.judging import JudgeConfig

        if not isinstance(options, self.Options):
            options = validate(self.Options, dict(options or {}), "--bench", prefix=(self.name,))
        self.options = options
        self.judge: JudgeConfig = judge or JudgeConfig()

    def run(self, data: LoadedData, spec: Any, backend: Any, config: GenerationConfig) -> ScoreResult | None:
        """Benchmarks that drive generation themselves (lm-eval tasks) return their result here, given the model's
        spec (harness.core.spec.ModelSpec), its open backend and the run's generation config; the others return None
        and go through requests -> score."""
        return None

    def judge_requests(self, data: LoadedData, responses: Sequence[str]) -> list[ChatRequest]:
        """Requests for the judge model (one per judged sample), asked as `self.judge` says."""
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
    def match_outputs(self, data: LoadedData, path: str, fmt: str | None = None, allow_partial: bool = False,
                      skip_invalid: bool = False) -> tuple[LoadedData, list]:
        """Pair a file of outputs made elsewhere (`scores`: responses or judgments) with the data; returns the
        matched items (their `source` says which file, its coverage of the benchmark and any counted exclusions)
        and their outputs. `fmt` names the file format (None: detect it); a file covering only part of the
        benchmark is an error unless `allow_partial`; a bad line is an error naming it unless `skip_invalid`
        (then it is counted and excluded)."""

    def summary_rows(self, metrics: dict) -> list[tuple[str, Any]]:
        """(name, value) rows of the CLI summary: the headline metrics (fractions) by default."""
        return [(k, metrics[k]) for k in self.headline if k in metrics]

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
        """Extra tables the CLI prints after the summary: (title, column names, rows)."""
        return []

    def describe(self) -> dict:
        """Scorer settings that the run record must carry."""
        return {}
