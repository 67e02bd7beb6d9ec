"""The base of every benchmark's resampling rules: `Records` (what a unit is, how units are matched across runs,
which strata keep their sizes, how a metric is recomputed from a resample of units), `MetricStatistic` (one metric
as a bootstrap statistic over units) and `PairedTest` (which paired test decides a metric's verdict).

The per-benchmark subclasses are in `evaluators.uncertainty.per_benchmark`; the functions that pick and apply them
(`records_for`, `metric_ci`, `compare`, ...) in `evaluators.uncertainty`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from harness.core.errors import SparError

Prepared = Callable[[np.ndarray], np.ndarray]


def require_fields(sample: Any, fields: Sequence[str], benchmark: str) -> None:
    """A one-line error when a per-sample record is not an object or lacks a field its statistics read."""
    if not isinstance(sample, dict):
        raise SparError(f"{benchmark} samples must be JSON objects (one per line of samples.jsonl)")
    missing = [f for f in fields if f not in sample]
    if missing:
        raise SparError(f"{benchmark} samples need {', '.join(map(repr, missing))} (a record has "
                        f"{', '.join(sorted(sample)) or 'no fields'})")


class MetricStatistic:
    """One metric of one benchmark as a bootstrap statistic over that benchmark's units.

    Call it on units (`stat(units)`) for the full-sample value; `prepare(units)` gives the vectorised form (index
    rows -> values) that `harness.core.stats.bootstrap_ci` / `paired_bootstrap` use; `strata(units)` the default
    strata; `units(samples)` turns per-sample records into units."""

    def __init__(self, records: "Records", metric: str, settings: dict):
        self.records, self.metric, self.settings = records, metric, settings

    def __repr__(self) -> str:
        return f"MetricStatistic({self.records.name!r}, {self.metric!r}, {self.settings!r})"

    def units(self, samples: Sequence[dict]) -> list:
        """The resampling units of these per-sample records."""
        return self.records.units(samples)

    def strata(self, units: Sequence) -> list | None:
        """One stratum label per unit (resampling stays within each), or None."""
        return self.records.strata(units)

    def prepare(self, units: Sequence) -> Prepared:
        """The vectorised statistic: index rows (k x n) -> k values."""
        if not len(units):
            raise SparError("no samples")
        return self.records.prepare(self.metric, units, **self.settings)

    def __call__(self, units: Sequence) -> float:
        return float(self.prepare(units)(np.arange(len(units))[None, :])[0])


MCNEMAR, CLUSTERED, BOOTSTRAP = "McNemar", "clustered McNemar (Obuchowski)", "paired bootstrap"


@dataclass(frozen=True)
class PairedTest:
    """Which paired test decides a metric's verdict (`test`: McNEMAR, CLUSTERED or BOOTSTRAP), over which
    independent `unit` (prompt, pair, example group, ...), and what one right/wrong `outcome` is ("" for the
    bootstrap)."""

    test: str
    unit: str
    outcome: str = ""

    @property
    def clustered(self) -> bool:
        """Whether several outcomes share one unit (then plain McNemar would treat them as independent)."""
        return bool(self.outcome) and self.outcome != self.unit


class Records:
    """How one benchmark's per-sample records are resampled. Subclasses set `unit` (what one unit is, for
    messages and reports) and implement `metrics`, `prepare`, and where needed `units`, `unit_key`, `strata`,
    `outcomes`."""

    name = ""
    unit = "sample"
    #: scorer settings (dotted paths into the run record's `scorer`) that describe how the model under test was
    #: decoded, not how it was scored: they may differ between runs that are compared
    decoding_settings: tuple[str, ...] = ()

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name

    def metrics(self, samples: Sequence[dict] | None = None) -> tuple[str, ...]:
        """The metric names this benchmark's statistics cover (metrics.json keys; nested ones dotted)."""
        raise NotImplementedError

    def units(self, samples: Sequence[dict]) -> list:
        """The resampling units of these per-sample records (default: one per record)."""
        return list(samples)

    def unit_key(self, unit: Any) -> Any:
        """What identifies a unit across runs (how two runs' units are paired)."""
        raise NotImplementedError

    def strata(self, units: Sequence) -> list | None:
        """One stratum label per unit (resampling stays within each), or None (default)."""
        return None

    def settings(self, metrics: dict | None = None, scorer: dict | None = None) -> dict:
        """Keyword settings for `statistic`, read from the run's metrics.json / record scorer (e.g. a policy)."""
        return {}

    def check_metric(self, metric: str, samples: Sequence[dict] | None = None) -> None:
        """Raise a one-line error naming the known metrics when `metric` is not one of them."""
        known = self.metrics(samples)
        if metric not in known:
            raise SparError(f"no statistic {metric!r} for {self.name} (choose from {', '.join(known)})")

    def statistic(self, metric: str, **settings: Any) -> MetricStatistic:
        """`metric` as a bootstrap statistic (settings as `settings()` reads them from a run)."""
        self.check_metric(metric)
        return MetricStatistic(self, metric, settings)

    def prepare(self, metric: str, units: Sequence, **settings: Any) -> Prepared:
        """The vectorised form of `metric` over these units: index rows (k x n) -> k values."""
        raise NotImplementedError

    def outcomes(self, units: Sequence, metric: str) -> list[bool]:
        """Per-unit (or per-judgment) right/wrong outcomes of `metric`, for McNemar's test."""
        raise SparError(f"{self.name}: no per-unit right/wrong outcomes for {metric!r}")

    def outcome_unit(self, metric: str) -> str:
        """What one right/wrong outcome of `metric` is when the metric is their pooled proportion ("prompt",
        "instruction", "judgment"), else "" (a mean over strata, an F1, a score: no right/wrong test applies).
        An outcome unit other than `unit` means clustered outcomes (several per independent unit)."""
        return ""

    def test_choice(self, metric: str) -> PairedTest:
        """The paired test that decides `metric`'s verdict: McNemar where one outcome is one unit, Obuchowski's
        clustered McNemar where the outcomes are clustered within units, else the paired bootstrap over units."""
        outcome = self.outcome_unit(metric)
        if not outcome:
            return PairedTest(BOOTSTRAP, self.unit, "")
        return PairedTest(MCNEMAR if outcome == self.unit else CLUSTERED, self.unit, outcome)

    def scorer_identity(self, scorer: dict | None) -> dict:
        """The scorer settings two compared runs must share: the record's `scorer` without `decoding_settings`."""
        out = _plain(scorer or {})
        for path in self.decoding_settings:
            node = out
            *parents, last = path.split(".")
            for key in parents:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(last, None)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


__all__ = ["Prepared", "MetricStatistic", "PairedTest", "Records", "MCNEMAR", "CLUSTERED", "BOOTSTRAP"]
