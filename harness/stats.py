"""Uncertainty and significance for spar's benchmark scores, computed from per-sample records (`samples.jsonl`).

A low layer: pure Python plus numpy; nothing from spar above `harness.errors` is imported, and (as everywhere in
harness/) no benchmark is named in code: records are recognised by their fields ("kinds", below), and the few
constants needed (the judge-benchmark subsets, the constraint levels) are repeated here; a test keeps them equal to
the evaluators'.

Generic tools
- `bootstrap_ci(units, statistic)`: percentile bootstrap confidence interval over *units* (the things that were
  sampled independently: IFEval prompts, LLMBar pairs, FollowBench example groups), seeded and reproducible: the
  same (units, statistic, n_resamples, seed, alpha, strata) always give the same interval, in any process.
- `paired_bootstrap(a_units, b_units, statistic)`: the difference **B - A** between two runs on the same units,
  with one set of resampled indices shared by both runs, its percentile interval and a two-sided p-value.
- `mcnemar(a_correct, b_correct)`: McNemar's test on paired right/wrong outcomes.
- `verdict(diff_ci, p, alpha)`: "A better" / "B better" / "no significant difference".

spar's metrics as statistics (each equals the scorer's own metric on the full sample set; tested). A benchmark's
records are one of four kinds, told apart by their fields (`record_kind`):
- "prompts" (IFEval: `follow_all_instructions_*`, `follow_instruction_list_*`). Metrics `prompt_level_strict_acc`,
  `inst_level_strict_acc`, `prompt_level_loose_acc`, `inst_level_loose_acc`, `average`. Unit = prompt.
  Instruction-level accuracy is a ratio over instructions: a resample draws prompts and recomputes (instructions
  followed) / (instructions) over the drawn prompts.
- "levels" (FollowBench: `category`, `example_id`, `level`, `hard`, `soft`, `judgment_valid`). Metrics
  `ssr_lv1`..`ssr_lv5`, `ssr_avg`, `hsr_lv1`..`hsr_lv5`, `hsr_avg`, `csl`. Unit = example group (one example's
  items at levels 1-5), resampled within its category (strata), so each category keeps its size; per category and
  level the SSR/HSR is recomputed over the drawn groups' items, the overall level score is the mean over
  categories, the average the mean over levels, as the scorer does. Invalid judge outputs follow the scorer's
  `invalid_policy` ("zero": they count as unsatisfied, for CSL too; "exclude": they leave the HSR/SSR denominators
  and their example group leaves CSL); a category-level without any valid judgment (for CSL: a category) has no
  score and leaves the mean, as in the scorer.
- "pairs" (LLMBar: `subset` plus `predicted`/`truth` (pointwise) or `choice_original`/`choice_swapped` (pairwise)).
  Metrics `natural_acc`, `adversarial_acc`, `overall_acc`, `natural_f1`, `adversarial_f1`, `overall_f1`,
  `per_subset.<Subset>.acc` / `.f1` (F1 pointwise only), `positional_agreement` (pairwise only). Unit = pair,
  resampled within its subset (strata); per-subset accuracy/F1 are recomputed over the drawn pairs' two judgments
  and the adversarial / overall means over subsets recomputed per resample.
- "items" (refinement: `follows`). Metric `accuracy`. Unit = item.

`metric_statistic(kind, metric)` builds one; `metric_ci(samples, metric)` and `compare(a_samples, b_samples,
metric)` also build the units, detect the kind and match the runs' units (by IFEval `key`, LLMBar (subset, index),
FollowBench (category, example_id), refinement prompt). `correct_vector` / `paired_correct` give per-unit
right/wrong outcomes for `mcnemar`.

Conventions: metrics are fractions, as in metrics.json; a difference is B - A, so with higher-is-better metrics a
positive difference favours B. Resamples whose statistic is undefined (NaN, e.g. a subset that happened to draw no
counted item without stratification) are left out of the percentiles and the p-value.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from harness.errors import DataError, SparError

DEFAULT_RESAMPLES = 2000
#: resamples drawn and evaluated per block; part of the definition of the random stream (fixed, not tunable)
_BLOCK = 250
#: McNemar: below this many discordant pairs the exact binomial test is used
EXACT_BELOW = 25

# Constants repeated from the evaluators (a test checks they stay equal).
#: the judge benchmark's subsets (LLMBar), in the scorer's order; the adversarial ones follow the first
SUBSETS = ("Natural", "Neighbor", "GPTInst", "GPTOut", "Manual")
ADVERSARIAL = SUBSETS[1:]
#: the constraint levels (FollowBench)
LEVELS = (1, 2, 3, 4, 5)
#: the four instruction-following accuracies (IFEval), in the order the scorer averages them
PROMPT_METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
                  "inst_level_loose_acc")
KINDS = ("prompts", "levels", "pairs", "items")

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


def bootstrap_ci(values_or_units: Sequence, statistic: Any = None, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, alpha: float = 0.05, *, strata: Any = None) -> BootstrapResult:
    """Percentile bootstrap interval of `statistic` over `values_or_units`.

    `statistic`: None (the units are numbers; their mean), a callable taking a list of units and returning a
    number, or a statistic from `metric_statistic` (vectorised; it also supplies its default strata).
    `strata`: None = the statistic's default (none for plain callables), False = no stratification, or one label
    per unit (resampling then happens within each label, so every stratum keeps its size).
    The same arguments always give the same result (numpy PCG64 seeded with `seed`)."""
    _check_alpha(alpha)
    units = list(values_or_units) if not isinstance(values_or_units, np.ndarray) else values_or_units
    n = len(units)
    if n == 0:
        raise SparError("bootstrap: no units to resample")
    fn = _batch_fn(units, statistic)
    labels = _resolve_strata(units, statistic, strata)
    estimate = float(fn(np.arange(n)[None, :])[0])
    stats = np.concatenate([fn(block) for block in resample_blocks(n, n_resamples, seed, labels)])
    low, high = _percentiles(stats, alpha)
    return BootstrapResult(estimate, low, high, n, n_resamples, seed, alpha,
                           strata=len(_strata_positions(n, labels)))


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
    are the same prompt / pair / example: use `align_units` or `compare` to get them so).

    Every resample draws one set of unit indices and applies it to both runs, so the shared difficulty of each unit
    cancels. Returns the observed difference B - A, the percentile interval of the resampled differences, and the
    two-sided p-value of `bootstrap_p_value`. `statistic` and `strata` as in `bootstrap_ci` (default strata come
    from A's units and must equal B's)."""
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
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"not JSON ({exc.msg})", line_no) from None
            if not isinstance(row, dict):
                raise DataError(path, "each line must be a JSON object", line_no)
            rows.append(row)
    return rows



def _need(sample: dict, fields: Sequence[str], kind: str) -> None:
    missing = [f for f in fields if f not in sample]
    if missing:
        raise SparError(f"{kind!r} records need {', '.join(map(repr, missing))} (a record has "
                        f"{', '.join(sorted(sample)) or 'no fields'})")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise SparError(f"no statistics for record kind {kind!r} (choose from {', '.join(KINDS)})")


def record_kind(samples: Sequence[dict]) -> str:
    """Which kind of per-sample records these are, from the first record's fields: "prompts" (IFEval), "levels"
    (FollowBench), "pairs" (LLMBar) or "items" (refinement)."""
    if not samples:
        raise SparError("no samples")
    first = samples[0]
    if not isinstance(first, dict):
        raise SparError("samples must be JSON objects (one per line of samples.jsonl)")
    if "follow_all_instructions_strict" in first or "follow_instruction_list_strict" in first:
        return "prompts"
    if {"example_id", "level", "soft"} <= set(first):
        return "levels"
    if "subset" in first and ("predicted" in first or "choice_original" in first):
        return "pairs"
    if "follows" in first:
        return "items"
    raise SparError(f"cannot tell which benchmark's records these are (fields: {', '.join(sorted(first))}); "
                    f"pass kind= one of {', '.join(KINDS)}")


def units_of(kind: str, samples: Sequence[dict]) -> list:
    """The resampling units of `kind` records: prompt, pair and item records are units as they are; "levels"
    records are grouped into example groups (tuples of the records of one (category, example_id), in record order),
    groups in order of first appearance."""
    _check_kind(kind)
    if kind != "levels":
        return list(samples)
    groups: dict[tuple, list[dict]] = {}
    for s in samples:
        _need(s, ("category", "example_id", "level", "hard", "soft"), kind)
        groups.setdefault((s["category"], s["example_id"]), []).append(s)
    return [tuple(g) for g in groups.values()]


def unit_key(kind: str, unit: Any) -> Any:
    """What identifies a unit across runs: a prompt record's `key` (else its prompt), a pair's (subset, index), an
    example group's (category, example_id), an item's prompt."""
    _check_kind(kind)
    if kind == "prompts":
        return unit["key"] if unit.get("key") is not None else unit["prompt"]
    if kind == "pairs":
        return unit["subset"], unit["index"]
    if kind == "levels":
        return unit[0]["category"], unit[0]["example_id"]
    return unit["prompt"]


def align_units(a_samples: Sequence[dict], b_samples: Sequence[dict], kind: str | None = None,
                intersect: bool = False) -> tuple[list, list]:
    """Units of runs A and B in one order (A's), matched by `unit_key`. Different unit sets are an error unless
    `intersect` (then only the shared units are kept). `kind`: None = detected from A's records."""
    kind = kind or record_kind(a_samples)
    a_units, b_units = units_of(kind, a_samples), units_of(kind, b_samples)
    a_map = {unit_key(kind, u): u for u in a_units}
    b_map = {unit_key(kind, u): u for u in b_units}
    if len(a_map) != len(a_units) or len(b_map) != len(b_units):
        raise SparError("a run has two samples for the same unit; cannot pair the runs")
    only_a, only_b = a_map.keys() - b_map.keys(), b_map.keys() - a_map.keys()
    if (only_a or only_b) and not intersect:
        raise SparError(f"the runs cover different units ({len(only_a)} only in A, {len(only_b)} only in B, "
                        f"{len(a_map) - len(only_a)} shared); compare on the same data or pass intersect=True")
    keys = [k for k in a_map if k in b_map]
    if not keys:
        raise SparError("the runs share no units")
    return [a_map[k] for k in keys], [b_map[k] for k in keys]


# ---------------------------------------------------------------------------------------------------- statistics
def _nanmean_rows(columns: list[np.ndarray]) -> np.ndarray:
    """Row-wise mean over the given columns, ignoring NaN (the scorer's 'mean over the non-None values', summed
    in the same order); NaN where every column is NaN."""
    total = np.zeros_like(columns[0], dtype=float)
    count = np.zeros_like(columns[0], dtype=float)
    for col in columns:
        ok = ~np.isnan(col)
        total = np.where(ok, total + np.where(ok, col, 0.0), total)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _nan(rows: int) -> np.ndarray:
    return np.full(rows, np.nan)


class MetricStatistic:
    """One of spar's metrics as a bootstrap statistic over the units of one kind of records (see
    `metric_statistic`).

    Call it on units (`stat(units)`) for the full-sample value; `prepare(units)` gives the vectorised form
    (index rows -> values) that `bootstrap_ci` / `paired_bootstrap` use; `strata(units)` the default strata."""

    def __init__(self, kind: str, metric: str, invalid_policy: str = "zero"):
        _check_kind(kind)
        if invalid_policy not in ("zero", "exclude"):
            raise SparError(f"invalid_policy must be 'zero' or 'exclude', got {invalid_policy!r}")
        self.kind, self.metric, self.invalid_policy = kind, metric, invalid_policy
        if metric not in self.metrics(kind):
            raise SparError(f"no statistic {metric!r} for {kind!r} records (choose from "
                            f"{', '.join(self.metrics(kind))})")

    @staticmethod
    def metrics(kind: str) -> tuple[str, ...]:
        """Metric names supported for `kind` (spar's metrics.json keys; per-subset judge metrics as
        'per_subset.<Subset>.acc' / '.f1')."""
        _check_kind(kind)
        if kind == "prompts":
            return PROMPT_METRICS + ("average",)
        if kind == "levels":
            return tuple(f"{m}_lv{k}" for m in ("ssr", "hsr") for k in LEVELS) + ("ssr_avg", "hsr_avg", "csl")
        if kind == "pairs":
            return tuple(f"{w}_{m}" for m in ("acc", "f1") for w in ("natural", "adversarial", "overall")) + \
                tuple(f"per_subset.{s}.{m}" for s in SUBSETS for m in ("acc", "f1")) + ("positional_agreement",)
        return ("accuracy",)

    def __repr__(self) -> str:
        return f"MetricStatistic({self.kind!r}, {self.metric!r}, invalid_policy={self.invalid_policy!r})"

    def units(self, samples: Sequence[dict]) -> list:
        return units_of(self.kind, samples)

    def strata(self, units: Sequence) -> list | None:
        if self.kind == "pairs":
            return [u["subset"] for u in units]
        if self.kind == "levels":
            return [u[0]["category"] for u in units]
        return None

    def __call__(self, units: Sequence) -> float:
        return float(self.prepare(units)(np.arange(len(units))[None, :])[0])

    def prepare(self, units: Sequence) -> Callable[[np.ndarray], np.ndarray]:
        if not len(units):
            raise SparError("no samples")
        return getattr(self, f"_prepare_{self.kind}")(units)

    # -- prompts (IFEval) ---------------------------------------------------------------------------------------
    def _prepare_prompts(self, units: Sequence[dict]):
        fields = ("follow_all_instructions_strict", "follow_all_instructions_loose",
                  "follow_instruction_list_strict", "follow_instruction_list_loose")
        for u in units:
            _need(u, fields, self.kind)
        arrays = {
            "prompt_level_strict_acc": np.array([bool(u["follow_all_instructions_strict"]) for u in units], float),
            "prompt_level_loose_acc": np.array([bool(u["follow_all_instructions_loose"]) for u in units], float),
            "inst_level_strict_acc": np.array([sum(map(bool, u["follow_instruction_list_strict"])) for u in units],
                                              float),
            "inst_level_loose_acc": np.array([sum(map(bool, u["follow_instruction_list_loose"])) for u in units],
                                             float)}
        counts = np.array([len(u["follow_instruction_list_strict"]) for u in units], float)

        def one(name: str, idx: np.ndarray) -> np.ndarray:
            if name.startswith("prompt_level"):
                return arrays[name][idx].sum(axis=1) / idx.shape[1]
            return _ratio(arrays[name][idx].sum(axis=1), counts[idx].sum(axis=1))

        if self.metric == "average":
            def average(idx):
                total = one(PROMPT_METRICS[0], idx)
                for name in PROMPT_METRICS[1:]:
                    total = total + one(name, idx)
                return total / len(PROMPT_METRICS)
            return average
        return lambda idx: one(self.metric, idx)

    # -- levels (FollowBench) -----------------------------------------------------------------------------------
    def _prepare_levels(self, units: Sequence[tuple]):
        for u in units:
            for s in u:
                _need(s, ("category", "example_id", "level", "hard", "soft"), self.kind)
        categories = list(dict.fromkeys(u[0]["category"] for u in units))
        cat = np.array([categories.index(u[0]["category"]) for u in units])
        nl = len(LEVELS)
        exclude = self.invalid_policy == "exclude"
        shape = (len(units), nl)
        soft, hard = np.zeros(shape), np.zeros(shape)
        counted = np.zeros(shape)  # items in the denominators (all under "zero", the valid ones under "exclude")
        valid_items = np.zeros(shape)  # a category-level without a valid item has no score (n/a), as in the scorer
        csl = np.zeros(len(units))
        csl_eligible = np.zeros(len(units))  # complete groups (and, under "exclude", with every judgment valid)
        csl_valid_levels = np.zeros(len(units))  # "zero": a category whose eligible groups have no valid level is n/a
        for g, group in enumerate(units):
            by_level: dict[int, tuple[int, bool]] = {}
            for s in group:
                valid = s.get("judgment_valid", True) is not False
                level = s["level"]
                by_level[level] = (s["hard"] if valid else 0, valid)
                if level not in LEVELS:
                    continue
                k = LEVELS.index(level)
                valid_items[g, k] += valid
                if exclude and not valid:
                    continue
                soft[g, k] += s["soft"]
                hard[g, k] += s["hard"]
                counted[g, k] += 1
            if set(by_level) == set(LEVELS) and (not exclude or all(v for _, v in by_level.values())):
                csl_eligible[g] = 1
                csl[g] = next((k - 1 for k in LEVELS if by_level[k][0] != 1), len(LEVELS))
                csl_valid_levels[g] = sum(v for _, v in by_level.values())
        metric = self.metric

        def category_sums(values: np.ndarray, idx: np.ndarray) -> list[np.ndarray]:
            """Per category: the sum of `values` (units x ...) over the drawn groups of that category."""
            picked = cat[idx]
            out = []
            for c in range(len(categories)):
                mask = picked == c
                if values.ndim == 2:
                    mask = mask[..., None]
                out.append((values[idx] * mask).sum(axis=1))
            return out

        def per_level(name: str, idx: np.ndarray) -> np.ndarray:  # rows x levels, mean over the scored categories
            nums = category_sums(soft if name == "ssr" else hard, idx)
            dens = category_sums(counted, idx)
            valids = category_sums(valid_items, idx)
            rates = [np.where(v > 0, _ratio(num, den), np.nan) for num, den, v in zip(nums, dens, valids)]
            return np.stack([_nanmean_rows([r[:, k] for r in rates]) for k in range(nl)], axis=1)

        if metric == "csl":
            def csl_stat(idx):
                nums = category_sums(csl * csl_eligible, idx)
                dens = category_sums(csl_eligible, idx)
                per_cat = [_ratio(num, den) for num, den in zip(nums, dens)]
                if not exclude:
                    per_cat = [np.where(v > 0, r, np.nan)
                               for r, v in zip(per_cat, category_sums(csl_valid_levels, idx))]
                return _nanmean_rows(per_cat)
            return csl_stat
        name, _, which = metric.partition("_")
        if which == "avg":
            return lambda idx: _nanmean_rows(list(per_level(name, idx).T))
        k = LEVELS.index(int(which[len("lv"):]))
        return lambda idx: per_level(name, idx)[:, k]

    # -- pairs (LLMBar) -----------------------------------------------------------------------------------------
    def _prepare_pairs(self, units: Sequence[dict]):
        pointwise = "predicted" in units[0]
        n = len(units)
        correct, tp, fp, fn, agree = (np.zeros(n) for _ in range(5))
        for i, u in enumerate(units):
            if pointwise:
                _need(u, ("subset", "predicted", "truth"), self.kind)
                for pred, truth in zip(u["predicted"], u["truth"]):
                    correct[i] += pred == truth
                    tp[i] += pred == 1 and truth == 1
                    fp[i] += pred == 1 and truth == 0
                    fn[i] += pred != 1 and truth == 1
            else:
                _need(u, ("subset", "label", "choice_original", "choice_swapped"), self.kind)
                correct[i] = (u["choice_original"] == u["label"]) + (u["choice_swapped"] == u["label"])
                agree[i] = u["choice_original"] == u["choice_swapped"]
        unknown = {u["subset"] for u in units} - set(SUBSETS)
        if unknown:
            raise SparError(f"unknown subsets {sorted(unknown)} (expected {', '.join(SUBSETS)})")
        present = [s for s in SUBSETS if any(u["subset"] == s for u in units)]
        sub = np.array([present.index(u["subset"]) for u in units])
        metric = self.metric
        if (metric.endswith("f1") and not pointwise) or (metric == "positional_agreement" and pointwise):
            raise SparError(f"{metric} needs {'pointwise' if metric.endswith('f1') else 'pairwise'} judgments")

        def per_subset(what: str, idx: np.ndarray) -> dict[str, np.ndarray]:
            out = {}
            picked = sub[idx]
            for j, name in enumerate(present):
                mask = picked == j
                pairs = mask.sum(axis=1).astype(float)
                if what == "acc":
                    out[name] = _ratio((correct[idx] * mask).sum(axis=1), 2 * pairs)
                elif what == "agreement":
                    out[name] = _ratio((agree[idx] * mask).sum(axis=1), pairs)
                else:
                    t, f_p, f_n = ((a[idx] * mask).sum(axis=1) for a in (tp, fp, fn))
                    value = np.where(t > 0, _ratio(2 * t, 2 * t + f_p + f_n), 0.0)
                    out[name] = np.where(pairs > 0, value, np.nan)
            return out

        if metric == "positional_agreement":
            return lambda idx: _nanmean_rows(list(per_subset("agreement", idx).values()))
        if metric.startswith("per_subset."):
            _, subset, what = metric.split(".")
            return lambda idx: per_subset(what, idx).get(subset, _nan(idx.shape[0]))
        where, _, what = metric.partition("_")

        def summary(idx):
            values = per_subset(what, idx)
            if where == "natural":
                return values.get(SUBSETS[0], _nan(idx.shape[0]))
            if where == "adversarial":
                cols = [values[s] for s in ADVERSARIAL if s in values]
                return _nanmean_rows(cols) if cols else _nan(idx.shape[0])
            return _nanmean_rows(list(values.values()))
        return summary

    # -- items (refinement) -------------------------------------------------------------------------------------
    def _prepare_items(self, units: Sequence[dict]):
        for u in units:
            _need(u, ("follows",), self.kind)
        follows = np.array([bool(u["follows"]) for u in units], float)
        return lambda idx: follows[idx].sum(axis=1) / idx.shape[1]


def metric_statistic(kind: str, metric: str, invalid_policy: str = "zero") -> MetricStatistic:
    """spar's `metric` for records of `kind` ("prompts", "levels", "pairs", "items"; see the module docstring and
    `record_kind`) as a bootstrap statistic over their units (`units_of`); equal to the scorer's metric on the full
    sample set. `invalid_policy` is FollowBench's (its metrics.json says which one the run used)."""
    return MetricStatistic(kind, metric, invalid_policy)


def metric_ci(samples: Sequence[dict], metric: str, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              alpha: float = 0.05, invalid_policy: str = "zero", kind: str | None = None) -> BootstrapResult:
    """Bootstrap interval of one run's `metric` from its per-sample records (kind detected unless given;
    stratified as `metric_statistic` says: pairs by subset, example groups by category)."""
    stat = metric_statistic(kind or record_kind(samples), metric, invalid_policy)
    return bootstrap_ci(stat.units(samples), stat, n_resamples, seed, alpha)


def compare(a_samples: Sequence[dict], b_samples: Sequence[dict], metric: str, n_resamples: int = DEFAULT_RESAMPLES,
            seed: int = 0, alpha: float = 0.05, invalid_policy: str = "zero", kind: str | None = None,
            intersect: bool = False) -> PairedBootstrapResult:
    """Paired bootstrap of `metric` between runs A and B of one benchmark (difference B - A), units matched by
    `unit_key`; `.verdict` says which run is better, if either."""
    kind = kind or record_kind(a_samples)
    stat = metric_statistic(kind, metric, invalid_policy)
    a_units, b_units = align_units(a_samples, b_samples, kind, intersect)
    return paired_bootstrap(a_units, b_units, stat, n_resamples, seed, alpha)


# ---------------------------------------------------------------------------------------------------- outcomes
def correct_vector(samples: Sequence[dict], metric: str = "", kind: str | None = None) -> list[bool]:
    """Right/wrong outcome per scored unit, for `mcnemar`, in record order.

    prompts: `prompt_level_strict_acc` / `prompt_level_loose_acc` (default strict) one per prompt;
    `inst_level_strict_acc` / `inst_level_loose_acc` one per instruction (McNemar then treats instructions as
    independent, which they are not within a prompt). pairs: one per judgment (pointwise: two per pair; pairwise:
    one per presentation order). levels: HSR per item (invalid judgments wrong). items: one per item."""
    kind = kind or record_kind(samples)
    _check_kind(kind)
    if kind == "prompts":
        metric = metric or "prompt_level_strict_acc"
        mode = "strict" if "strict" in metric else "loose"
        if metric.startswith("prompt_level"):
            return [bool(s[f"follow_all_instructions_{mode}"]) for s in samples]
        if metric.startswith("inst_level"):
            return [bool(v) for s in samples for v in s[f"follow_instruction_list_{mode}"]]
        raise SparError(f"no per-unit outcome for {metric!r} (choose a prompt_level_* or inst_level_* metric)")
    if kind == "pairs":
        out = []
        for s in samples:
            if "predicted" in s:
                out += [p == t for p, t in zip(s["predicted"], s["truth"])]
            else:
                out += [s["choice_original"] == s["label"], s["choice_swapped"] == s["label"]]
        return out
    if kind == "levels":
        return [bool(s["hard"]) and s.get("judgment_valid", True) is not False for s in samples]
    return [bool(s["follows"]) for s in samples]


def paired_correct(a_samples: Sequence[dict], b_samples: Sequence[dict], metric: str = "", kind: str | None = None,
                   intersect: bool = False) -> tuple[list[bool], list[bool]]:
    """`correct_vector` of runs A and B over their shared units in one order (ready for `mcnemar`)."""
    kind = kind or record_kind(a_samples)
    a_units, b_units = align_units(a_samples, b_samples, kind, intersect)
    if kind == "levels":
        flatten = lambda units: [s for g in units for s in sorted(g, key=lambda s: s["level"])]  # noqa: E731
        a_units, b_units = flatten(a_units), flatten(b_units)
    return correct_vector(a_units, metric, kind), correct_vector(b_units, metric, kind)
