"""harness.stats: seeded bootstrap intervals, paired bootstrap, McNemar, verdicts, and spar's metrics recomputed from
per-sample records (equal to the scorers' own metrics; real benchmark data when SPAR_DATA_DIR is set, a synthetic
layout otherwise, scored by the evaluators on fake responses and fake judgments)."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import stats
from harness.errors import SparError
from harness.stats import (A_BETTER, B_BETTER, NO_DIFFERENCE, bootstrap_ci, compare, correct_vector, mcnemar,
                           metric_ci, metric_statistic, paired_bootstrap, paired_correct, resample_indices, verdict)

REPO = Path(__file__).resolve().parent.parent
YES = "Step-by-step verification: fine\nFinal Judgement (if the Output accurately follows the Prompt): Yes"
NO = "Step-by-step verification: no\nFinal Judgement (if the Output accurately follows the Prompt): No"
JUNK = "I cannot decide"


def _h(*parts) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def _real_data() -> Path | None:
    value = os.environ.get("SPAR_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


# ------------------------------------------------------------------------------------------------ synthetic records
def _ifeval_records(n=300, seed=1, p=0.7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for key in range(n):
        k = rng.randint(1, 4)
        strict = [rng.random() < p for _ in range(k)]
        loose = [s or rng.random() < 0.4 for s in strict]
        out.append({"key": key, "prompt": f"prompt {key}", "response": "r", "instruction_id_list": ["x:y"] * k,
                    "follow_instruction_list_strict": strict, "follow_instruction_list_loose": loose,
                    "follow_all_instructions_strict": all(strict), "follow_all_instructions_loose": all(loose)})
    return out


def _make_wrong_ifeval(samples, every=3):
    out = copy.deepcopy(samples)
    for i, s in enumerate(out):
        if i % every == 0:
            for mode in ("strict", "loose"):
                s[f"follow_instruction_list_{mode}"] = [False] * len(s[f"follow_instruction_list_{mode}"])
                s[f"follow_all_instructions_{mode}"] = False
    return out


# ------------------------------------------------------------------------------------------------ scored samples
@pytest.fixture(scope="module")
def ifeval_scored():
    """IFEval samples scored by the evaluator: the real 541 prompts when SPAR_DATA_DIR is set, else the built-in
    quickstart set; canned responses that pass some instructions and fail others."""
    from evaluators.ifeval import IFEvalEvaluator

    ev = IFEvalEvaluator()
    real = _real_data()
    data = ev.load(str(real / "ifeval" / "input_data.jsonl") if real else "quickstart")
    canned = ["", "Yes, my answer is yes.", "maple wind toast toast " * 30, '```json\n{"a": 1}\n```',
              "HELLO WORLD IN CAPITALS. " * 12, "a short reply, with a comma.", "Hi.\nP.S. bye",
              "SECTION 1\nfoo\nSECTION 2\nbar", "* one\n* two\n* three", "<<Title>>\nsome text\n\n***\n\nmore text"]
    responses = [canned[_h("ifeval", it.key) % len(canned)] for it in data.items]
    return ev.score(data, responses)


def _synthetic_followbench(root: Path) -> Path:
    """Three LLM-judged categories and the rule-scored example category, 9 examples each, levels 0-5."""
    target = "{instruction}\n{{'AI assistant': '{answer}'}}"
    for cat, source in (("content", "oasst"), ("style", "koala"), ("mixed", "ROCStories"), ("example", "imdb")):
        rows = []
        for ex in range(1, 10):
            levels = range(1, 6) if cat == "example" else range(0, 6)
            rows += [{"example_id": ex, "category": cat, "source": source, "level": k,
                      "instruction": f"{cat} {ex} L{k}", "target": target if cat == "example" else ""}
                     for k in levels]
        (root / f"{cat}_constraints.json").write_text(json.dumps(rows))
    return root


def _fb_judgment(i: int, level: int) -> str:
    r = _h("fb", i) % 10
    if r == 0:
        return "I am unsure"  # invalid
    if level == 1:
        return "['YES']" if r < 7 else "['NO']"
    values = ["YES" if _h("fb", i, j) % 10 < 7 else "NO" for j in range(level)]
    return "reasoning\n" + str(values)


@pytest.fixture(scope="module", params=["zero", "exclude"])
def followbench_scored(request, tmp_path_factory):
    from evaluators.followbench import FollowBenchEvaluator

    real = _real_data()
    root = real / "followbench" if real else _synthetic_followbench(tmp_path_factory.mktemp("fb"))
    ev = FollowBenchEvaluator({"invalid_policy": request.param} if real else
                              {"categories": "content,style,mixed,example", "invalid_policy": request.param})
    data = ev.load(str(root))
    responses = []
    for it in data.items:
        r = _h("fb-resp", it.category, it.example_id, it.level) % 4
        responses.append("{'AI assistant': 'ok'}" if it.category == "example" and r else f"answer {r}")
    llm = [it for it in data.items if it.method == "llm"]
    judgments = [[_fb_judgment(i, it.level)] for i, it in enumerate(llm)]
    result = ev.score(data, responses, judgments)
    assert result.metrics["counts"]["invalid_judgments"] > 0
    return request.param, result


def _synthetic_llmbar(root: Path, pairs=15) -> Path:
    from evaluators.llmbar import SUBSETS, subset_path

    for subset in SUBSETS:
        path = subset_path(root, subset)
        path.parent.mkdir(parents=True)
        rows = [{"input": f"{subset} instruction {i}", "output_1": f"first {i}", "output_2": f"second {i}",
                 "label": 1 + _h("label", subset, i) % 2} for i in range(pairs)]
        path.write_text(json.dumps(rows))
    return root


def _llmbar_votes(pair, k):
    """A judge right about 70% of the time, with 1 or 3 votes and some unparseable outputs (ties happen)."""
    votes = []
    for v in range(1 + 2 * (_h("nv", pair.subset, pair.index) % 2)):
        r = _h("vote", pair.subset, pair.index, k, v) % 20
        if r == 0:
            votes.append(JUNK)
        else:
            right = r < 14
            votes.append(YES if (pair.label == k) == right else NO)
    return votes


@pytest.fixture(scope="module")
def llmbar_root(tmp_path_factory):
    real = _real_data()
    return real / "llmbar" if real else _synthetic_llmbar(tmp_path_factory.mktemp("llmbar"))


@pytest.fixture(scope="module")
def llmbar_pointwise(llmbar_root):
    from evaluators.llmbar import LLMBarEvaluator

    ev = LLMBarEvaluator({"protocol": "pointwise"})
    data = ev.load(str(llmbar_root))
    return ev.score(data, [_llmbar_votes(p, k) for p in data.items for k in (1, 2)])


@pytest.fixture(scope="module")
def llmbar_pairwise(llmbar_root):
    from evaluators.llmbar import LLMBarEvaluator

    ev = LLMBarEvaluator({"protocol": "pairwise"})
    data = ev.load(str(llmbar_root))
    answers = ["Output (a)", "Output (b)", "no idea"]
    return ev.score(data, [[answers[_h("pw", p.subset, p.index, o) % 3]] for p in data.items for o in (0, 1)])


def _get(metrics: dict, name: str):
    node = metrics
    for key in name.split("."):
        node = node[key]
    return node


# ------------------------------------------------------------------------------------------------ layering
def test_constants_match_the_evaluators():
    from evaluators.followbench import LEVELS
    from evaluators.ifeval import METRICS
    from evaluators.llmbar import ADVERSARIAL, SUBSETS

    assert stats.SUBSETS == SUBSETS and stats.ADVERSARIAL == ADVERSARIAL
    assert stats.LEVELS == LEVELS and stats.PROMPT_METRICS == METRICS


def test_low_layer_imports():
    code = ("import sys, harness.stats, harness.paper; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('harness', 'evaluators', 'training', "
            "'torch', 'transformers', 'scipy', 'datasets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), check=True)
    assert json.loads(out.stdout.replace("'", '"')) == ["harness", "harness.errors", "harness.paper", "harness.stats"]


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
    code = ("import json, random; from harness.stats import bootstrap_ci; "
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


# ------------------------------------------------------------------------------------------------ paired
def test_identical_runs_show_no_difference():
    samples = _ifeval_records()
    for metric in ("prompt_level_strict_acc", "inst_level_loose_acc", "average"):
        res = compare(samples, copy.deepcopy(samples), metric)
        assert res.diff == 0 and res.low == res.high == 0 and res.p == 1.0
        assert res.verdict == NO_DIFFERENCE
    assert verdict(res, res.p) == NO_DIFFERENCE
    mc = mcnemar(*paired_correct(samples, samples))
    assert mc.p == 1.0 and verdict(mc, mc.p) == NO_DIFFERENCE


def test_a_third_of_prompts_made_wrong_is_a_significant_drop():
    samples = _ifeval_records()
    worse = _make_wrong_ifeval(samples)
    for metric in ("prompt_level_strict_acc", "prompt_level_loose_acc", "inst_level_strict_acc",
                   "inst_level_loose_acc", "average"):
        res = compare(samples, worse, metric)
        assert res.diff < 0 and res.high < 0 and res.p < 0.01, metric
        assert res.verdict == A_BETTER
        assert res.low <= res.diff <= res.high
        back = compare(worse, samples, metric)
        assert back.diff == pytest.approx(-res.diff) and back.verdict == B_BETTER
    mc = mcnemar(*paired_correct(samples, worse, "prompt_level_strict_acc"))
    assert mc.c == 0 and mc.b > 25 and mc.p < 1e-6 and verdict(mc, mc.p) == A_BETTER


def test_paired_bootstrap_shares_resamples_and_is_reproducible():
    samples = _ifeval_records()
    worse = _make_wrong_ifeval(samples, every=10)
    stat = metric_statistic("prompts", "prompt_level_strict_acc")
    res = paired_bootstrap(samples, worse, stat, n_resamples=500, seed=3)
    assert res == paired_bootstrap(samples, worse, stat, n_resamples=500, seed=3)
    # same indices for both runs: a difference that only ever removes passes can never be positive
    assert res.high <= 0
    # by hand from the documented resampling
    idx = resample_indices(len(samples), 500, seed=3)
    a = np.array([s["follow_all_instructions_strict"] for s in samples], float)
    b = np.array([s["follow_all_instructions_strict"] for s in worse], float)
    diffs = b[idx].mean(1) - a[idx].mean(1)
    assert res.low == pytest.approx(np.quantile(diffs, 0.025)) and res.high == pytest.approx(np.quantile(diffs, 0.975))
    assert res.p == pytest.approx(min(1, 2 * (np.sum(diffs >= 0) + 1) / 501))
    with pytest.raises(SparError, match="align"):
        paired_bootstrap(samples, worse[:-1], stat)


def test_compare_aligns_units_by_key():
    samples = _ifeval_records(120)
    worse = _make_wrong_ifeval(samples)
    shuffled = worse[::-1]
    assert compare(samples, shuffled, "average") == compare(samples, worse, "average")
    with pytest.raises(SparError, match="different units"):
        compare(samples, worse[:100], "average")
    part = compare(samples, worse[:100], "average", intersect=True)
    assert part.n == 100


def test_verdict_rules():
    assert verdict((0.02, 0.01, 0.03), 0.01) == B_BETTER
    assert verdict((-0.02, -0.03, -0.01), 0.01) == A_BETTER
    assert verdict((0.02, -0.01, 0.05), 0.01) == NO_DIFFERENCE  # interval straddles 0
    assert verdict((0.01, 0.03), 0.2, alpha=0.05) == NO_DIFFERENCE
    assert verdict(-0.1, 0.001) == A_BETTER and verdict(0.0, 0.001) == NO_DIFFERENCE
    assert verdict((0.01, 0.03), 0.04) == B_BETTER


# ------------------------------------------------------------------------------------------------ vs scorers
def test_ifeval_statistics_equal_the_scorer(ifeval_scored):
    from evaluators.ifeval import compute_metrics

    for samples, metrics in ((ifeval_scored.samples, ifeval_scored.metrics),
                             (_ifeval_records(), compute_metrics(_ifeval_records()))):
        assert 0 < metrics["average"] < 1
        for metric in stats.PROMPT_METRICS + ("average",):
            stat = metric_statistic("prompts", metric)
            assert stat(stat.units(samples)) == pytest.approx(metrics[metric], abs=1e-12), metric
            ci = metric_ci(samples, metric, n_resamples=300)
            assert ci.estimate == pytest.approx(metrics[metric], abs=1e-12)
            assert ci.low <= ci.estimate <= ci.high


def test_ifeval_resample_equals_scorer_on_the_resampled_prompts(ifeval_scored):
    """A resample's statistic is the scorer's metric on the drawn prompts (instruction ratio recomputed)."""
    from evaluators.ifeval import compute_metrics

    samples = ifeval_scored.samples
    idx = resample_indices(len(samples), 5, seed=11)
    for metric in stats.PROMPT_METRICS + ("average",):
        fn = metric_statistic("prompts", metric).prepare(samples)
        values = fn(idx)
        for row, value in zip(idx, values):
            assert value == pytest.approx(compute_metrics([samples[i] for i in row])[metric], abs=1e-12)


FB_METRICS = [f"{m}_lv{k}" for m in ("ssr", "hsr") for k in range(1, 6)] + ["ssr_avg", "hsr_avg", "csl"]


def test_followbench_statistics_equal_the_scorer(followbench_scored):
    policy, result = followbench_scored
    for metric in FB_METRICS:
        stat = metric_statistic("levels", metric, invalid_policy=policy)
        units = stat.units(result.samples)
        assert stat(units) == pytest.approx(result.metrics[metric], abs=1e-12), (policy, metric)
    ci = metric_ci(result.samples, "ssr_avg", n_resamples=300, invalid_policy=policy)
    assert ci.low <= ci.estimate <= ci.high and ci.strata == len(result.metrics["per_category"])
    assert ci.n == len({(s["category"], s["example_id"]) for s in result.samples})


def test_followbench_resample_equals_scorer_on_the_drawn_groups(followbench_scored):
    from evaluators.followbench import compute_metrics

    policy, result = followbench_scored
    stat = metric_statistic("levels", "ssr_avg", invalid_policy=policy)
    units = stat.units(result.samples)
    idx = resample_indices(len(units), 4, seed=5, strata=stat.strata(units))
    for metric in ("ssr_lv2", "hsr_lv5", "ssr_avg", "hsr_avg"):
        values = metric_statistic("levels", metric, invalid_policy=policy).prepare(units)(idx)
        for row, value in zip(idx, values):
            drawn = [s for i in row for s in units[i]]
            assert value == pytest.approx(compute_metrics(drawn, policy)[metric], abs=1e-12), metric


def _random_followbench(seed: int) -> list[dict]:
    """Raw FollowBench records with many invalid judgments, whole category-levels invalid, incomplete groups."""
    rng = random.Random(seed)
    samples = []
    for cat in ("content", "style", "example", "mixed"):
        dead_level = rng.choice([None, 2, 5])  # every judgment at this level invalid
        dead_category = cat == "mixed" and seed % 3 == 0  # every judgment of the category invalid
        for ex in range(1, rng.randint(2, 7)):
            for level in range(1, 6):
                if rng.random() < 0.05:
                    continue  # an incomplete group (no CSL)
                s = {"category": cat, "example_id": ex, "level": level, "method": "llm"}
                if cat == "example":
                    s["method"] = "example_rule"
                    ok = rng.random() < 0.6
                    s.update(hard=int(ok), soft=float(ok))
                elif dead_category or level == dead_level or rng.random() < 0.3:
                    s.update(judgment_valid=False, hard=0, soft=0.0)
                else:
                    yes = sum(rng.random() < 0.7 for _ in range(level))
                    s.update(judgment_valid=True, hard=int(yes == level), soft=yes / level)
                samples.append(s)
    return samples


@pytest.mark.parametrize("policy", ["zero", "exclude"])
def test_followbench_invalid_judgment_rules_match_the_scorer(policy):
    from evaluators.followbench import compute_metrics

    for seed in range(12):
        samples = _random_followbench(seed)
        expected = compute_metrics(samples, policy)
        for metric in FB_METRICS:
            stat = metric_statistic("levels", metric, invalid_policy=policy)
            value = stat(stat.units(samples))
            if expected[metric] is None:
                assert math.isnan(value), (seed, metric)
            else:
                assert value == pytest.approx(expected[metric], abs=1e-12), (seed, policy, metric)
        stat = metric_statistic("levels", "ssr_avg", invalid_policy=policy)
        units = stat.units(samples)
        idx = resample_indices(len(units), 3, seed=seed, strata=stat.strata(units))
        for metric in ("ssr_lv2", "hsr_lv5", "ssr_avg", "hsr_avg"):
            values = metric_statistic("levels", metric, invalid_policy=policy).prepare(units)(idx)
            for row, value in zip(idx, values):
                want = compute_metrics([s for i in row for s in units[i]], policy)[metric]
                assert (math.isnan(value) if want is None else value == pytest.approx(want, abs=1e-12))


LLMBAR_POINTWISE = ["natural_acc", "adversarial_acc", "overall_acc", "natural_f1", "adversarial_f1", "overall_f1",
                    "per_subset.GPTOut.acc", "per_subset.Manual.f1"]


def test_llmbar_statistics_equal_the_scorer(llmbar_pointwise, llmbar_pairwise):
    m = llmbar_pointwise.metrics
    assert m["counts"]["no_verdict"] > 0
    for metric in LLMBAR_POINTWISE:
        stat = metric_statistic("pairs", metric)
        assert stat(llmbar_pointwise.samples) == pytest.approx(_get(m, metric), abs=1e-12), metric
    ci = metric_ci(llmbar_pointwise.samples, "adversarial_acc", n_resamples=300)
    assert ci.strata == 5 and ci.low <= ci.estimate <= ci.high
    pw = llmbar_pairwise.metrics
    for metric in ("natural_acc", "adversarial_acc", "overall_acc", "positional_agreement", "per_subset.Neighbor.acc"):
        stat = metric_statistic("pairs", metric)
        assert stat(llmbar_pairwise.samples) == pytest.approx(_get(pw, metric), abs=1e-12), metric
    with pytest.raises(SparError, match="pointwise"):
        metric_statistic("pairs", "overall_f1")(llmbar_pairwise.samples)


def test_llmbar_resample_within_subsets_equals_scorer(llmbar_pointwise):
    from evaluators.llmbar import compute_metrics

    samples = llmbar_pointwise.samples
    stat = metric_statistic("pairs", "overall_f1")
    idx = resample_indices(len(samples), 4, seed=2, strata=stat.strata(samples))
    for metric in ("overall_f1", "adversarial_acc", "natural_f1"):
        values = metric_statistic("pairs", metric).prepare(samples)(idx)
        for row, value in zip(idx, values):
            drawn = [samples[i] for i in row]
            assert sorted({s["subset"] for s in drawn}) == sorted({s["subset"] for s in samples})
            assert value == pytest.approx(compute_metrics(drawn, "pointwise")[metric], abs=1e-12)


def test_llmbar_third_of_pairs_made_wrong(llmbar_pointwise):
    samples = llmbar_pointwise.samples
    worse = copy.deepcopy(samples)
    for i, s in enumerate(worse):
        if i % 3 == 0:
            s["predicted"] = [1 - t for t in s["truth"]]
    res = compare(samples, worse, "overall_acc")
    assert res.diff < 0 and res.verdict == A_BETTER
    a, b = paired_correct(samples, worse)
    assert len(a) == 2 * len(samples) and verdict(mcnemar(a, b), mcnemar(a, b).p) == A_BETTER


def test_refinement_and_followbench_outcomes():
    samples = [{"prompt": f"p{i}", "follows": i % 4 != 0} for i in range(40)]
    stat = metric_statistic("items", "accuracy")
    assert stat(samples) == 0.75
    assert correct_vector(samples) == [s["follows"] for s in samples]
    fb = [{"category": "content", "example_id": 1, "level": k, "hard": 1, "soft": 1.0} for k in range(1, 6)]
    fb[2]["judgment_valid"] = False
    assert correct_vector(fb) == [True, True, False, True, True]
    a, b = paired_correct(fb, list(reversed(fb)))
    assert a == b


def test_record_kinds(ifeval_scored, llmbar_pointwise, llmbar_pairwise, followbench_scored):
    assert stats.record_kind(ifeval_scored.samples) == "prompts"
    assert stats.record_kind(llmbar_pointwise.samples) == stats.record_kind(llmbar_pairwise.samples) == "pairs"
    assert stats.record_kind(followbench_scored[1].samples) == "levels"
    assert stats.record_kind([{"prompt": "p", "follows": True}]) == "items"
    with pytest.raises(SparError, match="cannot tell"):
        stats.record_kind([{"prompt": "x"}])


def test_errors_are_one_line():
    with pytest.raises(SparError, match="choose from"):
        metric_statistic("prompts", "nope")
    with pytest.raises(SparError, match="no statistics for record kind"):
        metric_statistic("mtbench", "x")
    with pytest.raises(SparError, match="follow_all_instructions_loose"):
        metric_ci([{"prompt": "x", "follow_all_instructions_strict": True}], "average")
    with pytest.raises(SparError, match="cannot tell"):
        metric_ci([{"prompt": "x"}], "average")


def test_load_samples(tmp_path):
    rows = _ifeval_records(5)
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert stats.load_samples(tmp_path) == rows == stats.load_samples(tmp_path / "samples.jsonl")
    (tmp_path / "bad.jsonl").write_text("{}\nnot json\n")
    with pytest.raises(SparError, match="bad.jsonl:2"):
        stats.load_samples(tmp_path / "bad.jsonl")
