"""harness.core.stats: seeded bootstrap intervals, paired bootstrap, McNemar, verdicts, unit alignment, sample loading
(generic: no benchmark is known here; the per-benchmark statistics are tested in tests/test_uncertainty.py)."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.core import stats
from harness.core.errors import SparError
from harness.core.stats import (A_BETTER, B_BETTER, NO_DIFFERENCE, align_by_key, bootstrap_ci, bootstrap_distribution,
                                mcnemar, paired_bootstrap, percentile_interval, resample_indices, verdict)

REPO = Path(__file__).resolve().parent.parent


def test_low_layer_imports():
    code = ("import sys, harness.core.stats, harness.core.paper; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('harness', 'evaluators', 'training', "
            "'torch', 'transformers', 'scipy', 'datasets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), check=True)
    assert json.loads(out.stdout.replace("'", '"')) == ["harness", "harness.core", "harness.core.errors",
                                                        "harness.core.paper", "harness.core.stats"]


# ------------------------------------------------------------------------------------------------ bootstrap
def test_bootstrap_is_reproducible_with_a_seed():
    values = [random.Random(3).random() < 0.6 for _ in range(200)]
    first = bootstrap_ci(values, seed=7)
    assert first == bootstrap_ci(values, seed=7)
    assert first == bootstrap_ci(np.array(values), None, 2000, 7)
    assert bootstrap_ci(values, seed=8) != first
    assert first.n == 200 and first.n_resamples == 2000 and first.seed == 7 and first.method == "percentile"
    assert first.estimate == pytest.approx(np.mean(values))
    assert np.array_equal(resample_indices(50, 300, seed=1), resample_indices(50, 300, seed=1))
    # the same interval from a fresh interpreter
    code = ("import json, random; from harness.core.stats import bootstrap_ci; "
            "v=[random.Random(3).random() < 0.6 for _ in range(200)]; "
            "print(json.dumps(bootstrap_ci(v, seed=7).to_dict()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), check=True)
    assert json.loads(out.stdout) == first.to_dict()


def test_interval_contains_the_estimate_and_has_the_textbook_width():
    rng = random.Random(0)
    values = [rng.random() < 0.7 for _ in range(500)]
    ci = bootstrap_ci(values)
    assert ci.low < ci.estimate < ci.high
    # the normal approximation: half-width 1.96 * sqrt(p(1-p)/n)
    half = 1.96 * math.sqrt(ci.estimate * (1 - ci.estimate) / len(values))
    assert (ci.high - ci.low) / 2 == pytest.approx(half, rel=0.15)
    narrower = bootstrap_ci(values, alpha=0.2)
    assert ci.low <= narrower.low <= narrower.high <= ci.high


def test_plain_callable_statistic_and_strata():
    units = [{"g": "a", "v": 1.0}] * 5 + [{"g": "b", "v": 0.0}] * 15
    mean = lambda us: sum(u["v"] for u in us) / len(us)  # noqa: E731
    free = bootstrap_ci(units, mean, n_resamples=300)
    strat = bootstrap_ci(units, mean, n_resamples=300, strata=[u["g"] for u in units])
    # within-stratum resampling keeps 5 a's and 15 b's: no variance left
    assert strat.low == strat.high == strat.estimate == 0.25 and strat.strata == 2
    assert free.low < 0.25 < free.high and free.strata == 1
    idx = resample_indices(20, 100, seed=0, strata=[u["g"] for u in units])
    assert (idx[:, :5] < 5).all() and (idx[:, 5:] >= 5).all()
    with pytest.raises(SparError):
        bootstrap_ci([], seed=0)
    with pytest.raises(SparError, match="alpha"):
        bootstrap_ci([1, 2], alpha=1.5)


def test_bootstrap_distribution_is_what_the_interval_is_made_of():
    values = [random.Random(5).random() < 0.4 for _ in range(150)]
    estimate, draws, strata = bootstrap_distribution(values, n_resamples=400, seed=2)
    assert estimate == pytest.approx(np.mean(values)) and len(draws) == 400 and strata == 1
    ci = bootstrap_ci(values, n_resamples=400, seed=2)
    assert percentile_interval(estimate, draws, len(values), seed=2) == ci
    assert (ci.low, ci.high) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])))


# ------------------------------------------------------------------------------------------------ McNemar
def test_mcnemar_hand_computed_exact():
    a = [True] * 10 + [False] * 2 + [True] * 30 + [False] * 8
    b = [False] * 10 + [True] * 2 + [True] * 30 + [False] * 8
    res = mcnemar(a, b)
    assert (res.b, res.c, res.n) == (10, 2, 50) and res.method == "exact binomial"
    # 2 * P(X <= 2 | n=12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert res.p == pytest.approx(2 * 79 / 4096) and round(res.p, 4) == 0.0386
    assert res.statistic == 2 and res.diff == pytest.approx(-8 / 50)
    assert verdict(res, res.p) == A_BETTER
    swapped = mcnemar(b, a)
    assert (swapped.b, swapped.c, swapped.p) == (2, 10, res.p) and verdict(swapped, swapped.p) == B_BETTER


def test_mcnemar_chi_square_and_edge_cases():
    a = [True] * 30 + [False] * 10
    b = [False] * 30 + [True] * 10
    res = mcnemar(a, b)  # 40 discordant: chi-square with continuity correction
    assert res.method.startswith("chi-square") and res.statistic == pytest.approx(19 ** 2 / 40)
    assert res.p == pytest.approx(0.0026634, rel=1e-3)  # P(chi2_1 >= 9.025)
    exact = mcnemar(a, b, exact=True)
    assert exact.method == "exact binomial"
    assert exact.p == pytest.approx(2 * sum(math.comb(40, k) for k in range(11)) / 2**40)
    same = mcnemar([True, False, True], [True, False, True])
    assert same.p == 1.0 and same.b == same.c == 0
    assert mcnemar([True] * 5 + [False] * 5, [False] * 5 + [True] * 5).p == 1.0
    with pytest.raises(SparError):
        mcnemar([True], [True, False])


def test_mcnemar_agrees_with_scipy_when_installed():
    scipy_stats = pytest.importorskip("scipy.stats")
    for b, c in ((10, 2), (3, 9), (7, 7), (0, 5)):
        res = mcnemar([True] * b + [False] * c, [False] * b + [True] * c)
        assert res.p == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue)
    res = mcnemar([True] * 30 + [False] * 12, [False] * 30 + [True] * 12)
    assert res.p == pytest.approx(scipy_stats.chi2.sf(res.statistic, 1))


def _outcomes(n=300, seed=1, p=0.7) -> np.ndarray:
    rng = random.Random(seed)
    return np.array([rng.random() < p for _ in range(n)], float)


def test_identical_runs_show_no_difference():
    a = _outcomes()
    res = paired_bootstrap(a, a.copy())
    assert res.diff == 0 and res.low == res.high == 0 and res.p == 1.0 and res.verdict == NO_DIFFERENCE
    mc = mcnemar(a, a)
    assert mc.p == 1.0 and verdict(mc, mc.p) == NO_DIFFERENCE


def test_paired_bootstrap_shares_resamples_and_is_reproducible():
    a = _outcomes()
    b = a.copy()
    b[::10] = 0  # only ever removes passes
    res = paired_bootstrap(a, b, n_resamples=500, seed=3)
    assert res == paired_bootstrap(a, b, n_resamples=500, seed=3)
    # same indices for both runs: a difference that only ever removes passes can never be positive
    assert res.high <= 0 and res.diff < 0
    # by hand from the documented resampling
    idx = resample_indices(len(a), 500, seed=3)
    diffs = b[idx].mean(1) - a[idx].mean(1)
    assert res.low == pytest.approx(np.quantile(diffs, 0.025)) and res.high == pytest.approx(np.quantile(diffs, 0.975))
    assert res.p == pytest.approx(min(1, 2 * (np.sum(diffs >= 0) + 1) / 501))
    with pytest.raises(SparError, match="align"):
        paired_bootstrap(a, b[:-1])


def test_a_third_made_wrong_is_a_significant_drop():
    a = _outcomes()
    b = a.copy()
    b[::3] = 0
    res = paired_bootstrap(a, b)
    assert res.diff < 0 and res.high < 0 and res.p < 0.01 and res.verdict == A_BETTER
    back = paired_bootstrap(b, a)
    assert back.diff == pytest.approx(-res.diff) and back.verdict == B_BETTER
    mc = mcnemar(a, b)
    assert mc.c == 0 and mc.b > 25 and mc.p < 1e-6 and verdict(mc, mc.p) == A_BETTER


def test_align_by_key():
    a = [{"k": i, "v": i % 2} for i in range(10)]
    b = list(reversed(a))
    a2, b2 = align_by_key(a, b, lambda u: u["k"])
    assert a2 == a and b2 == a
    with pytest.raises(SparError, match="different units"):
        align_by_key(a, b[:8], lambda u: u["k"])
    a3, b3 = align_by_key(a, b[:8], lambda u: u["k"], intersect=True)
    assert len(a3) == len(b3) == 8 and [u["k"] for u in a3] == [u["k"] for u in b3]
    with pytest.raises(SparError, match="two samples"):
        align_by_key(a + a[:1], b, lambda u: u["k"])
    with pytest.raises(SparError, match="share no units"):
        align_by_key(a, [{"k": 99}], lambda u: u["k"], intersect=True)


def test_verdict_rules():
    assert verdict((0.02, 0.01, 0.03), 0.01) == B_BETTER
    assert verdict((-0.02, -0.03, -0.01), 0.01) == A_BETTER
    assert verdict((0.02, -0.01, 0.05), 0.01) == NO_DIFFERENCE  # interval straddles 0
    assert verdict((0.01, 0.03), 0.2, alpha=0.05) == NO_DIFFERENCE
    assert verdict(-0.1, 0.001) == A_BETTER and verdict(0.0, 0.001) == NO_DIFFERENCE
    assert verdict((0.01, 0.03), 0.04) == B_BETTER


def test_load_samples(tmp_path):
    rows = [{"key": i, "x": i} for i in range(5)]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert stats.load_samples(tmp_path) == rows == stats.load_samples(tmp_path / "samples.jsonl")
    (tmp_path / "bad.jsonl").write_text("{}\nnot json\n")
    with pytest.raises(SparError, match="bad.jsonl:2"):
        stats.load_samples(tmp_path / "bad.jsonl")



# ------------------------------------------------------------------------------------------------ Holm, clustered
def _holm_by_rejection(p: list[float], alpha: float) -> list[bool]:
    """Holm's procedure as he states it (an independent computation): test the smallest p against alpha / m, the
    next against alpha / (m - 1), ..., stop at the first that is not below its threshold."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = [False] * len(p)
    for rank, i in enumerate(order):
        if not p[i] < alpha / (len(p) - rank):
            break
        rejected[i] = True
    return rejected


def test_holm_adjusted_p_values():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 x .01, 2 x .03, then max
    assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert stats.holm([0.9, 0.45]) == pytest.approx([0.9, 0.9]) and stats.holm([0.9, 0.8]) == [1.0, 1.0]
    assert stats.holm([]) == []
    p = stats.holm([0.02, math.nan, 0.2])
    assert p[0] == pytest.approx(0.04) and math.isnan(p[1]) and p[2] == pytest.approx(0.2)
    rng = np.random.default_rng(5)
    for _ in range(200):
        raw = list(rng.uniform(0, 0.08, size=int(rng.integers(1, 8))))
        for alpha in (0.01, 0.05):
            assert [q < alpha for q in stats.holm(raw)] == _holm_by_rejection(raw, alpha)


def _obuchowski_by_hand(a_clusters, b_clusters) -> tuple[float, float]:
    """Obuchowski (1998), written from the paper's variance and covariance of the two ratio estimators (an
    independent computation of `clustered_mcnemar`), p from scipy's F(1, clusters - 1)."""
    from scipy.stats import f

    n = len(a_clusters)
    m = [len(c) for c in a_clusters]
    x = [sum(c) for c in a_clusters]
    y = [sum(c) for c in b_clusters]
    total = sum(m)
    p1, p2 = sum(x) / total, sum(y) / total
    var1 = n / ((n - 1) * total ** 2) * sum((xi - p1 * mi) ** 2 for xi, mi in zip(x, m))
    var2 = n / ((n - 1) * total ** 2) * sum((yi - p2 * mi) ** 2 for yi, mi in zip(y, m))
    cov = n / ((n - 1) * total ** 2) * sum((xi - p1 * mi) * (yi - p2 * mi) for xi, yi, mi in zip(x, y, m))
    stat = (p1 - p2) ** 2 / (var1 + var2 - 2 * cov)
    return stat, float(f.sf(stat, 1, n - 1))


def test_clustered_mcnemar_equals_an_independent_computation():
    pytest.importorskip("scipy")
    rng = random.Random(11)
    for _ in range(20):
        sizes = [rng.randint(1, 4) for _ in range(rng.randint(5, 60))]
        a = [[rng.random() < 0.7 for _ in range(k)] for k in sizes]
        b = [[rng.random() < 0.6 for _ in range(k)] for k in sizes]
        res = stats.clustered_mcnemar(a, b)
        stat, p = _obuchowski_by_hand(a, b)
        assert res.statistic == pytest.approx(stat, rel=1e-12) and res.p == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert res.clusters == len(sizes) and res.outcomes == sum(sizes)
        assert res.diff == pytest.approx(sum(map(sum, b)) / sum(sizes) - sum(map(sum, a)) / sum(sizes))
    moved = stats.clustered_mcnemar([[False, False], [False], [False]], [[True, True], [True], [True]])
    assert moved.p == pytest.approx(0.25) and "sign test" in moved.method  # zero variance: 3 of 3 clusters up
    # every cluster moved by a third of its outcomes (1/3 is not a binary fraction: the zero variance must be exact)
    thirds = stats.clustered_mcnemar([[False, True, True]] * 4, [[True, True, True]] * 4)
    assert thirds.p == pytest.approx(0.125) and "sign test" in thirds.method
    same = stats.clustered_mcnemar([[True, False], [True]], [[False, True], [True]])  # no cluster moved
    assert same.p == 1.0 and same.statistic == 0.0
    with pytest.raises(SparError, match="different number"):
        stats.clustered_mcnemar([[True, True]], [[True]])
    with pytest.raises(SparError, match="2 clusters for A but 1"):
        stats.clustered_mcnemar([[True], [True]], [[True]])


def test_clustered_outcomes_hold_alpha_where_plain_mcnemar_does_not():
    """Two judgments per pair that move together (a judge that gets a pair right gets both of its outputs right):
    McNemar on the judgments as if independent rejects a true null far more often than alpha; Obuchowski's test
    over the pairs does not (600 simulated pairs of runs of one distribution, 100 pairs each)."""
    rng = np.random.default_rng(2026)
    sims, pairs, alpha = 600, 100, 0.05
    side = rng.choice([0, 1, 2], size=(sims, pairs), p=[0.15, 0.15, 0.7])  # 0: A wins the pair, 1: B, 2: neither
    both = rng.random((sims, pairs)) < 0.7
    plain = clustered = 0
    for s in range(sims):
        a = [[bool(x)] * 2 if k == 2 else [k == 0] * 2 for k, x in zip(side[s], both[s])]
        b = [[bool(x)] * 2 if k == 2 else [k == 1] * 2 for k, x in zip(side[s], both[s])]
        plain += mcnemar([v for c in a for v in c], [v for c in b for v in c]).p < alpha
        clustered += stats.clustered_mcnemar(a, b).p < alpha
    se = math.sqrt(alpha * (1 - alpha) / sims)
    assert clustered / sims <= alpha + 2.5 * se
    assert plain / sims > alpha + 5 * se  # the fault the clustered test fixes


def test_f_reference_matches_scipy_and_holds_alpha_with_few_clusters():
    """The F(1, N - 1) tail equals scipy's; with 8 clusters of 1-3 correlated outcomes and no true difference the
    clustered test rejects at most alpha (4.8% in 4,000 simulations; chi-square with 1 degree of freedom: 9.8%)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    for stat, df in ((0.5, 3), (3.84, 7), (10.0, 1), (25.0, 40), (1e-4, 500)):
        assert stats.f_one_sf(stat, df) == pytest.approx(float(scipy_stats.f.sf(stat, 1, df)), rel=1e-9)
    rng = np.random.default_rng(7)
    sims, clusters, alpha, rejected = 2000, 8, 0.05, 0
    for _ in range(sims):
        sizes = rng.integers(1, 4, clusters)
        skill = rng.random(clusters)  # a prompt's difficulty, shared by its instructions and by both runs
        a = [list(rng.random(k) < s) for k, s in zip(sizes, skill)]
        b = [list(rng.random(k) < s) for k, s in zip(sizes, skill)]
        rejected += stats.clustered_mcnemar(a, b).p < alpha
    assert rejected / sims <= alpha + 2.5 * math.sqrt(alpha * (1 - alpha) / sims)
