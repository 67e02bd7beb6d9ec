"""LLMBar metrics: pointwise accuracy/F1 and pairwise positional agreement, on fixtures and on the real data."""

from __future__ import annotations

import json

import pytest

from evaluators.llmbar import SUBSETS, LLMBarEvaluator, compute_metrics, f1, parse_choice

YES = "Step-by-step verification: fine\nFinal Judgement (if the Output accurately follows the Prompt): Yes"
NO = "Final Judgement (if the Output accurately follows the Prompt): No"


def _pointwise(data_dir, answer):
    ev = LLMBarEvaluator({"protocol": "pointwise"})
    data = ev.load(str(data_dir))
    responses = [[answer(p, k)] for p in data.items for k in (1, 2)]
    return ev.score(data, responses).metrics


def test_always_yes_judge_gives_50_acc_and_66_7_f1_everywhere(llmbar_dir):
    m = _pointwise(llmbar_dir, lambda p, k: YES)
    for subset in SUBSETS:
        assert m["per_subset"][subset]["acc"] == 0.5
        assert round(100 * m["per_subset"][subset]["f1"], 1) == 66.7
    assert m["natural_acc"] == m["adversarial_acc"] == m["overall_acc"] == 0.5


def test_perfect_and_inverted_judges(llmbar_dir):
    perfect = _pointwise(llmbar_dir, lambda p, k: YES if p.label == k else NO)
    assert perfect["overall_acc"] == 1.0 and perfect["overall_f1"] == 1.0
    inverted = _pointwise(llmbar_dir, lambda p, k: NO if p.label == k else YES)
    assert inverted["overall_acc"] == 0.0 and inverted["overall_f1"] == 0.0


def test_unparseable_judgments_are_counted_and_never_yes(llmbar_dir):
    m = _pointwise(llmbar_dir, lambda p, k: "I cannot decide")
    assert m["overall_acc"] == 0.0  # no verdict is wrong whatever the truth: never silently a No
    sub = m["per_subset"]["Natural"]
    assert sub["no_verdict"] == 8 and sub["unparseable_outputs"] == 8 and sub["f1"] == 0.0


def test_hand_computed_accuracy_and_f1():
    # 3 pairs: predictions (follows?) vs truth
    samples = [{"subset": "Natural", "predicted": [1, 1], "truth": [1, 0], "votes": [{"invalid": 0}] * 2},
               {"subset": "Natural", "predicted": [0, 1], "truth": [0, 1], "votes": [{"invalid": 0}] * 2},
               {"subset": "Natural", "predicted": [None, 0], "truth": [1, 0], "votes": [{"invalid": 1}, {"invalid": 0}]}]
    m = compute_metrics(samples, "pointwise")["per_subset"]["Natural"]
    # correct: 1,0 / 1,1 / 0,1 -> 4 of 6; TP=2 (pair1 out1, pair2 out2), FP=1, FN=1 (pair3 out1)
    assert m["acc"] == pytest.approx(4 / 6)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["f1"] == pytest.approx(f1(2, 1, 1)) == pytest.approx(2 / 3)


def _pairwise(data_dir, answer):
    ev = LLMBarEvaluator({"protocol": "pairwise"})
    data = ev.load(str(data_dir))
    reqs = ev.requests(data, __import__("evaluators.base", fromlist=["GenerationConfig"]).GenerationConfig())
    return ev.score(data, [[answer(r)] for r in reqs]).metrics


def test_judge_preferring_the_first_shown_output_has_zero_agreement(llmbar_dir):
    m = _pairwise(llmbar_dir, lambda r: "Output (a)")
    for subset in SUBSETS:
        assert m["per_subset"][subset]["positional_agreement"] == 0.0
        assert m["per_subset"][subset]["acc"] == 0.5 and m["per_subset"][subset]["acc_both"] == 0.0
    assert m["positional_agreement"] == 0.0


def test_consistent_judge_has_full_agreement(llmbar_dir):
    # picks whichever shown output starts with 'first' -> always output_1 in original ids
    m = _pairwise(llmbar_dir, lambda r: "Output (a)" if "# Output (a):\nfirst" in r.messages[-1].content
                  else "Output (b)")
    sub = m["per_subset"]["Natural"]
    assert sub["positional_agreement"] == 1.0 and sub["acc"] == 0.5 and sub["acc_both"] == 0.5


@pytest.mark.parametrize("text,choice", [("Output (a)", 1), (" Output (b)", 2), ("I pick\nOutput (b)", 2),
                                         ("Output (a) and Output (b)", 1), ("The better is Output (b)", None),
                                         ("output (a)", None), ("", None)])
def test_choice_parser(text, choice):
    assert parse_choice(text) == choice


def test_real_data_always_yes(data_dir):
    m = _pointwise(data_dir / "llmbar", lambda p, k: YES)
    sizes = {"Natural": 100, "Neighbor": 134, "GPTInst": 92, "GPTOut": 47, "Manual": 46}
    for subset, n in sizes.items():
        assert m["per_subset"][subset]["judgments"] == 2 * n
        assert m["per_subset"][subset]["acc"] == 0.5 and round(100 * m["per_subset"][subset]["f1"], 1) == 66.7


def test_score_judgments_file(llmbar_dir, tmp_path):
    """`spar score llmbar --judgments FILE` through the evaluator API (the CLI wires --format/--allow-partial/
    --skip-invalid to match_outputs)."""
    from evaluators.judging import JudgeConfig
    from harness.core.errors import DataError

    rows = []
    for subset in SUBSETS:
        for i in range(4):
            rows += [{"subset": subset, "index": i, "output": 1, "judgment": YES},
                     {"subset": subset, "index": i, "output": 2, "judgments": [NO, YES, NO]}]
    judgments = tmp_path / "j.jsonl"
    judgments.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ev = LLMBarEvaluator({"protocol": "pointwise"}, JudgeConfig(votes=3))
    data = ev.load(str(llmbar_dir))
    matched, outputs = ev.match_outputs(data, str(judgments))
    metrics = ev.score(matched, outputs).metrics
    # output 1 always Yes, output 2 always No (majority): labels 1,2,2,1 -> pairs 0 and 3 right, 1 and 2 wrong
    assert metrics["overall_acc"] == 0.5
    assert metrics["coverage"]["scored"] == metrics["coverage"]["total"] == 20 and metrics["partial"] is False
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"subset": "Natural", "index": 0, "output": 3, "judgment": YES}) + "\n")
    with pytest.raises(DataError) as err:
        ev.match_outputs(data, str(bad))
    assert str(err.value) == f"{bad}:1: field 'output': must be one of 1, 2, got 3"
