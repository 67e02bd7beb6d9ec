"""FollowBench: judge prompts and parsing, rule checks, and HSR/SSR/CSL against hand computation of the official
formulas."""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLE_TARGET, run_spar
from evaluators.followbench import FollowBenchEvaluator, judge_prompt, parse_judgment
from evaluators.followbench_rules import SOURCE_CHECKS, example_check, format_check, sentences



JUDGE = {1: "1) ...\n2) ...\n['YES']", 2: "```\n['YES', 'NO']\n```", 3: "['YES', 'YES', 'YES']", 4: "I am unsure",
         5: "Final:\n['YES', 'PARTIAL', 'YES', 'YES', 'NO']"}
XSUM = {1: "The storm is coming.", 2: "The storm is coming.", 3: "Newton Stewart is flooding.",
        4: "The town is flooding.", 5: "The town is flooding."}
EXAMPLE = {1: "{'AI assistant': 'hi'}", 2: "{'AI assistant': 'x'}", 3: "nope", 4: "{'AI assistant': ''}",
           5: "{'AI assistant': 'ok'}"}


def _score(fb_dir, policy="zero"):
    ev = FollowBenchEvaluator({"categories": "content,example", "invalid_policy": policy})
    data = ev.load(str(fb_dir))
    responses = [XSUM[it.level] if it.source == "xsum" else EXAMPLE[it.level] if it.category == "example"
                 else f"answer L{it.level}" for it in data.items]
    judge_requests = ev.judge_requests(data, responses)
    assert len(judge_requests) == 5
    assert judge_requests[1].messages[0].content == judge_prompt("content", ("content 1 L0", "content 1 L1",
                                                                            "content 1 L2"), "answer L2")
    return ev.score(data, responses, [[JUDGE[k]] for k in range(1, 6)]).metrics


def test_hand_checked_metrics(fb_dir):
    m = _score(fb_dir)
    content = m["per_category"]["content"]
    assert content["hsr"] == {"1": 1.0, "2": 0.5, "3": 0.5, "4": 0.5, "5": 0.0}
    assert content["ssr"] == pytest.approx({"1": 1.0, "2": 0.75, "3": 0.5, "4": 0.5, "5": 0.3})
    assert content["csl"] == 1.5 and content["invalid_judgments"] == 1
    example = m["per_category"]["example"]
    assert example["hsr"] == example["ssr"] == {"1": 1.0, "2": 1.0, "3": 0.0, "4": 1.0, "5": 1.0}
    assert example["csl"] == 2.0
    assert [m[f"ssr_lv{k}"] for k in range(1, 6)] == pytest.approx([1.0, 0.875, 0.25, 0.75, 0.65])
    assert m["ssr_avg"] == pytest.approx(0.705)
    assert m["csl"] == 1.75 and m["counts"]["invalid_judgments"] == 1


def test_exclude_policy_drops_invalid_items(fb_dir):
    content = _score(fb_dir, "exclude")["per_category"]["content"]
    assert content["hsr"]["4"] == 1.0 and content["items_per_level"][4] == 1


@pytest.mark.parametrize("text,level,expected", [
    ("reasoning\nYES", 1, (1, 1.0)), ("['NO']", 1, (0, 0.0)), ("maybe", 1, None),
    ("['YES', 'NO', 'YES']", 3, (0, 2 / 3)), ("['YES', 'YES']", 2, (1, 1.0)),
    ("['YES', 'N/A']", 2, (0, 0.5)), ("['YES']", 2, None), ("['YES', 'OK']", 2, None), ("[YES, NO]", 2, None),
    ("['YES', 'NO']\n", 2, (0, 0.5)), ("```python\n['YES', 'NO']\n```", 2, (0, 0.5)),
])
def test_judgment_parsing(text, level, expected):
    assert parse_judgment(text, level) == expected


def test_judge_prompt_shapes():
    one = judge_prompt("situation", ("base", "base + c1"), "ans")
    assert one.startswith("Given an initial instruction, we add one situation constraint (information to describe a "
                          "specific situation/background) and obtain the final instruction with 1 additional constraint.")
    assert "#Answer of Initial Instruction + 1 constraint#\nans\n\n#System#" in one
    three = judge_prompt("mixed", ("b", "c1", "c2", "c3"), "ans")
    assert "we add one constraint per time and obtain the final instruction with 3 additional constraints." in three
    assert "#Initial Instruction + 3 constraints#\nc3\n\n#Answer of Initial Instruction + 3 constraints#" in three
    assert three.endswith("a Python LIST with 3 elements ('YES' or 'NO') indicating whether the answer satisfies each "
                          "constraint.")


def test_rule_checks_by_hand():
    assert sentences("One. Two! ") == ["One", " Two", " "]  # the official split keeps whitespace pieces
    assert SOURCE_CHECKS["gsm_8k"]("so $3 then $12", "$12", 1)
    assert not SOURCE_CHECKS["gsm_8k"]("12 dollars", "$12", 1)
    assert SOURCE_CHECKS["BBH_logical"]("(A) or maybe (B)", "(B)", 3)
    assert SOURCE_CHECKS["gigaword"]("police find the missing boy in the park", "", 5)
    assert not SOURCE_CHECKS["gigaword"]("police find the missing boy on the bus", "", 5)
    assert SOURCE_CHECKS["arxiv"]("We study activations.", "", 4)
    assert not SOURCE_CHECKS["arxiv"]("We study transformer activations.", "", 5)
    assert format_check("1. a\n\n2. b\n\n3. c", 22, 1) and not format_check("1. a\n\n2. b", 22, 1)
    assert example_check(EXAMPLE_TARGET, "{'AI assistant': 'anything'}")
    assert not example_check(EXAMPLE_TARGET, "{'AI assistant': 'two\nlines'}")


def test_real_data_shape(data_dir):
    ev = FollowBenchEvaluator()
    data = ev.load(str(data_dir / "followbench"))
    counts = {c: sum(it.category == c for it in data.items) for c in ev.categories}
    assert counts == {"content": 125, "situation": 110, "style": 150, "format": 150, "example": 200, "mixed": 85}
    methods = [it.method for it in data.items]
    assert methods.count("llm") == 470 and methods.count("source_rule") == 140 and methods.count("format_rule") == 10


def test_bad_data_file_is_one_line(tmp_path):
    (tmp_path / "content_constraints.json").write_text(json.dumps([{"example_id": 1, "level": 0}]))
    proc = run_spar("score", "followbench", "--responses", str(tmp_path / "r.jsonl"), "--data", str(tmp_path),
                    "--bench", "followbench.categories=content", "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "content_constraints.json:1:" in proc.stderr and "'instruction'" in proc.stderr
