"""Uncertainty and significance, generically: seeded bootstrap intervals, the paired bootstrap, McNemar's test and
a verdict, over any list of *units* (the things that were sampled independently) and any statistic of them.

A low layer: pure Python plus numpy (and spar's JSONL reader when samples are loaded), and no benchmark is
known here. Which units a benchmark's per-sample records (`samples.jsonl`) are resampled by, and spar's metrics as
statistics of those units (equal to the scorers' own metrics), live with the benchmarks in
`evaluators/uncertainty/`.

- `bootstrap_ci(units, statistic)`: percentile bootstrap confidence interval, seeded and reproducible: the same
  (units, statistic, n_resamples, seed, alpha, strata) always give the same interval, in any process.
- `bootstrap_distribution(units, statistic)`: the resampled statistics themselves (for intervals of quantities
  derived from several independent statistics, e.g. the mean of benchmarks scored on different data).
- `paired_bootstrap(a_units, b_units, statistic)`: the difference **B - A** between two runs on the same units,
  with one set of resampled indices shared by both runs, its percentile interval and a two-sided p-value.
- `mcnemar(a_correct, b_correct)`: McNemar's test on paired right/wrong outcomes.
- `clustered_mcnemar(a_clusters, b_clusters)`: Obuchowski's clustered McNemar, for outcomes that come in
  independent clusters (instructions within prompts, judgments within pairs).
- `holm(p_values)`: Holm's step-down adjusted p-values (a family of tests that keeps its error rate at alpha).
- `verdict(diff_ci, p, alpha)`: "A better" / "B better" / "no significant difference".
- `align_by_key(a_units, b_units, key)`: two runs' units in one order, matched by an identifying key.
- `load_samples(path)`: the per-sample records of a `samples.jsonl`.

A *statistic* is None (the units are numbers: their mean), a callable from a list of units to a number, or an
object with `prepare(units) -> (index rows k x n -> k values)` (vectorised) and optionally `strata(units)` (one
label per unit: resampling then happens within each label); `evaluators.uncertainty` builds the latter.

Conventions: a difference is B - A, so with higher-is-better metrics a positive difference favours B. Resamples
whose statistic is undefined (NaN) are left out of the percentiles and the p-value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Sequence

import numpy as np

from harness.core.errors import SparError

DEFAULT_RESAMPLES = 2000
#: resamples drawn and evaluated per block; part of the definition of the random stream (fixed, not tunable)
_BLOCK = 250
#: McNemar: below this many discordant pairs the exact binomial test is used
EXACT_BELOW = 25

A_BETTER, B_BETTER, NO_DIFFERENCE = "A better", "B better", "no significant difference"


# ---------------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap interval: `estimate` is the statistic on all units, [`low`, `high`] the
    (alpha/2, 1 - alpha/2) percentiles of the resampled statistics."""

    estimate: float
    low: float
    high: float
    n: int
    n_resamples: int
    seed: int
    alpha: float = 0.05
    method: str = "percentile"
    strata: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Paired bootstrap of B - A: `a` and `b` are the statistic on all units of each run, `diff` = b - a,
    [`low`, `high`] the percentile interval of the resampled differences, `p` the two-sided p-value."""

    a: float
    b: float
    diff: float
    low: float
    high: float
    p: float
    n: int
    n_resamples: int
    seed: int
    alpha: float = 0.05
    method: str = "paired percentile"
    strata: int = 1
    direction: str = "B-A"

    @property
    def estimate(self) -> float:
        return self.diff

    @property
    def verdict(self) -> str:
        return verdict(self, self.p, self.alpha)

    def to_dict(self) -> dict:
        return dict(asdict(self), verdict=self.verdict)


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test. `b` = units A got right and B wrong, `c` = A wrong and B right, `n` = all paired units.
    `statistic` is min(b, c) for the exact test and the continuity-corrected chi-square for the asymptotic one."""

    b: int
    c: int
    n: int
    statistic: float
    p: float
    method: str  # "exact binomial" or "chi-square (continuity corrected)"

    @property
    def diff(self) -> float:
        """Accuracy of B minus accuracy of A, (c - b) / n."""
        return (self.c - self.b) / self.n if self.n else 0.0

    @property
    def estimate(self) -> float:
        return self.diff

    def to_dict(self) -> dict:
        return dict(asdict(self), diff=self.diff)


# ---------------------------------------------------------------------------------------------------- resampling
def _strata_positions(n: int, strata: Sequence | None) -> list[np.ndarray]:
    if strata is None:
        return [np.arange(n)]
    labels = list(strata)
    if len(labels) != n:
        raise SparError(f"strata: {len(labels)} labels for {n} units")
    order: dict[Any, list[int]] = {}
    for i, label in enumerate(labels):
        order.setdefault(label, []).append(i)
    return [np.asarray(v) for v in order.values()]  # strata in order of first appearance


def resample_blocks(n: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                    strata: Sequence | None = None) -> Iterator[np.ndarray]:
    """Bootstrap index matrices, `_BLOCK` resamples (rows) at a time, each row `n` unit indices drawn with
    replacement (within each stratum when `strata` labels the units: row positions of a stratum only draw units of
    that stratum). Fully determined by (n, n_resamples, seed, strata)."""
    if n <= 0:
        raise SparError("bootstrap: no units to resample")
    if n_resamples < 1:
        raise SparError("bootstrap: n_resamples must be at least 1")
    rng = np.random.default_rng(seed)
    groups = _strata_positions(n, strata)
    done = 0
    while done < n_resamples:
        rows = min(_BLOCK, n_resamples - done)
        block = np.empty((rows, n), dtype=np.int64)
        for positions in groups:
            block[:, positions] = positions[rng.integers(0, len(positions), size=(rows, len(positions)))]
        yield block
        done += rows


def resample_indices(n: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                     strata: Sequence | None = None) -> np.ndarray:
    """All bootstrap index rows at once (n_resamples x n); the same rows `bootstrap_ci` uses."""
    return np.concatenate(list(resample_blocks(n, n_resamples, seed, strata)))


def _batch_fn(units: Sequence, statistic: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A function from index rows (k x n) to k statistic values."""
    if statistic is None:
        try:
            values = np.asarray(units, dtype=float)
        except (TypeError, ValueError):
            raise SparError("bootstrap: without a statistic the units must be numbers (the mean is used)") from None
        if values.ndim != 1:
            raise SparError("bootstrap: without a statistic the units must be a flat list of numbers")
        return lambda idx: values[idx].mean(axis=1)
    if hasattr(statistic, "prepare"):
        return statistic.prepare(units)
    if not callable(statistic):
        raise SparError("bootstrap: statistic must be callable (list of units -> number)")
    items = list(units)
    return lambda idx: np.array([float(statistic([items[i] for i in row])) for row in idx], dtype=float)


def _resolve_strata(units: Sequence, statistic: Any, strata: Any) -> Sequence | None:
    if strata is False:
        return None
    if strata is None:
        return statistic.strata(units) if hasattr(statistic, "strata") else None
    return strata


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise SparError(f"alpha must be between 0 and 1, got {alpha}")


def bootstrap_distribution(values_or_units: Sequence, statistic: Any = None,
                           n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, *,
                           strata: Any = None) -> tuple[float, np.ndarray, int]:
    """(the statistic on all units, its `n_resamples` resampled values, the number of strata): the draws behind
    `bootstrap_ci`, for intervals of quantities derived from several independent statistics. Arguments as in
    `bootstrap_ci`; the same arguments always give the same values."""
    units = list(values_or_units) if not isinstance(values_or_units, np.ndarray) else values_or_units
    n = len(units)
    if n == 0:
        raise SparError("bootstrap: no units to resample")
    fn = _batch_fn(units, statistic)
    labels = _resolve_strata(units, statistic, strata)
    estimate = float(fn(np.arange(n)[None, :])[0])
    values = np.concatenate([fn(block) for block in resample_blocks(n, n_resamples, seed, labels)])
    return estimate, values, len(_strata_positions(n, labels))


def percentile_interval(estimate: float, resampled: np.ndarray, n: int, seed: int = 0, alpha: float = 0.05,
                        strata: int = 1) -> BootstrapResult:
    """The percentile interval of given resampled values (NaN draws left out) as a `BootstrapResult`."""
    _check_alpha(alpha)
    low, high = _percentiles(np.asarray(resampled, dtype=float), alpha)
    return BootstrapResult(float(estimate), low, high, n, len(resampled), seed, alpha, strata=strata)


def bootstrap_ci(values_or_units: Sequence, statistic: Any = None, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, alpha: float = 0.05, *, strata: Any = None) -> BootstrapResult:
    """Percentile bootstrap interval of `statistic` over `values_or_units`.

    `statistic`: None (the units are numbers; their mean), a callable taking a list of units and returning a
    number, or a vectorised statistic (`prepare`, and `strata` for its default strata; e.g. from
    `evaluators.uncertainty.metric_statistic`).
    `strata`: None = the statistic's default (none for plain callables), False = no stratification, or one label
    per unit (resampling then happens within each label, so every stratum keeps its size).
    The same arguments always give the same result (numpy PCG64 seeded with `seed`)."""
    _check_alpha(alpha)
    estimate, values, n_strata = bootstrap_distribution(values_or_units, statistic, n_resamples, seed,
                                                        strata=strata)
    low, high = _percentiles(values, alpha)
    return BootstrapResult(estimate, low, high, len(values_or_units), n_resamples, seed, alpha, strata=n_strata)


def bootstrap_p_value(observed: float, resampled: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference: the share of resampled differences on the other side of 0
    from the observed one (0 included), with the +1 correction, doubled and capped at 1:
    p = min(1, 2 (1 + #{d* <= 0}) / (1 + R)) when observed > 0 (mirror image when < 0), and 1 when observed == 0."""
    resampled = resampled[~np.isnan(resampled)]
    if observed == 0 or not len(resampled):
        return 1.0
    other = int(np.sum(resampled <= 0)) if observed > 0 else int(np.sum(resampled >= 0))
    return min(1.0, 2.0 * (other + 1) / (len(resampled) + 1))


def paired_bootstrap(a_units: Sequence, b_units: Sequence, statistic: Any = None,
                     n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = 0.05, *,
                     strata: Any = None) -> PairedBootstrapResult:
    """Paired bootstrap of statistic(B) - statistic(A) over units aligned by position (unit i of A and unit i of B
    are the same prompt / pair / example).

    Every resample draws one set of unit indices and applies it to both runs, so the shared difficulty of each unit
    cancels. Returns the observed difference B - A, the percentile interval of the resampled differences, and the
    two-sided p-value of `bootstrap_p_value`. `statistic` and `strata` as in `bootstrap_ci` (default strata come
    from A's units and must equal B's). Align the units first (`align_by_key`, or
    `evaluators.uncertainty.compare`)."""
    _check_alpha(alpha)
    if len(a_units) != len(b_units):
        raise SparError(f"paired bootstrap: run A has {len(a_units)} units, run B {len(b_units)}; align them first")
    n = len(a_units)
    if n == 0:
        raise SparError("paired bootstrap: no units to resample")
    labels = _resolve_strata(a_units, statistic, strata)
    if strata is None and labels is not None and list(statistic.strata(b_units)) != list(labels):
        raise SparError("paired bootstrap: the runs' units fall in different strata; align them first")
    fa, fb = _batch_fn(a_units, statistic), _batch_fn(b_units, statistic)
    full = np.arange(n)[None, :]
    a, b = float(fa(full)[0]), float(fb(full)[0])
    diffs = np.concatenate([fb(block) - fa(block) for block in resample_blocks(n, n_resamples, seed, labels)])
    low, high = _percentiles(diffs, alpha)
    diff = b - a
    return PairedBootstrapResult(a, b, diff, low, high, bootstrap_p_value(diff, diffs), n, n_resamples, seed, alpha,
                                 strata=len(_strata_positions(n, labels)))


# ---------------------------------------------------------------------------------------------------- McNemar
def _binom_two_sided_half(k: int, n: int) -> float:
    """Exact two-sided binomial p-value for k successes of n at probability 1/2 (symmetric: doubled tail)."""
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool], exact: bool | None = None) -> McNemarResult:
    """McNemar's test of paired right/wrong outcomes of runs A and B on the same units (same order).

    b = #(A right, B wrong), c = #(A wrong, B right). `exact`: None (default) = exact binomial test when
    b + c < 25, else the chi-square test with continuity correction; True / False force one of them.
    Exact: p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); statistic = min(b, c).
    Chi-square: statistic = max(0, |b - c| - 1)^2 / (b + c), p = P(chi2_1 >= statistic) = erfc(sqrt(statistic/2)).
    No discordant pair: p = 1."""
    if len(a_correct) != len(b_correct):
        raise SparError(f"mcnemar: {len(a_correct)} outcomes for A but {len(b_correct)} for B")
    b = sum(1 for x, y in zip(a_correct, b_correct) if bool(x) and not bool(y))
    c = sum(1 for x, y in zip(a_correct, b_correct) if not bool(x) and bool(y))
    n = len(a_correct)
    discordant = b + c
    use_exact = discordant < EXACT_BELOW if exact is None else exact
    if discordant == 0:
        return McNemarResult(b, c, n, 0.0, 1.0, "exact binomial" if use_exact else
                             "chi-square (continuity corrected)")
    if use_exact:
        return McNemarResult(b, c, n, float(min(b, c)), _binom_two_sided_half(b, discordant), "exact binomial")
    stat = max(0, abs(b - c) - 1) ** 2 / discordant
    return McNemarResult(b, c, n, stat, math.erfc(math.sqrt(stat / 2)), "chi-square (continuity corrected)")


@dataclass(frozen=True)
class ClusteredMcNemarResult:
    """Obuchowski's (1998) test of two correlated proportions on clustered binary outcomes (e.g. the instructions
    of one prompt, the two judgments of one pair): `a`, `b` are the pooled proportions right (outcomes right /
    outcomes) of runs A and B, `clusters` the number of clusters, `outcomes` the number of paired outcomes,
    `statistic` the chi-square statistic (1 degree of freedom) and `p` its two-sided p-value."""

    a: float
    b: float
    clusters: int
    outcomes: int
    statistic: float
    p: float
    method: str = "clustered McNemar (Obuchowski), F(1, clusters - 1)"

    @property
    def diff(self) -> float:
        """Proportion right of B minus that of A."""
        return self.b - self.a

    @property
    def estimate(self) -> float:
        return self.diff

    def to_dict(self) -> dict:
        return dict(asdict(self), diff=self.diff)


def clustered_mcnemar(a_clusters: Sequence[Sequence[bool]],
                      b_clusters: Sequence[Sequence[bool]]) -> ClusteredMcNemarResult:
    """Obuchowski's clustered McNemar test (Statistics in Medicine 17:1495, 1998) of paired right/wrong outcomes
    that come in independent clusters (cluster i of A and of B hold the same m_i outcomes, in one order).

    With X_i, Y_i the outcomes A and B got right in cluster i, M = sum m_i, p_A = sum X_i / M, p_B = sum Y_i / M and
    N clusters: var(p_A - p_B) = N / (N - 1) * sum_i ((X_i - Y_i) - m_i (p_A - p_B))^2 / M^2 (the variances and the
    covariance of the two ratio estimators, computed over clusters; here in exact integers, so that a zero variance
    is exactly zero), statistic = (p_A - p_B)^2 / var. Its p-value is read from F(1, N - 1), the small-sample
    reference of a variance estimated from N clusters (the square of a t with N - 1 degrees of freedom; chi-square
    with 1 degree of freedom, Obuchowski's large-sample reference, rejects a true null at about twice alpha with 5
    clusters and 1.4 times with 20); for many clusters the two agree. No difference in any cluster: p = 1; a zero
    variance (every cluster moved by the same share of its outcomes) falls back to the exact two-sided sign test
    over the clusters that moved."""
    if len(a_clusters) != len(b_clusters):
        raise SparError(f"clustered mcnemar: {len(a_clusters)} clusters for A but {len(b_clusters)} for B")
    if any(len(x) != len(y) for x, y in zip(a_clusters, b_clusters)):
        raise SparError("clustered mcnemar: a cluster holds a different number of outcomes in A and in B")
    sizes = [len(c) for c in a_clusters]
    n, total = len(sizes), sum(sizes)
    if n == 0 or total == 0:
        raise SparError("clustered mcnemar: no outcomes")
    x = [sum(map(bool, c)) for c in a_clusters]
    y = [sum(map(bool, c)) for c in b_clusters]
    pa, pb = sum(x) / total, sum(y) / total
    d = [xi - yi for xi, yi in zip(x, y)]
    moved = sum(d)
    if not any(d) or n < 2:
        return ClusteredMcNemarResult(pa, pb, n, total, 0.0, 1.0)
    # M^2 var / (N / (N - 1)) * M^2 = sum (M d_i - m_i D)^2, an integer: zero exactly when the variance is
    spread = sum((total * di - mi * moved) ** 2 for di, mi in zip(d, sizes))
    if spread == 0:  # every cluster moved in proportion to its size: the exact sign test over the clusters that moved
        up, down = sum(di > 0 for di in d), sum(di < 0 for di in d)
        return ClusteredMcNemarResult(pa, pb, n, total, math.inf, _binom_two_sided_half(up, up + down),
                                      "clustered McNemar (Obuchowski; exact sign test over clusters, zero variance)")
    stat = (n - 1) * moved ** 2 * total ** 2 / (n * spread)
    return ClusteredMcNemarResult(pa, pb, n, total, stat, f_one_sf(stat, n - 1))


def f_one_sf(statistic: float, df: int) -> float:
    """P(F >= statistic) for F(1, df) (= P(|T| >= sqrt(statistic)) for Student's t with `df` degrees of freedom):
    the regularized incomplete beta I_{df / (df + statistic)}(df / 2, 1 / 2)."""
    if statistic <= 0:
        return 1.0
    if math.isinf(statistic):
        return 0.0
    return _betainc(df / 2, 0.5, df / (df + statistic))


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz), on the side
    where it converges fast (x < (a + 1) / (a + b + 2), else through I_x(a, b) = 1 - I_{1-x}(b, a))."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = a * math.log(x) + b * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    tiny, f, c, dd = 1e-300, 1.0, 1.0, 0.0
    for i in range(1000):
        m = i // 2
        if i == 0:
            term = 1.0
        elif i % 2 == 0:
            term = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            term = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        dd = 1.0 + term * dd
        dd = 1.0 / (dd if abs(dd) > tiny else tiny)
        c = 1.0 + term / c
        c = c if abs(c) > tiny else tiny
        f *= c * dd
        if abs(1.0 - c * dd) < 1e-15:
            break
    return math.exp(log_front) * (f - 1.0) / a


# ---------------------------------------------------------------------------------------------------- multiplicity
def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values, in the given order: with p_(1) <= ... <= p_(m),
    adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)). Rejecting where adj < alpha keeps the chance of any false
    rejection among the m tests at most alpha, whatever their dependence. NaN stays NaN and does not count in m."""
    values = [float(p) for p in p_values]
    order = sorted((i for i, p in enumerate(values) if not math.isnan(p)), key=lambda i: values[i])
    m = len(order)
    out = [math.nan] * len(values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[i]))
        out[i] = running
    return out


# ---------------------------------------------------------------------------------------------------- verdict
def verdict(diff_ci: Any, p: float, alpha: float = 0.05) -> str:
    """"A better", "B better" or "no significant difference" for a difference B - A.

    `diff_ci`: a result with `estimate` (and `low`/`high` when it has an interval: `PairedBootstrapResult`,
    `BootstrapResult` of a difference, `McNemarResult`), a tuple (low, high) or (estimate, low, high), or a number
    (the difference alone). Significant means p < alpha and, when an interval is given, the interval excludes 0;
    the sign of the difference then names the better run (metrics where higher is better)."""
    estimate = low = high = None
    if isinstance(diff_ci, (tuple, list)):
        if len(diff_ci) == 2:
            low, high = map(float, diff_ci)
            estimate = (low + high) / 2
        elif len(diff_ci) == 3:
            estimate, low, high = map(float, diff_ci)
        else:
            raise SparError("verdict: give (low, high) or (estimate, low, high)")
    elif isinstance(diff_ci, (int, float)):
        estimate = float(diff_ci)
    elif hasattr(diff_ci, "estimate"):
        estimate = float(diff_ci.estimate)
        low, high = getattr(diff_ci, "low", None), getattr(diff_ci, "high", None)
    else:
        raise SparError(f"verdict: cannot read a difference from {type(diff_ci).__name__}")
    if p is None or math.isnan(p) or not p < alpha or estimate is None or math.isnan(estimate) or estimate == 0:
        return NO_DIFFERENCE
    if low is not None and high is not None and (math.isnan(low) or math.isnan(high) or low <= 0 <= high):
        return NO_DIFFERENCE
    return B_BETTER if estimate > 0 else A_BETTER


# ---------------------------------------------------------------------------------------------------- samples
def load_samples(path: str | Path) -> list[dict]:
    """Per-sample records from a `samples.jsonl` (or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "samples.jsonl"
    if not path.is_file():
        raise SparError(f"{path}: no such samples file")
    from harness.core.data import read_jsonl  # here, so importing the statistics stays as light as harness.core.errors

    return read_jsonl(path)



# ---------------------------------------------------------------------------------------------------- helpers
def align_by_key(a_units: Sequence, b_units: Sequence, key: Callable[[Any], Hashable],
                 intersect: bool = False) -> tuple[list, list]:
    """Units of runs A and B in one order (A's), matched by `key(unit)`. Different unit sets are an error unless
    `intersect` (then only the shared units are kept); a run with two units of one key is an error."""
    a_map = {key(u): u for u in a_units}
    b_map = {key(u): u for u in b_units}
    if len(a_map) != len(a_units) or len(b_map) != len(b_units):
        raise SparError("a run has two samples for the same unit; cannot pair the runs")
    only_a, only_b = a_map.keys() - b_map.keys(), b_map.keys() - a_map.keys()
    if (only_a or only_b) and not intersect:
        raise SparError(f"the runs cover different units ({len(only_a)} only in A, {len(only_b)} only in B, "
                        f"{len(a_map) - len(only_a)} shared); compare on the same data or pass --intersect "
                        "(intersect=True from Python)")
    keys = [k for k in a_map if k in b_map]
    if not keys:
        raise SparError("the runs share no units")
    return [a_map[k] for k in keys], [b_map[k] for k in keys]


def nanmean_rows(columns: list[np.ndarray]) -> np.ndarray:
    """Row-wise mean over the given columns, ignoring NaN (a scorer's 'mean over the values that exist', summed in
    the given order); NaN where every column is NaN."""
    total = np.zeros_like(columns[0], dtype=float)
    count = np.zeros_like(columns[0], dtype=float)
    for col in columns:
        ok = ~np.isnan(col)
        total = np.where(ok, total + np.where(ok, col, 0.0), total)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den element-wise, NaN where den is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def nan_rows(rows: int) -> np.ndarray:
    """A column of `rows` NaN values (a statistic that is undefined in every resample)."""
    return np.full(rows, np.nan)
