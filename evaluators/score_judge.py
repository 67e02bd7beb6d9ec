"""The additive 5-point LLM-as-a-Judge of Self-Rewarding LMs (Yuan et al. 2024, Figure 2), byte-exact, and its score
parsers. Meta-Rewarding's judge uses the same prompt; LLMBar's `judge_prompt: score5` scores those judges with it.

A judgment's score is the `Score: <points>` it concludes with (0-5); a judgment without one is dropped and counted
by the caller, never scored 0. The lenient parser is for small models and is not the papers'.
"""

from __future__ import annotations

import re
from typing import Sequence

#: The LLM-as-a-Judge prompt of Self-Rewarding LMs (Yuan et al. 2024, Figure 2), byte-exact; Meta-Rewarding's judge
#: uses it too. Placeholders <INSTRUCTION_HERE> and <RESPONSE_HERE> (filled in one pass by `score_judge_prompt`).
SCORE_JUDGE_TEMPLATE = (
    "Review the user's question and the corresponding response using the additive 5-point\n"
    "scoring system described below. Points are accumulated based on the satisfaction of each\n"
    "criterion:\n"
    "- Add 1 point if the response is relevant and provides some information related to\n"
    "the user's inquiry, even if it is incomplete or contains some irrelevant content.\n"
    "- Add another point if the response addresses a substantial portion of the user's question,\n"
    "but does not completely resolve the query or provide a direct answer.\n"
    "- Award a third point if the response answers the basic elements of the user's question in a\n"
    "useful way, regardless of whether it seems to have been written by an AI Assistant or if it\n"
    "has elements typically found in blogs or search results.\n"
    "- Grant a fourth point if the response is clearly written from an AI Assistant's perspective,\n"
    "addressing the user's question directly and comprehensively, and is well-organized and\n"
    "helpful, even if there is slight room for improvement in clarity, conciseness or focus.\n"
    "- Bestow a fifth point for a response that is impeccably tailored to the user's question\n"
    "by an AI Assistant, without extraneous information, reflecting expert knowledge, and\n"
    "demonstrating a high-quality, engaging, and insightful answer.\n"
    "User: <INSTRUCTION_HERE>\n"
    "<response><RESPONSE_HERE></response>\n"
    "After examining the user's instruction and the response:\n"
    "- Briefly justify your total score, up to 100 words.\n"
    "- Conclude with the score using the format: \"Score: <total points>\"\n"
    "Remember to assess from the AI Assistant perspective, utilizing web search knowledge as\n"
    "necessary. To evaluate the response in alignment with this additive scoring model, we'll\n"
    "systematically attribute points based on the outlined criteria."
)
_SCORE_SLOTS = re.compile(r"<INSTRUCTION_HERE>|<RESPONSE_HERE>")
_SCORE = re.compile(r"Score:\s*([0-9.]+)")
_SCORE_LOOSE = (re.compile(r"score[*_\s]*(?:is|of|:|=)?[*_\s]*([0-5](?:\.[0-9]+)?)(?![0-9])", re.IGNORECASE),
                re.compile(r"(?<![0-9.])([0-5](?:\.[0-9]+)?)\s*(?:/|out of)\s*5(?![0-9])", re.IGNORECASE),
                re.compile(r"(?<![0-9.])([0-5](?:\.[0-9]+)?)\s*points?\b", re.IGNORECASE))
SCORE_RANGE = (0.0, 5.0)


def score_judge_prompt(instruction: str, response: str) -> str:
    """The 5-point judge prompt for one response (placeholders filled in one pass: text in the instruction that
    looks like a placeholder is left alone)."""
    values = {"<INSTRUCTION_HERE>": instruction, "<RESPONSE_HERE>": response}
    return _SCORE_SLOTS.sub(lambda m: values[m.group(0)], SCORE_JUDGE_TEMPLATE)


def _in_range(value: str) -> float | None:
    try:
        score = float(value)
    except ValueError:
        return None
    return score if SCORE_RANGE[0] <= score <= SCORE_RANGE[1] else None


def parse_score_strict(text: str) -> float | None:
    """The usual Self-Rewarding rule: `Score:\\s*([0-9.]+)`, the last occurrence (the prompt asks to conclude with
    it); None when absent, not a number, or outside 0-5 (dropped, never scored 0)."""
    found = _SCORE.findall(text)
    return _in_range(found[-1].rstrip(".")) if found else None


def parse_score_lenient(text: str) -> float | None:
    """For small models (not the papers'): the strict rule, else the last 'score (is|of|:) k', 'k/5' or 'k out of
    5', or 'k points' with k in 0-5; None when nothing matches."""
    strict = parse_score_strict(text)
    if strict is not None:
        return strict
    for pattern in _SCORE_LOOSE:
        found = pattern.findall(text)
        if found:
            return _in_range(found[-1])
    return None


SCORE_PARSERS = {"strict": parse_score_strict, "lenient": parse_score_lenient}


def get_score_parser(name: str):
    """The score parser by name; the SPaR verdict parser names map onto it (official/strict -> strict)."""
    return SCORE_PARSERS["lenient" if name == "lenient" else "strict"]


def mean_score(texts: Sequence[str], parser) -> tuple[float | None, list[float | None]]:
    """The mean of the parseable scores of `texts` (None when none parses) and each text's score."""
    scores = [parser(t) for t in texts]
    valid = [s for s in scores if s is not None]
    return (sum(valid) / len(valid) if valid else None), scores
