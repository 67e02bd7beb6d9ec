"""Measured cells: a run's value of a table column with its seeded bootstrap interval over the benchmark's units
(prompts, LLMBar pairs, FollowBench example groups; see `evaluators.uncertainty`), and differences between runs.

Values here are fractions, as in metrics.json; the renderers print percent. Every interval is reproducible: the
same runs, column, resamples and seed give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evaluators import uncertainty
from harness.core.errors import SparError
from harness.reports.layout import Column
from harness.reports.runs import Run, find_metric
from harness.core.stats import DEFAULT_RESAMPLES, bootstrap_distribution, paired_bootstrap, percentile_interval

#: a statistic recomputed from the samples must equal the value in metrics.json to this precision
AGREEMENT = 1e-9


@dataclass
class Cell:
    """A measured value (fraction) with its interval; `note` says why an interval or value is missing."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    unit: str = ""
    benchmark: str = ""
    metric: str = ""
    note: str = ""
    p: float | None = None
    #: a difference between two runs (printed signed)
    difference: bool = False

    @property
    def has_ci(self) -> bool:
        """Whether the cell has a finite interval."""
        return self.low is not None and self.high is not None and not (math.isnan(self.low) or
                                                                         math.isnan(self.high))


@dataclass
class Draws:
    """A cell plus the bootstrap draws behind its interval (for derived cells)."""

    cell: Cell
    values: np.ndarray | None = None


def _unlike(a: Run, b: Run, bench: str) -> str:
    """Why two runs' values of `bench` cannot be subtracted ("" when they can): different data (checksums, hub
    ids; a subset of the same data is fine, it is paired over the shared units), different scorer settings or, for
    a benchmark scored by a judge model, different judges."""
    if a.data_identity(bench) != b.data_identity(bench):
        return "the runs scored different data"
    records = uncertainty.records_for(bench)
    if records.scorer_identity(a.scorer(bench)) != records.scorer_identity(b.scorer(bench)):
        return "the runs used different scorer settings"
    if a.judge_identity(bench) != b.judge_identity(bench):  # e.g. FollowBench judged by each run's own refiner
        return "the runs were judged by different models"
    return ""


class CellMaker:
    """Computes cells for runs, caching the draws of each (run, benchmark, metric)."""

    def __init__(self, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = 0.05):
        self.n_resamples, self.seed, self.alpha = n_resamples, seed, alpha
        self._cache: dict[tuple, Draws] = {}

    # -- where a column is in a run ----------------------------------------------------------------------------
    @staticmethod
    def locate(run: Run, column: Column) -> tuple[str, str] | None:
        """The first (benchmark, metric) of the column that the run has a number for."""
        for bench, metric in column.candidates:
            if bench in run.metrics and uncertainty.is_number(find_metric(run.metrics[bench], metric)):
                return bench, metric
        return None

    def has(self, run: Run, column: Column, columns: tuple[Column, ...] = ()) -> bool:
        """Whether the run has a value for the column (for a mean: for any of its parts)."""
        if column.mean_of:
            parts = [c for c in columns if c.label in column.mean_of]
            return any(self.locate(run, c) for c in parts)
        return self.locate(run, column) is not None

    # -- cells -------------------------------------------------------------------------------------------------
    def draws(self, run: Run, bench: str, metric: str, seed: int | None = None) -> Draws:
        """The cell and bootstrap draws of one metric of a run (cached)."""
        seed = self.seed if seed is None else seed
        key = (str(run.path), bench, metric, seed)
        if key not in self._cache:
            self._cache[key] = self._draws(run, bench, metric, seed)
        return self._cache[key]

    def _draws(self, run: Run, bench: str, metric: str, seed: int) -> Draws:
        value = float(find_metric(run.metrics[bench], metric))
        records = uncertainty.records_for(bench)
        cell = Cell(value, benchmark=bench, metric=metric, unit=records.unit)
        if not run.has_samples(bench):
            cell.note = "no samples.jsonl: no interval"
            return Draws(cell)
        try:
            samples = run.samples(bench)
            units = uncertainty.units_for(bench, samples, metric)
            settings = records.settings(run.metrics[bench], run.scorer(bench))
            stat = records.statistic(metric, **settings)
            estimate, values, _ = bootstrap_distribution(units, stat, self.n_resamples, seed)
        except SparError as exc:
            cell.note = f"no interval ({exc})"
            return Draws(cell)
        if not (abs(estimate - value) <= AGREEMENT or (math.isnan(estimate) and math.isnan(value))):
            cell.note = (f"no interval: the samples give {estimate:.6f}, metrics.json {value:.6f}")
            return Draws(cell)
        ci = percentile_interval(estimate, values, len(units), seed, self.alpha)
        cell.low, cell.high, cell.n = ci.low, ci.high, len(units)
        return Draws(cell, values)

    def cell(self, run: Run, column: Column, columns: tuple[Column, ...] = ()) -> Cell:
        """The run's cell of `column` (value None when the run lacks it); `columns` resolves `mean_of`."""
        if column.mean_of:
            return self._mean_cell(run, column, columns)
        where = self.locate(run, column)
        if where is None:
            return Cell(None)
        return self.draws(run, *where).cell

    def _mean_cell(self, run: Run, column: Column, columns: tuple[Column, ...]) -> Cell:
        """The mean of other columns; its interval from independent resamples of each part (different data sets,
        so different seeds: seed + position of the part)."""
        parts = [c for c in columns if c.label in column.mean_of]
        found = [(i, self.locate(run, c)) for i, c in enumerate(parts)]
        if not found or any(w is None for _, w in found):
            missing = [parts[i].label for i, w in found if w is None]
            return Cell(None, note=f"missing {', '.join(missing)}" if missing else "")
        draws = [self.draws(run, b, m, self.seed + i) for i, (b, m) in found]  # type: ignore[misc]
        value = float(np.mean([d.cell.value for d in draws]))
        cell = Cell(value, unit="benchmark mean", metric=f"mean of {', '.join(column.mean_of)}")
        if any(d.values is None for d in draws):
            cell.note = "no interval: a part has none"
            return cell
        stacked = np.mean(np.stack([d.values for d in draws]), axis=0)  # type: ignore[misc]
        ci = percentile_interval(value, stacked, sum(d.cell.n or 0 for d in draws), self.seed, self.alpha)
        cell.low, cell.high, cell.n = ci.low, ci.high, ci.n
        return cell

    def difference(self, base: Run, other: Run, column: Column, columns: tuple[Column, ...] = ()) -> Cell:
        """other - base for one column: a paired bootstrap over the units both runs scored when they share them
        (same data), else the difference of independent resamples; the value is None when either lacks it, and
        None with a note when the runs scored different data or with different scorer settings."""
        if column.mean_of:
            a, b = self._mean_cell(base, column, columns), self._mean_cell(other, column, columns)
            if a.value is None or b.value is None:
                return Cell(None)
            return Cell(b.value - a.value, unit="benchmark mean", note="no interval for differences of means",
                        difference=True)
        wa, wb = self.locate(base, column), self.locate(other, column)
        if wa is None or wb is None:
            return Cell(None, difference=True)
        va = float(find_metric(base.metrics[wa[0]], wa[1]))
        vb = float(find_metric(other.metrics[wb[0]], wb[1]))
        cell = Cell(vb - va, benchmark=wb[0], metric=wb[1], unit=uncertainty.records_for(wb[0]).unit,
                    difference=True)
        if wa != wb:
            cell.note = "different metrics"
            return cell
        bench, metric = wa
        unlike = _unlike(base, other, bench)
        if unlike:
            return Cell(None, benchmark=bench, metric=metric, note=f"no difference: {unlike}", difference=True)
        if not (base.has_samples(bench) and other.has_samples(bench)):
            cell.note = "no samples.jsonl: no interval"
            return cell
        records = uncertainty.records_for(bench)
        try:
            settings = records.settings(base.metrics[bench], base.scorer(bench))
            stat = records.statistic(metric, **settings)
            a_units, b_units = uncertainty.align(bench, base.samples(bench), other.samples(bench), metric)
            res = paired_bootstrap(a_units, b_units, stat, self.n_resamples, self.seed, self.alpha)
            cell.low, cell.high, cell.n, cell.p = res.low, res.high, res.n, res.p
            cell.unit = f"{records.unit} (paired)"
        except SparError:
            da, db = self.draws(base, bench, metric), self.draws(other, bench, metric, self.seed + 1)
            if da.values is None or db.values is None:
                cell.note = "no interval"
                return cell
            ci = percentile_interval(cell.value, db.values - da.values, (da.cell.n or 0) + (db.cell.n or 0),
                                     self.seed, self.alpha)
            cell.low, cell.high, cell.n = ci.low, ci.high, ci.n
            cell.unit = f"{records.unit} (independent: the runs scored different units)"
        return cell
