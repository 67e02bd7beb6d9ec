"""FollowBench's rule-scored items, re-implemented from the semantics of the official
`code/rule_based_evaluation.py` (YJiangcm/FollowBench @ 6278f4c). Each check returns one verdict for all of an
item's constraints (the official code counts a rule-scored item as fully satisfied or not at all).

The helpers reproduce the official text handling exactly, quirks included: sentences are the non-empty pieces of
`re.split('[.!?]')` (so a trailing space after the last period counts as a sentence), words are `str.split()` or
`split(' ')` as the official check uses, and word matches are case-sensitive.
"""

from __future__ import annotations

import ast
import re
import string
from typing import Callable

RULE_SOURCES = frozenset({"E2E", "WIKIEVENTS", "CONLL2003", "text_editing", "cnn_dailymail", "xsum", "samsum",
                          "gigaword", "arxiv", "BBH_logical", "BBH_time", "self_made_space", "gsm_8k"})
RULE_FORMAT_IDS = frozenset({22, 30})  # format items with their own rule checks


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"[.!?]", text) if s]


def has_word(text: str, word: str) -> bool:
    return re.search(r"\b" + re.escape(word) + r"\b", text) is not None


def nth_sentence_has(text: str, n: int, word: str) -> bool:
    parts = sentences(text)
    return len(parts) >= n and has_word(parts[n - 1], word)


def space_words(text: str) -> int:
    return len(text.split(" "))


def _cumulative(*checks: Callable[[str], bool]) -> Callable[[str, str, int], bool]:
    """Level k of a source adds the k-th check to those of the levels below it."""
    return lambda gen, target, level: all(check(gen) for check in checks[:level])


def _last_match(pattern: str) -> Callable[[str, str, int], bool]:
    def check(gen: str, target: str, level: int) -> bool:
        found = re.findall(pattern, gen)
        return bool(found) and found[-1] == target
    return check


_PRESENT_PERFECT = re.compile(r"\b(has|have)\s+\w+")

SOURCE_CHECKS: dict[str, Callable[[str, str, int], bool]] = {
    "E2E": lambda gen, target, level: gen == target,
    "text_editing": lambda gen, target, level: gen == target,
    "WIKIEVENTS": lambda gen, target, level: all(line in target.split("\n") for line in gen.split("\n")),
    "CONLL2003": lambda gen, target, level: gen in ast.literal_eval(target),
    "self_made_space": lambda gen, target, level: target in gen,
    "BBH_logical": _last_match(r"\([A-Z]\)"),
    "BBH_time": _last_match(r"\d{2}/\d{2}/\d{4}"),
    "gsm_8k": _last_match(r"\$\d+"),
    "cnn_dailymail": _cumulative(
        lambda g: len(sentences(g)) == 3,
        lambda g: all(len(s.split()) < 15 for s in sentences(g)),
        lambda g: nth_sentence_has(g, 1, "Potter") and nth_sentence_has(g, 2, "actor") and nth_sentence_has(g, 3, "films"),
        lambda g: not nth_sentence_has(g, 2, "lavish"),
        lambda g: len(sentences(g)) >= 3 and bool(_PRESENT_PERFECT.search(sentences(g)[2])),
    ),
    "xsum": _cumulative(
        lambda g: len(sentences(g)) == 1,
        lambda g: space_words(g) < 20,
        lambda g: not has_word(g, "Newton Stewart"),
        lambda g: re.search(r"\b(am|is|are)\s+\w+ing\b", g) is not None,
        lambda g: has_word(g, "operation"),
    ),
    "samsum": _cumulative(
        lambda g: len(sentences(g)) == 1,
        lambda g: space_words(g) < 15,
        lambda g: has_word(g, "stuff"),
        lambda g: re.search(r"procrast", g, re.IGNORECASE) is None,
        lambda g: sum(ch in string.punctuation for ch in g) == 1,
    ),
    "gigaword": _cumulative(
        lambda g: space_words(g) == 8,
        lambda g: not any(ch in string.punctuation for ch in g),
        lambda g: g.islower(),
        lambda g: not has_word(g, "bus"),
        lambda g: has_word(g, "in"),
    ),
    "arxiv": _cumulative(
        lambda g: len(sentences(g)) == 1,
        lambda g: space_words(g) <= 20,
        lambda g: g[:2] == "We",
        lambda g: has_word(g, "activations"),
        lambda g: not has_word(g, "transformer"),
    ),
}


def _numbered_paragraphs(text: str) -> bool:
    return all(re.match(r"\d+\.", p.lstrip()) for p in text.split("\n\n") if p.lstrip())


def _format_22(gen: str, level: int) -> bool:
    paras = gen.split("\n\n")
    short = lambda: all(len(sentences(p)) < 3 for p in paras[:3])  # noqa: E731
    long_sentences = lambda: all(len(s.split()) > 20 for s in sentences(gen))  # noqa: E731
    if level == 5:  # the official level 5 asks for 4 paragraphs (the last one the closing line)
        return (len(paras) == 4 and short() and long_sentences() and _numbered_paragraphs(gen)
                and gen.endswith("Those are suggestions"))
    checks = [lambda: len(paras) == 3, short, long_sentences, lambda: _numbered_paragraphs(gen)]
    return all(check() for check in checks[:level])


def _format_30(gen: str, level: int) -> bool:
    parts = re.split(r"(?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?)\s", gen)
    checks = [
        lambda: "**" in gen,
        lambda: len(re.findall(r"\*\*[\d].+?:", gen)) == 5,
        lambda: all(len(s.split(".")) < 3 for s in parts if any(f"{k}." in s for k in range(1, 6))),
        lambda: all(10 <= len(s.split()) <= 15 for s in parts),
        lambda: not any(word.endswith("-ly") for s in parts for word in s.split()),
    ]
    return all(check() for check in checks[:level])


def format_check(gen: str, example_id: int, level: int) -> bool:
    return _format_22(gen, level) if example_id == 22 else _format_30(gen, level)


def example_check(target: str, gen: str) -> bool:
    """The example category: the answer must fill the target template (`{answer}` = any text on one line)."""
    template = target.replace("{instruction}\n", "")
    pattern = template.replace("{{", "{").replace("}}", "}").replace("{answer}", ".*")
    pattern = re.escape(pattern).replace("\\.\\*", ".*")
    return re.fullmatch(pattern, gen) is not None
