"""LLMBar with a score judge (`judge_prompt: score5`, the Self-/Meta-Rewarding judges): the 5-point prompt per
output, Yes at a mean score >= threshold (pointwise), the two scores compared (pairwise, ties counted)."""

from __future__ import annotations

import json

import pytest

from evaluators.judging import JudgeConfig
from evaluators.llmbar import LLMBarEvaluator
from evaluators.score_judge import SCORE_JUDGE_TEMPLATE
from harness.core.errors import SparError


def _score(data_dir, answer, protocol="pointwise", votes=1, **opts):
    ev = LLMBarEvaluator({"protocol": protocol, "judge_prompt": "score5", **opts}, JudgeConfig(votes=votes))
    data = ev.load(str(data_dir))
    responses = [answer(p, k) for p in data.items for k in (1, 2)]
    return ev, data, ev.score(data, responses)


def test_requests_use_the_5_point_prompt_for_each_output(llmbar_dir):
    for protocol in ("pointwise", "pairwise"):
        ev = LLMBarEvaluator({"protocol": protocol, "judge_prompt": "score5"}, JudgeConfig(votes=3))
        data = ev.load(str(llmbar_dir), limit=1)
        requests = ev.requests(data, None)
        assert len(requests) == 2 * len(data.items) and all(r.n == 3 for r in requests)
        first = requests[0].messages[-1].content
        assert first.startswith(SCORE_JUDGE_TEMPLATE[:60])
        assert f"User: {data.items[0].input}\n<response>{data.items[0].output_1}</response>" in first
        assert ev.describe()["prompt"].startswith("Self-Rewarding")


def test_pointwise_threshold_maps_scores_to_yes(llmbar_dir):
    # the labelled output gets 4 (Yes at the default threshold 4), the other 3
    _, _, result = _score(llmbar_dir, lambda p, k: ["Score: 4" if p.label == k else "Score: 3"])
    assert result.metrics["overall_acc"] == 1.0
    assert result.samples[0]["scores"] in ([4.0, 3.0], [3.0, 4.0])
    _, _, strict = _score(llmbar_dir, lambda p, k: ["Score: 4" if p.label == k else "Score: 3"], score_threshold=5)
    assert strict.metrics["overall_acc"] == 0.5  # nothing reaches 5: every output is No


def test_pointwise_mean_of_valid_votes_and_unparseable(llmbar_dir):
    # votes 5 and 2 average 3.5 (< 4: No), an unparseable vote is dropped, an all-unparseable output has no verdict
    _, _, result = _score(llmbar_dir, lambda p, k: ["Score: 5", "blah", "Score: 4"] if p.label == k
                          else ["Score: 5", "Score: 2", "nothing"], votes=3)
    m = result.metrics
    assert m["overall_acc"] == 1.0 and m["counts"]["unparseable"] == 2 * m["counts"]["pairs"]
    _, _, none = _score(llmbar_dir, lambda p, k: ["no score"])
    counts = none.metrics["counts"]
    assert none.metrics["overall_acc"] == 0.0 and counts["no_verdict"] == 2 * counts["pairs"]


def test_pairwise_compares_scores_and_counts_ties(llmbar_dir):
    _, _, right = _score(llmbar_dir, lambda p, k: ["Score: 5" if p.label == k else "Score: 1"], "pairwise")
    assert right.metrics["overall_acc"] == 1.0 and right.metrics["positional_agreement"] == 1.0
    _, _, ties = _score(llmbar_dir, lambda p, k: ["Score: 3"], "pairwise")
    m = ties.metrics
    # the official Rating rule: a tie picks output 1 in the original order and output 2 in the swapped one
    assert m["overall_acc"] == 0.5 and m["positional_agreement"] == 0.0
    assert m["counts"]["score_ties"] == m["counts"]["pairs"] and m["per_subset"]["Natural"]["score_ties"] == 4
    _, _, missing = _score(llmbar_dir, lambda p, k: ["Score: 4"] if k == 1 else ["?"], "pairwise")
    assert missing.metrics["overall_acc"] == 0.0 and missing.samples[0]["unparseable"] == [False, True]


def test_score_judge_files(llmbar_dir, tmp_path):
    # pointwise files of score judgments read as any pointwise file
    ev = LLMBarEvaluator({"judge_prompt": "score5"})
    data = ev.load(str(llmbar_dir))
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps({"subset": p.subset, "index": p.index, "output": k,
                                        "judgment": "Score: 5" if p.label == k else "Score: 0"}) + "\n"
                            for p in data.items for k in (1, 2)))
    matched, outputs = ev.match_outputs(data, str(path))
    assert ev.score(matched, outputs).metrics["overall_acc"] == 1.0
    pairwise = LLMBarEvaluator({"protocol": "pairwise", "judge_prompt": "score5"})
    with pytest.raises(SparError, match="score5 with protocol=pairwise"):
        pairwise.match_outputs(data, str(path))


def test_lenient_score_parser_is_an_option(llmbar_dir):
    def answer(p, k):
        return ["I rate it 5/5" if p.label == k else "2 points"]

    _, _, strict = _score(llmbar_dir, answer)
    assert strict.metrics["counts"]["no_verdict"] == 2 * strict.metrics["counts"]["pairs"]
    ev, _, lenient = _score(llmbar_dir, answer, score_parser="lenient")
    assert lenient.metrics["overall_acc"] == 1.0 and ev.describe()["score_parser"] == "lenient"
