"""Hand-built IFEval cases for all 25 instruction types, strict and loose, checked against hand-written verdicts
and against lm-eval's own IFEval `process_results` (a port of the official evaluation_lib)."""

from __future__ import annotations

import pytest

from evaluators.base import LoadedData
from evaluators.ifeval import IFEvalEvaluator, IFEvalItem, compute_metrics, loose_variants

CAPS = "THIS IS A SIMPLE ENGLISH SENTENCE WRITTEN ENTIRELY IN CAPITAL LETTERS FOR THE TEST."
LOWER = "this is a simple english sentence written entirely in lowercase letters for the test."

# (instruction id, kwargs, response, expected strict, expected loose)
CASES = [
    ("keywords:existence", {"keywords": ["apple", "pear"]}, "I like apple and pear.", True, True),
    ("keywords:existence", {"keywords": ["apple", "pear"]}, "I like apple.", False, False),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "at least"}, "Cat and cat.", True, True),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "at least"}, "One cat.", False, False),
    ("keywords:forbidden_words", {"forbidden_words": ["red"]}, "The sky is blue.", True, True),
    ("keywords:forbidden_words", {"forbidden_words": ["red"]}, "Red sky.", False, False),
    ("keywords:forbidden_words", {"forbidden_words": ["red"]}, "Red herring:\nThe sky is blue.", False, True),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"}, "zoo", True, True),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"}, "buzz", False, False),
    ("language:response_language", {"language": "fr"},
     "Bonjour, je suis très content de vous voir aujourd'hui avec toute la famille.", True, True),
    ("language:response_language", {"language": "fr"},
     "Hello, I am very happy to see you today with the whole family.", False, False),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"}, "One sentence only.", True, True),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"},
     "It rains. It pours. It floods.", False, False),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "Para one.\n***\nPara two.", True, True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "Only one paragraph.", False, False),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "Two words", True, True),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "one two three four five six",
     False, False),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "trains"},
     "Intro.\n\nTrains are fast.", True, True),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "trains"},
     "Intro.\n\nCars are fast.", False, False),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Meet at [place] on [date].", True, True),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Meet at [place].", False, False),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi there.\nP.S. see you soon", True, True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi there.", False, False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n* b", True, True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n* b\n* c", False, True),  # loose: drop a line
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n* b\n* c\n* d", False, True),  # drop both
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n* b\n* c\n* d\n* e", False, False),
    ("detectable_format:constrained_response", {}, "My answer is yes.", True, True),
    ("detectable_format:constrained_response", {}, "Yes.", False, False),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and *two*", True, True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* only", False, False),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nfoo\nSection 2\nbar", True, True),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2}, "Section 1\nfoo",
     False, False),
    ("detectable_format:json_format", {}, '{"a": 1}', True, True),
    ("detectable_format:json_format", {}, "```json\n{\"a\": 1}\n```", True, True),
    ("detectable_format:json_format", {}, 'Here it is:\n{"a": 1}', False, True),
    ("detectable_format:json_format", {}, "a: 1", False, False),
    ("detectable_format:title", {}, "<<My Title>>\nSome text.", True, True),
    ("detectable_format:title", {}, "My Title\nSome text.", False, False),
    ("combination:two_responses", {}, "Answer one.\n******\nAnswer two.", True, True),
    ("combination:two_responses", {}, "Same.\n******\nSame.", False, False),
    ("combination:two_responses", {}, "Only one answer.", False, False),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Name a colour."}, "Name a colour. Red.", True, True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Name a colour."}, "Red.", False, False),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Hi. Any other questions?", True, True),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Any other questions? Bye.", False, False),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Hi. Any other questions?\n(end)", False, True),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "NASA and ESA rock.", True, True),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"}, "Nasa rocks.",
     False, False),
    ("change_case:english_capital", {}, CAPS, True, True),
    ("change_case:english_capital", {}, CAPS.capitalize(), False, False),
    ("change_case:english_lowercase", {}, LOWER, True, True),
    ("change_case:english_lowercase", {}, LOWER.capitalize(), False, False),
    ("change_case:english_lowercase", {}, "Sure!\n" + LOWER, False, True),
    ("punctuation:no_comma", {}, "No commas here.", True, True),
    ("punctuation:no_comma", {}, "Yes, commas.", False, False),
    ("punctuation:no_comma", {}, "Sure, here it is:\nNo commas here.", False, True),
    ("startend:quotation", {}, '"Dogs are loyal."', True, True),
    ("startend:quotation", {}, "Dogs are loyal.", False, False),
    ("startend:quotation", {}, '*"Dogs are loyal."*', False, True),
]


def _item(i: int, inst: str, kwargs: dict) -> IFEvalItem:
    return IFEvalItem(key=100 + i, prompt=f"prompt {i}", instruction_id_list=(inst,), kwargs=(kwargs,))


@pytest.fixture(scope="module")
def evaluator() -> IFEvalEvaluator:
    return IFEvalEvaluator()


def test_cases_cover_every_instruction_type(evaluator):
    assert {c[0] for c in CASES} == set(evaluator.registry)
    assert len(evaluator.registry) == 25


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_verdicts(evaluator, case):
    inst, kwargs, response, strict, loose = CASES[case]
    sample = evaluator.score_one(_item(case, inst, kwargs), response)
    assert sample["follow_instruction_list_strict"] == [strict]
    assert sample["follow_instruction_list_loose"] == [loose]


def test_verdicts_match_lm_eval_process_results(evaluator):
    from lm_eval.tasks.ifeval.utils import process_results

    for i, (inst, kwargs, response, _, _) in enumerate(CASES):
        item = _item(i, inst, kwargs)
        ours = evaluator.score_one(item, response)
        doc = {"key": item.key, "prompt": item.prompt, "instruction_id_list": [inst], "kwargs": [kwargs]}
        theirs = process_results(doc, [response])
        assert ours["follow_instruction_list_strict"] == theirs["inst_level_strict_acc"], (inst, response)
        assert ours["follow_instruction_list_loose"] == theirs["inst_level_loose_acc"], (inst, response)


@pytest.mark.parametrize("response", ["", "   \n  "])
def test_empty_response_fails_every_instruction(evaluator, response):
    item = IFEvalItem(1, "p", ("punctuation:no_comma", "keywords:forbidden_words"), ({}, {"forbidden_words": ["x"]}))
    sample = evaluator.score_one(item, response)
    assert sample["follow_instruction_list_strict"] == [False, False]
    assert sample["follow_instruction_list_loose"] == [False, False]


def test_loose_variants_follow_the_official_order():
    assert loose_variants("*a*\nb\n*c*") == ["*a*\nb\n*c*", "a\nb\nc", "b\n*c*", "*a*\nb", "b", "b\nc", "a\nb"]
    assert loose_variants("single") == ["single"]


def test_metrics_arithmetic():
    samples = [
        {"response": "x", "instruction_id_list": ["a", "b"], "follow_instruction_list_strict": [True, False],
         "follow_instruction_list_loose": [True, True], "follow_all_instructions_strict": False,
         "follow_all_instructions_loose": True},
        {"response": "", "instruction_id_list": ["a"], "follow_instruction_list_strict": [False],
         "follow_instruction_list_loose": [False], "follow_all_instructions_strict": False,
         "follow_all_instructions_loose": False},
    ]
    m = compute_metrics(samples)
    assert m["prompt_level_strict_acc"] == 0.0
    assert m["inst_level_strict_acc"] == pytest.approx(1 / 3)
    assert m["prompt_level_loose_acc"] == 0.5
    assert m["inst_level_loose_acc"] == pytest.approx(2 / 3)
    assert m["average"] == pytest.approx((0 + 1 / 3 + 0.5 + 2 / 3) / 4)
    assert m["per_instruction_type"]["a"] == {"count": 2, "strict_acc": 0.5, "loose_acc": 0.5}
    assert m["counts"]["empty_responses"] == 1


def test_score_aggregates_over_prompts(evaluator):
    items = [_item(i, c[0], c[1]) for i, c in enumerate(CASES)]
    result = evaluator.score(LoadedData(items), [c[2] for c in CASES])
    strict = sum(c[3] for c in CASES)
    assert result.metrics["inst_level_strict_acc"] == strict / len(CASES)
    assert result.metrics["counts"]["prompts"] == len(CASES)
