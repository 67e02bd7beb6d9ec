"""The shared SPaR judge: prompts, verdict parsers, voting and refinement parsing."""

from __future__ import annotations

import hashlib

import pytest

from evaluators.judging import (JUDGE_TEMPLATE, REFINE_INSTRUCTION, REFINE_INSTRUCTION_RFT, judge_prompt,
                                majority_vote, parse_refinement, parse_verdict_official, parse_verdict_strict,
                                refine_messages)


def test_prompts_are_the_official_bytes():
    # sha256 of thu-coai/SPaR src/tasks/prompts.py::judge_template and src/tasks/science.py's refine instruction
    assert "Please act an expert" in JUDGE_TEMPLATE and "weather the Output" in JUDGE_TEMPLATE
    assert "Prompt: \u201c{}\u201d" in JUDGE_TEMPLATE
    assert hashlib.sha256(JUDGE_TEMPLATE.encode()).hexdigest()[:16] == "347b9d596f308369"
    assert REFINE_INSTRUCTION.endswith("Final Refined Output: [[start]] xxx [[end]]")
    assert "\n\n\nPlease carefully refine the Output to meet all the constraints in the Prompt. \n" in REFINE_INSTRUCTION
    assert "\n    Please format like this:\n    Reflection" in REFINE_INSTRUCTION_RFT
    assert REFINE_INSTRUCTION_RFT.replace("\n    ", "\n") == REFINE_INSTRUCTION


def test_refine_chat_has_three_turns():
    msgs = refine_messages("P", "R", "C")
    assert [m.role for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0].content == judge_prompt("P", "R") and msgs[1].content == "C"


@pytest.mark.parametrize("text,label", [
    ("Step-by-step verification: ok\nFinal Judgement (if the Output accurately follows the Prompt): Yes", 1),
    ("Final Judgement: No", 0),
    ("Final Judgement: Not quite; Yes in part", 0),     # 'Not' is a No (substring rule), and it comes first
    ("Final Judgement: None of the constraints fail", 0),
    ("Final Judgement: Yes, though No one would say so", 1),
    ("Final judgement: Yes", None),                       # case matters: no 'Final Judgement'
    ("I think Yes", None),
    ("Final Judgement: maybe", None),
    ("Final Judgement: perhaps\nFinal Judgement: Yes", None),  # only the text up to the second marker counts
    ("No. Final Judgement: Yes", 1),
    ("", None),
])
def test_official_parser(text, label):
    assert parse_verdict_official(text) == label


@pytest.mark.parametrize("text,label", [
    ("Final Judgement (if the Output accurately follows the Prompt): Yes", 1),
    ("Final Judgement: **No**", 0),
    ("Final Judgement: Not really", None),
    ("Final Judgement: None", None),
    ("Final Judgement: yes", 1),
    ("Final Judgement: Yes\nFinal Judgement: No", 0),  # the last verdict line decides
    ("Yes", None),
])
def test_strict_parser(text, label):
    assert parse_verdict_strict(text) == label


def test_majority_vote_counts_ties_and_invalid():
    yes, no, bad = "Final Judgement: Yes", "Final Judgement: No", "no verdict here"
    vote = majority_vote([no + " a", yes, no + " b", bad, yes + " c", no + " d"])
    assert (vote.label, vote.yes, vote.no, vote.invalid) == (0, 2, 3, 1)
    assert vote.critique == no + " a" and vote.value == pytest.approx(0.4) and not vote.unanimous
    tie = majority_vote([yes, no, bad])
    assert tie.label is None and tie.tie and tie.critique is None and tie.value == 0.5
    empty = majority_vote([bad, bad])
    assert empty.label is None and empty.value is None and empty.invalid == 2
    assert majority_vote([yes, yes]).unanimous


@pytest.mark.parametrize("text,expected,strict", [
    ("Reflection: x\nFinal Refined Output: [[start]] fixed text [[end]]", "fixed text", "fixed text"),
    ("[[start]]a[[end]] and [[start]]b[[end]]", "a", "a"),
    ("Final Refined Output: [[start]] no end marker", "no end marker", None),
    ("no markers at all", None, None),
    ("[[start]]   [[end]]", None, None),
])
def test_refinement_parsing(text, expected, strict):
    assert parse_refinement(text) == expected
    assert parse_refinement(text, require_end=True) == strict


def test_lenient_parsers_for_small_models():
    from evaluators.judging import get_parser, get_refine_parser, parse_verdict_lenient, parse_refinement_lenient

    assert parse_verdict_lenient("Final Judgement: Not quite, Yes") == 0  # the official rule when the phrase is there
    assert parse_verdict_lenient("No.") == 0
    assert parse_verdict_lenient("It says yes at first, but in the end: no") == 0  # the last Yes/No word
    assert parse_verdict_lenient("Nothing here; Noah knows") is None  # whole words only
    assert get_parser("lenient") is parse_verdict_lenient
    assert parse_refinement_lenient("x [[start]] a [[end]] y") == "a"
    assert parse_refinement_lenient("Reflection: ok\nFinal Refined Output: the new text") == "the new text"
    assert parse_refinement_lenient("just a reply") == "just a reply"
    assert parse_refinement_lenient("   ") is None
    assert get_refine_parser("official")("no markers") is None


@pytest.mark.parametrize("text, official, lenient", [
    ("[[start]] [[start]] X [[end]]", "", ""),  # doubled [[start]]: the official split gives the empty text
    ("the new text [[end]]", None, "the new text"),  # a lone [[end]]: never kept by the lenient reading
    ("Final Refined Output: fixed [[end]] trailing", None, "fixed"),
    ("[[start]] keep [[end]] here [[end]]", "keep", "keep"),
    ("[[start]] a [[end]] b [[start]] c [[end]]", "a", "a"),
    ("[[start]] use [[start]]-like markers? no [[end]]", "use", "use"),  # a marker inside the text ends it
    ("text mentioning [[end]] then [[start]] real [[end]]", "real", "real"),
    ("[[start]] no end", "no end", "no end"),
    ("Refined Output: [[Start]] other case [[End]]", None, "other case"),  # markers written another way
    ("[[ START ]] spaced [[END]] rest", None, "spaced"),
])
def test_one_refinement_rule_everywhere(text, official, lenient):
    """The refinement benchmark, prompt evolution and the tree search read refinements with one rule (the official
    `unwrap_refine_cot`) and one lenient variant; no result ever holds a marker."""
    from evaluators.judging import parse_refinement_lenient, unwrap_refine_cot, unwrap_refine_lenient
    from training.tree_search import REFINE_UNWRAPPERS

    assert unwrap_refine_cot(text) == official == REFINE_UNWRAPPERS["official"](text)
    assert unwrap_refine_lenient(text) == lenient
    assert REFINE_UNWRAPPERS["lenient"](text) == lenient
    assert parse_refinement(text) == (official or None)
    assert parse_refinement_lenient(text) == (lenient or None)
    for out in (official, lenient):
        assert out is None or ("[[start]]" not in out and "[[end]]" not in out)


def test_refinement_benchmark_and_evolution_use_the_official_rule():
    from evaluators import refinement
    from training import evolve

    assert evolve.parse_refinement is parse_refinement and refinement.parse_refinement is parse_refinement
    assert parse_refinement("[[start]] [[start]] X [[end]]") is None  # was "[[start]] X" before one rule
