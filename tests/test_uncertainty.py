"""evaluators.uncertainty: each benchmark's units and metrics as bootstrap statistics, equal to the scorers' own
metrics (real benchmark data when SPAR_DATA_DIR is set, a synthetic layout otherwise, scored by the evaluators on
fake responses and fake judgments); unit matching, McNemar outcomes, generic per-sample means."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest

from evaluators import uncertainty as unc
from evaluators.uncertainty import (compare, correct_vector, metric_ci, metric_statistic,
                                    paired_correct)
from harness.core.errors import SparError
from harness.core.stats import A_BETTER, B_BETTER, NO_DIFFERENCE, mcnemar, paired_bootstrap, resample_indices, verdict

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


# ------------------------------------------------------------------------------------------------ paired
def test_identical_runs_show_no_difference():
    samples = _ifeval_records()
    for metric in ("prompt_level_strict_acc", "inst_level_loose_acc", "average"):
        res = compare(None, samples, copy.deepcopy(samples), metric)
        assert res.diff == 0 and res.low == res.high == 0 and res.p == 1.0
        assert res.verdict == NO_DIFFERENCE
    assert verdict(res, res.p) == NO_DIFFERENCE
    mc = mcnemar(*paired_correct(None, samples, samples))
    assert mc.p == 1.0 and verdict(mc, mc.p) == NO_DIFFERENCE


def test_a_third_of_prompts_made_wrong_is_a_significant_drop():
    samples = _ifeval_records()
    worse = _make_wrong_ifeval(samples)
    for metric in ("prompt_level_strict_acc", "prompt_level_loose_acc", "inst_level_strict_acc",
                   "inst_level_loose_acc", "average"):
        res = compare(None, samples, worse, metric)
        assert res.diff < 0 and res.high < 0 and res.p < 0.01, metric
        assert res.verdict == A_BETTER
        assert res.low <= res.diff <= res.high
        back = compare(None, worse, samples, metric)
        assert back.diff == pytest.approx(-res.diff) and back.verdict == B_BETTER
    mc = mcnemar(*paired_correct(None, samples, worse, "prompt_level_strict_acc"))
    assert mc.c == 0 and mc.b > 25 and mc.p < 1e-6 and verdict(mc, mc.p) == A_BETTER


def test_paired_bootstrap_shares_resamples_and_is_reproducible():
    samples = _ifeval_records()
    worse = _make_wrong_ifeval(samples, every=10)
    stat = metric_statistic("ifeval", "prompt_level_strict_acc")
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
    assert compare(None, samples, shuffled, "average") == compare(None, samples, worse, "average")
    with pytest.raises(SparError, match="different units"):
        compare(None, samples, worse[:100], "average")
    part = compare(None, samples, worse[:100], "average", intersect=True)
    assert part.n == 100


# ------------------------------------------------------------------------------------------------ vs scorers
def test_ifeval_statistics_equal_the_scorer(ifeval_scored):
    from evaluators.ifeval import compute_metrics

    for samples, metrics in ((ifeval_scored.samples, ifeval_scored.metrics),
                             (_ifeval_records(), compute_metrics(_ifeval_records()))):
        assert 0 < metrics["average"] < 1
        for metric in unc.PROMPT_METRICS + ("average",):
            stat = metric_statistic("ifeval", metric)
            assert stat(stat.units(samples)) == pytest.approx(metrics[metric], abs=1e-12), metric
            ci = metric_ci(None, samples, metric, n_resamples=300)
            assert ci.estimate == pytest.approx(metrics[metric], abs=1e-12)
            assert ci.low <= ci.estimate <= ci.high


def test_ifeval_resample_equals_scorer_on_the_resampled_prompts(ifeval_scored):
    """A resample's statistic is the scorer's metric on the drawn prompts (instruction ratio recomputed)."""
    from evaluators.ifeval import compute_metrics

    samples = ifeval_scored.samples
    idx = resample_indices(len(samples), 5, seed=11)
    for metric in unc.PROMPT_METRICS + ("average",):
        fn = metric_statistic("ifeval", metric).prepare(samples)
        values = fn(idx)
        for row, value in zip(idx, values):
            assert value == pytest.approx(compute_metrics([samples[i] for i in row])[metric], abs=1e-12)


FB_METRICS = [f"{m}_lv{k}" for m in ("ssr", "hsr") for k in range(1, 6)] + ["ssr_avg", "hsr_avg", "csl"]


def test_followbench_statistics_equal_the_scorer(followbench_scored):
    policy, result = followbench_scored
    for metric in FB_METRICS:
        stat = metric_statistic("followbench", metric, invalid_policy=policy)
        units = stat.units(result.samples)
        assert stat(units) == pytest.approx(result.metrics[metric], abs=1e-12), (policy, metric)
    ci = metric_ci(None, result.samples, "ssr_avg", n_resamples=300, invalid_policy=policy)
    assert ci.low <= ci.estimate <= ci.high and ci.strata == len(result.metrics["per_category"])
    assert ci.n == len({(s["category"], s["example_id"]) for s in result.samples})


def test_followbench_resample_equals_scorer_on_the_drawn_groups(followbench_scored):
    from evaluators.followbench import compute_metrics

    policy, result = followbench_scored
    stat = metric_statistic("followbench", "ssr_avg", invalid_policy=policy)
    units = stat.units(result.samples)
    idx = resample_indices(len(units), 4, seed=5, strata=stat.strata(units))
    for metric in ("ssr_lv2", "hsr_lv5", "ssr_avg", "hsr_avg"):
        values = metric_statistic("followbench", metric, invalid_policy=policy).prepare(units)(idx)
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
            stat = metric_statistic("followbench", metric, invalid_policy=policy)
            value = stat(stat.units(samples))
            if expected[metric] is None:
                assert math.isnan(value), (seed, metric)
            else:
                assert value == pytest.approx(expected[metric], abs=1e-12), (seed, policy, metric)
        stat = metric_statistic("followbench", "ssr_avg", invalid_policy=policy)
        units = stat.units(samples)
        idx = resample_indices(len(units), 3, seed=seed, strata=stat.strata(units))
        for metric in ("ssr_lv2", "hsr_lv5", "ssr_avg", "hsr_avg"):
            values = metric_statistic("followbench", metric, invalid_policy=policy).prepare(units)(idx)
            for row, value in zip(idx, values):
                want = compute_metrics([s for i in row for s in units[i]], policy)[metric]
                assert (math.isnan(value) if want is None else value == pytest.approx(want, abs=1e-12))


LLMBAR_POINTWISE = ["natural_acc", "adversarial_acc", "overall_acc", "natural_f1", "adversarial_f1", "overall_f1",
                    "per_subset.GPTOut.acc", "per_subset.Manual.f1"]


def test_llmbar_statistics_equal_the_scorer(llmbar_pointwise, llmbar_pairwise):
    m = llmbar_pointwise.metrics
    assert m["counts"]["no_verdict"] > 0
    for metric in LLMBAR_POINTWISE:
        stat = metric_statistic("llmbar", metric)
        assert stat(llmbar_pointwise.samples) == pytest.approx(_get(m, metric), abs=1e-12), metric
    ci = metric_ci(None, llmbar_pointwise.samples, "adversarial_acc", n_resamples=300)
    assert ci.strata == 5 and ci.low <= ci.estimate <= ci.high
    pw = llmbar_pairwise.metrics
    for metric in ("natural_acc", "adversarial_acc", "overall_acc", "positional_agreement", "per_subset.Neighbor.acc"):
        stat = metric_statistic("llmbar", metric)
        assert stat(llmbar_pairwise.samples) == pytest.approx(_get(pw, metric), abs=1e-12), metric
    with pytest.raises(SparError, match="pointwise"):
        metric_statistic("llmbar", "overall_f1")(llmbar_pairwise.samples)


def test_llmbar_resample_within_subsets_equals_scorer(llmbar_pointwise):
    from evaluators.llmbar import compute_metrics

    samples = llmbar_pointwise.samples
    stat = metric_statistic("llmbar", "overall_f1")
    idx = resample_indices(len(samples), 4, seed=2, strata=stat.strata(samples))
    for metric in ("overall_f1", "adversarial_acc", "natural_f1"):
        values = metric_statistic("llmbar", metric).prepare(samples)(idx)
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
    res = compare(None, samples, worse, "overall_acc")
    assert res.diff < 0 and res.verdict == A_BETTER
    a, b = paired_correct(None, samples, worse)
    assert len(a) == 2 * len(samples) and verdict(mcnemar(a, b), mcnemar(a, b).p) == A_BETTER


def test_refinement_and_followbench_outcomes():
    samples = [{"prompt": f"p{i}", "follows": i % 4 != 0} for i in range(40)]
    stat = metric_statistic("refinement", "accuracy")
    assert stat(samples) == 0.75
    assert correct_vector(None, samples) == [s["follows"] for s in samples]
    fb = [{"category": "content", "example_id": 1, "level": k, "hard": 1, "soft": 1.0} for k in range(1, 6)]
    fb[2]["judgment_valid"] = False
    assert correct_vector(None, fb) == [True, True, False, True, True]
    a, b = paired_correct(None, fb, list(reversed(fb)))
    assert a == b


def test_detect(ifeval_scored, llmbar_pointwise, llmbar_pairwise, followbench_scored):
    assert unc.detect(ifeval_scored.samples) == "ifeval"
    assert unc.detect(llmbar_pointwise.samples) == unc.detect(llmbar_pairwise.samples) == "llmbar"
    assert unc.detect(followbench_scored[1].samples) == "followbench"
    assert unc.detect([{"prompt": "p", "follows": True}]) == "refinement"
    with pytest.raises(SparError, match="cannot tell"):
        unc.detect([{"prompt": "x"}])


def test_errors_are_one_line():
    with pytest.raises(SparError, match="choose from"):
        metric_statistic("ifeval", "nope")
    with pytest.raises(SparError, match="no statistic 'x' for mtbench"):
        metric_ci("mtbench", [{"doc_id": 1, "acc": 1.0}], "x")
    with pytest.raises(SparError, match="invalid_policy"):
        metric_statistic("followbench", "ssr_avg", invalid_policy="drop")
    with pytest.raises(SparError, match="follow_all_instructions_loose"):
        metric_ci(None, [{"prompt": "x", "follow_all_instructions_strict": True}], "average")
    with pytest.raises(SparError, match="cannot tell"):
        metric_ci(None, [{"prompt": "x"}], "average")


def test_constants_are_the_evaluators():
    from evaluators import followbench, ifeval, llmbar

    assert unc.PROMPT_METRICS is ifeval.METRICS and unc.LEVELS is followbench.LEVELS
    assert unc.SUBSETS is llmbar.SUBSETS and unc.ADVERSARIAL is llmbar.ADVERSARIAL


def test_llmbar_flat_subset_keys_equal_the_scorer(llmbar_pointwise, llmbar_pairwise):
    m = llmbar_pointwise.metrics
    flat = [k for k, v in m.items() if k.endswith(("_acc", "_f1")) and isinstance(v, float)]
    assert {"neighbor_acc", "gptinst_f1", "manual_acc", "overall_f1"} <= set(flat)
    for metric in flat:
        assert metric_statistic("llmbar", metric)(llmbar_pointwise.samples) == pytest.approx(m[metric], abs=1e-12)
    pw = llmbar_pairwise.metrics
    for metric in ("neighbor_agreement", "adversarial_agreement", "per_subset.GPTOut.positional_agreement"):
        assert metric_statistic("llmbar", metric)(llmbar_pairwise.samples) == pytest.approx(_get(pw, metric),
                                                                                          abs=1e-12)
    # McNemar outcomes cover the metric's subsets only
    a = correct_vector("llmbar", llmbar_pointwise.samples, "per_subset.Manual.acc")
    assert len(a) == 2 * sum(s["subset"] == "Manual" for s in llmbar_pointwise.samples)
    assert len(correct_vector("llmbar", llmbar_pointwise.samples, "adversarial_acc")) == \
        2 * sum(s["subset"] != "Natural" for s in llmbar_pointwise.samples)


def test_scorer_identity_leaves_out_the_judged_models_decoding():
    scorer = {"protocol": "pointwise", "judge": {"votes": 5, "sampling": {"temperature": 0.7}, "seed": 3,
                                                 "parser": "official"}}
    other = copy.deepcopy(scorer)
    other["judge"].update(votes=1, seed=9, sampling={"temperature": 0.0})
    rec = unc.records_for("llmbar")
    assert rec.scorer_identity(scorer) == rec.scorer_identity(other) == {"protocol": "pointwise",
                                                                         "judge": {"parser": "official"}}
    other["judge"]["parser"] = "lenient"
    assert rec.scorer_identity(scorer) != rec.scorer_identity(other)
    assert scorer["judge"]["votes"] == 5  # the record is not modified
    assert unc.records_for("ifeval").scorer_identity({"a": 1}) == {"a": 1}


def test_other_benchmarks_are_per_sample_means():
    """lm-eval style samples: one row per (doc, filter), metrics as top-level fields."""
    rows = []
    for doc in range(40):
        for flt, p in (("strict-match", 0.5), ("flexible-extract", 0.8)):
            rows.append({"doc_id": doc, "filter": flt, "exact_match": float(_h(flt, doc) % 10 < 10 * p),
                         "resps": [["x"]]})
    strict = [r["exact_match"] for r in rows if r["filter"] == "strict-match"]
    rec = unc.records_for("lm-eval:gsm8k")
    assert isinstance(rec, unc.MeanRecords) and rec.unit == "sample"
    assert set(rec.metrics(rows)) == {"exact_match", "exact_match,strict-match", "exact_match,flexible-extract"}
    ci = metric_ci("lm-eval:gsm8k", rows, "exact_match,strict-match", n_resamples=300)
    assert ci.estimate == pytest.approx(sum(strict) / len(strict)) and ci.n == 40 and ci.low <= ci.estimate <= ci.high
    worse = copy.deepcopy(rows)
    for r in worse:
        if r["doc_id"] % 2 == 0:
            r["exact_match"] = 0.0
    res = compare("lm-eval:gsm8k", rows, list(reversed(worse)), "exact_match,flexible-extract")
    assert res.n == 40 and res.diff < 0 and res.verdict == A_BETTER
    a, b = paired_correct("lm-eval:gsm8k", rows, worse, "exact_match,flexible-extract")
    assert len(a) == 40 and mcnemar(a, b).c == 0
    with pytest.raises(SparError, match="no statistic"):
        metric_ci("lm-eval:gsm8k", rows, "acc")
    with pytest.raises(SparError, match="paired"):
        compare("lm-eval:x", [{"acc": 1.0}], [{"acc": 0.0}], "acc")


def test_each_metric_names_its_unit_of_independence_and_test():
    choice = unc.test_choice
    assert choice("ifeval", "prompt_level_strict_acc") == unc.PairedTest(unc.MCNEMAR, "prompt", "prompt")
    inst = choice("ifeval", "inst_level_loose_acc")
    assert inst == unc.PairedTest(unc.CLUSTERED, "prompt", "instruction") and inst.clustered
    assert choice("ifeval", "average").test == unc.BOOTSTRAP
    assert choice("llmbar", "natural_acc") == unc.PairedTest(unc.CLUSTERED, "pair", "judgment")
    assert choice("llmbar", "per_subset.GPTOut.acc").test == unc.CLUSTERED
    for metric in ("overall_acc", "adversarial_acc", "natural_f1", "positional_agreement"):
        assert choice("llmbar", metric).test == unc.BOOTSTRAP, metric  # means over subsets, F1: no pooled outcome
    assert all(choice("followbench", m).test == unc.BOOTSTRAP for m in ("ssr_avg", "hsr_lv1", "csl"))
    assert choice("refinement", "accuracy") == unc.PairedTest(unc.MCNEMAR, "item", "item")
    assert choice("lm-eval:gsm8k", "acc") == unc.PairedTest(unc.MCNEMAR, "sample", "sample")


def test_paired_clusters_keep_the_judgments_of_a_pair_together(llmbar_pointwise):
    samples = llmbar_pointwise.samples
    worse = copy.deepcopy(samples)
    for i, s in enumerate(worse):
        if i % 3 == 0:
            s["predicted"] = [1 - t for t in s["truth"]]
    a, b = unc.paired_clusters(None, samples, worse, "natural_acc")
    natural = [s for s in samples if s["subset"] == "Natural"]
    assert len(a) == len(b) == len(natural) and all(len(x) == len(y) == 2 for x, y in zip(a, b))
    flat_a, flat_b = paired_correct(None, samples, worse, "natural_acc")
    assert [v for c in a for v in c] == flat_a and [v for c in b for v in c] == flat_b
