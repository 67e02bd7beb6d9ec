"""How each benchmark's per-sample records are resampled, and spar's metrics as bootstrap statistics of them.

`harness.core.stats` knows bootstrap intervals, the paired bootstrap and McNemar's test for any units and statistic;
this module (the evaluators layer, which may name benchmarks) says, per benchmark, what a *unit* is (the thing that
was sampled independently), how units are matched across runs, which strata keep their sizes when resampling,
and how each metric of the benchmark's `metrics.json` is recomputed from a resample of units. Every statistic
equals the scorer's own metric on the full sample set (tests check this against each evaluator's
`compute_metrics`); the constants come from the evaluator modules.

Per benchmark (`records_for(name)`; the rules are in `evaluators.uncertainty.per_benchmark`, the base
`Records`, `MetricStatistic` and `PairedTest` in `evaluators.uncertainty.records`): `ifeval` resamples prompts,
`followbench` example groups within categories, `llmbar` pairs within subsets, `refinement` items, and any
other benchmark (e.g. `lm-eval:<task>`) sample rows, a metric being the mean of the rows' numeric field.

`metric_statistic(benchmark, metric)` builds one statistic; `metric_ci(benchmark, samples, metric)` and
`compare(benchmark, a_samples, b_samples, metric)` also build and match the units. `correct_vector` /
`paired_correct` give per-unit right/wrong outcomes for McNemar's test, for the metrics `test_choice` tests so.
`test_choice(benchmark, metric)` says which paired test decides a comparison's verdict: McNemar where one
right/wrong outcome is one independent unit (IFEval prompt level, refinement items), Obuchowski's clustered
McNemar where outcomes are clustered within units (IFEval instructions within prompts, LLMBar judgments within
pairs: `paired_clusters`), else the paired bootstrap over units (means over strata, F1, FollowBench).
`detect(samples)` names the benchmark from the records' fields when no run record says it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

# the evaluators' constants and the base types stay importable from here (`evaluators.uncertainty.LEVELS`, ...)
from evaluators.followbench import INVALID_POLICIES, LEVELS
from evaluators.ifeval import METRICS as PROMPT_METRICS
from evaluators.llmbar import ADVERSARIAL, SUBSETS
from evaluators.uncertainty.per_benchmark import (ID_FIELDS, GroupRecords, ItemRecords, MeanRecords, PairRecords,
                                                  PromptRecords)
from evaluators.uncertainty.records import (BOOTSTRAP, CLUSTERED, MCNEMAR, MetricStatistic, PairedTest, Prepared,
                                            Records)
from harness.core.errors import SparError
from harness.core.stats import (DEFAULT_RESAMPLES, BootstrapResult, PairedBootstrapResult, align_by_key, bootstrap_ci,
                                paired_bootstrap)


# ------------------------------------------------------------------------------------------------ registry
REGISTRY: dict[str, type[Records]] = {"ifeval": PromptRecords, "followbench": GroupRecords, "llmbar": PairRecords,
                                      "refinement": ItemRecords}


def register(name: str, records: type[Records]) -> None:
    """How benchmark `name`'s samples are resampled (a `Records` subclass); unregistered ones get `MeanRecords`."""
    REGISTRY[name] = records


def records_for(benchmark: str) -> Records:
    """The resampling rules of `benchmark` (per-sample means for benchmarks without rules of their own)."""
    cls = REGISTRY.get(benchmark)
    return cls() if cls is not None else MeanRecords(benchmark)


def detect(samples: Sequence[dict]) -> str:
    """Which benchmark's records these are, from the first record's fields (for samples without a run record)."""
    if not samples:
        raise SparError("no samples")
    first = samples[0]
    if not isinstance(first, dict):
        raise SparError("samples must be JSON objects (one per line of samples.jsonl)")
    if "follow_all_instructions_strict" in first or "follow_instruction_list_strict" in first:
        return "ifeval"
    if {"example_id", "level", "soft"} <= set(first):
        return "followbench"
    if "subset" in first and ("predicted" in first or "choice_original" in first):
        return "llmbar"
    if "follows" in first:
        return "refinement"
    raise SparError(f"cannot tell which benchmark's records these are (fields: {', '.join(sorted(first))}); "
                    f"name the benchmark")


def _records(benchmark: str | None, samples: Sequence[dict]) -> Records:
    return records_for(benchmark or detect(samples))


def units_for(benchmark: str | None, samples: Sequence[dict], metric: str) -> list:
    """The resampling units of `metric` in these samples (for per-sample means: the rows of its filter)."""
    rec = _records(benchmark, samples)
    if isinstance(rec, MeanRecords):
        rec.check_metric(metric, samples)
        return rec.units_for(samples, metric)
    return rec.units(samples)


def metric_statistic(benchmark: str, metric: str, invalid_policy: str | None = None,
                     **settings: Any) -> MetricStatistic:
    """`metric` of `benchmark` as a bootstrap statistic over its units; equal to the scorer's metric on the full
    sample set. `invalid_policy` is FollowBench's (its metrics.json says which one the run used)."""
    if invalid_policy is not None:
        settings["invalid_policy"] = invalid_policy
    return records_for(benchmark).statistic(metric, **settings)


def metric_ci(benchmark: str | None, samples: Sequence[dict], metric: str, n_resamples: int = DEFAULT_RESAMPLES,
              seed: int = 0, alpha: float = 0.05, invalid_policy: str | None = None,
              **settings: Any) -> BootstrapResult:
    """Bootstrap interval of one run's `metric` from its per-sample records (benchmark detected when None),
    stratified as the benchmark's rules say (LLMBar pairs by subset, FollowBench groups by category)."""
    benchmark = benchmark or detect(samples)
    stat = metric_statistic(benchmark, metric, invalid_policy, **settings)
    return bootstrap_ci(units_for(benchmark, samples, metric), stat, n_resamples, seed, alpha)


def align(benchmark: str | None, a_samples: Sequence[dict], b_samples: Sequence[dict], metric: str = "",
          intersect: bool = False) -> tuple[list, list]:
    """Units of runs A and B in one order (A's), matched by the benchmark's unit key."""
    benchmark = benchmark or detect(a_samples)
    rec = records_for(benchmark)
    if isinstance(rec, MeanRecords):
        a_units, b_units = units_for(benchmark, a_samples, metric), units_for(benchmark, b_samples, metric)
    else:
        a_units, b_units = rec.units(a_samples), rec.units(b_samples)
    return align_by_key(a_units, b_units, rec.unit_key, intersect)


def compare(benchmark: str | None, a_samples: Sequence[dict], b_samples: Sequence[dict], metric: str,
            n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = 0.05,
            invalid_policy: str | None = None, intersect: bool = False, **settings: Any) -> PairedBootstrapResult:
    """Paired bootstrap of `metric` between runs A and B of one benchmark (difference B - A), units matched by the
    benchmark's unit key; `.verdict` says which run is better, if either."""
    benchmark = benchmark or detect(a_samples)
    stat = metric_statistic(benchmark, metric, invalid_policy, **settings)
    a_units, b_units = align(benchmark, a_samples, b_samples, metric, intersect)
    return paired_bootstrap(a_units, b_units, stat, n_resamples, seed, alpha)


def correct_vector(benchmark: str | None, samples: Sequence[dict], metric: str = "") -> list[bool]:
    """Right/wrong outcome per scored unit of `metric`, for McNemar's test, in record order."""
    benchmark = benchmark or detect(samples)
    rec = records_for(benchmark)
    return rec.outcomes(units_for(benchmark, samples, metric) if isinstance(rec, MeanRecords) else
                        rec.units(samples), metric)


def paired_correct(benchmark: str | None, a_samples: Sequence[dict], b_samples: Sequence[dict], metric: str = "",
                   intersect: bool = False) -> tuple[list[bool], list[bool]]:
    """`correct_vector` of runs A and B over their shared units in one order (ready for
    `harness.core.stats.mcnemar`)."""
    benchmark = benchmark or detect(a_samples)
    rec = records_for(benchmark)
    a_units, b_units = align(benchmark, a_samples, b_samples, metric, intersect)
    return rec.outcomes(a_units, metric), rec.outcomes(b_units, metric)


def paired_clusters(benchmark: str | None, a_samples: Sequence[dict], b_samples: Sequence[dict], metric: str = "",
                    intersect: bool = False) -> tuple[list[list[bool]], list[list[bool]]]:
    """Per shared unit (in one order) the right/wrong outcomes of `metric` of runs A and B (ready for
    `harness.core.stats.clustered_mcnemar`); units without an outcome of the metric (another subset) are left out."""
    benchmark = benchmark or detect(a_samples)
    rec = records_for(benchmark)
    a_units, b_units = align(benchmark, a_samples, b_samples, metric, intersect)
    pairs = [(rec.outcomes([x], metric), rec.outcomes([y], metric)) for x, y in zip(a_units, b_units)]
    pairs = [(x, y) for x, y in pairs if x or y]
    return [x for x, _ in pairs], [y for _, y in pairs]


def test_choice(benchmark: str, metric: str) -> PairedTest:
    """The paired test that decides `metric`'s verdict (see `Records.test_choice`)."""
    return records_for(benchmark).test_choice(metric)


def is_number(value: Any) -> bool:
    """A finite number (not a bool): what a metric cell holds."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["ID_FIELDS", "MetricStatistic", "Records", "PromptRecords", "GroupRecords", "PairRecords", "ItemRecords",
           "MeanRecords", "REGISTRY", "register", "records_for", "detect", "units_for", "metric_statistic",
           "metric_ci", "align", "compare", "correct_vector", "paired_correct", "is_number",
           "PairedTest", "MCNEMAR", "CLUSTERED", "BOOTSTRAP", "paired_clusters", "test_choice"]
