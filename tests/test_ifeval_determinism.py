"""The same responses give the same verdicts every time, in one process or two."""

from __future__ import annotations

import json
import subprocess
import sys

from evaluators.ifeval import IFEvalEvaluator, IFEvalItem

# Keys 1122/1129 of IFEval ask for the "letter" '#' and '!': the official checker then draws a random letter.
RANDOM_LETTER = IFEvalItem(1122, "p", ("keywords:letter_frequency",),
                           ({"letter": "#", "let_frequency": 4, "let_relation": "at least"},))
LANGUAGE = IFEvalItem(7, "p", ("language:response_language", "change_case:english_lowercase"),
                      ({"language": "en"}, {}))
TEXT = "some text with a few letters in it: abcdefghijklmnopqrstuvwxyz, and more words here to weigh the counts"


def test_one_response_scored_fifty_times_is_identical():
    evaluator = IFEvalEvaluator()
    first = [evaluator.score_one(it, TEXT) for it in (RANDOM_LETTER, LANGUAGE)]
    for _ in range(49):
        assert [evaluator.score_one(it, TEXT) for it in (RANDOM_LETTER, LANGUAGE)] == first


def test_global_random_state_is_left_alone():
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    IFEvalEvaluator().score_one(RANDOM_LETTER, TEXT)
    assert random.random() == expected


def test_two_processes_agree():
    code = ("import json,random,sys; random.seed(int(sys.argv[1]));"
            "from evaluators.ifeval import IFEvalEvaluator, IFEvalItem;"
            "it=IFEvalItem(1122,'p',('keywords:letter_frequency',),({'letter':'#','let_frequency':4,"
            "'let_relation':'at least'},));"
            f"print(json.dumps(IFEvalEvaluator().score_one(it, {TEXT!r})))")
    outs = [subprocess.run([sys.executable, "-c", code, str(seed)], capture_output=True, text=True, check=True).stdout
            for seed in (1, 2)]
    assert outs[0] == outs[1]
    assert json.loads(outs[0])["key"] == 1122


def test_non_letter_is_counted_as_given_like_the_official_checker():
    evaluator = IFEvalEvaluator()
    assert evaluator.score_one(RANDOM_LETTER, "# a\n# b\n# c\n# d")["follow_instruction_list_strict"] == [True]
    assert evaluator.score_one(RANDOM_LETTER, "# a\n# b\n# c")["follow_instruction_list_strict"] == [False]
