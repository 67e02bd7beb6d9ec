"""The SPaR judge and refiner prompts, verdict parsing and majority voting: one place for evaluators and training.

Prompts are byte-exact copies of the official SPaR code (thu-coai/SPaR: `src/tasks/prompts.py::judge_template`,
`src/tasks/science.py::build_refine_message`), typos and curly quotes included, for parity with released
checkpoints. The RFT training records of the official code use a variant of the refine instruction with 4-space
indents (`REFINE_INSTRUCTION_RFT`); which one training uses is a recorded config choice.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from harness.core.types import ChatRequest, Message, SamplingParams

JUDGE_TEMPLATE = (
    "Please act an expert in evaluating the capabilities of instruction-following. In the instruction-following "
    "task, the Output needs to honestly/precisely/closely follow the given Prompt.\n"
    "Your task is to carefully judge whether the Output to honestly/precisely/closely follows the given Prompt. If "
    "there are any constraints in the Prompt that are not satisfied by the Output, please list all the constraints "
    "that are not satisfied.\n"
    "\n"
    "Prompt: \u201c{}\u201d\n"
    "\n"
    "Output: \u201c{}\u201d\n"
    "\n"
    "Please carefully judge if each constraint is perfectly satisfied and give a final judgement weather the Output "
    "accurately follows the Prompt in the following format:\n"
    "Step-by-step verification: xxx\n"
    "Final Judgement (if the Output accurately follows the Prompt): (Yes or No)"
)

_REFINE_LINES = (
    "Please carefully refine the Output to meet all the constraints in the Prompt. ",
    "",
    "Please format like this:",
    "Reflection on how to refine the Output: xxx",
    "Final Refined Output: [[start]] xxx [[end]]",
)
_REFINE_HEAD = ("Based on your judgement, refine the Output to make sure it can honestly/precisely/closely follows "
                "the given Prompt.\n\n\n")
REFINE_INSTRUCTION = _REFINE_HEAD + "\n".join(_REFINE_LINES)
REFINE_INSTRUCTION_RFT = _REFINE_HEAD + "\n".join("    " + line if line else line for line in _REFINE_LINES)

# Official judge decoding (src/judge.py, ToT get_value): n=5 samples at T=0.7, top_p=1.0, up to 2048 tokens.
JUDGE_SAMPLING = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=2048)
REFINE_SAMPLING = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=3072)
PARSERS = ("official", "strict", "lenient")
REFINE_PARSERS = ("official", "lenient")


def judge_prompt(prompt: str, response: str) -> str:
    return JUDGE_TEMPLATE.format(prompt, response)


def judge_messages(prompt: str, response: str) -> tuple[Message, ...]:
    return (Message("user", judge_prompt(prompt, response)),)


def refine_messages(prompt: str, response: str, critique: str, rft_variant: bool = False) -> tuple[Message, ...]:
    """The 3-turn refine chat: judge prompt, the critique as the assistant's turn, then the refine instruction."""
    return (Message("user", judge_prompt(prompt, response)), Message("assistant", critique),
            Message("user", REFINE_INSTRUCTION_RFT if rft_variant else REFINE_INSTRUCTION))


def parse_verdict_official(text: str) -> int | None:
    """SPaR's `get_acc`: the text between the first and second 'Final Judgement'; the earlier of 'Yes'/'No' (as
    substrings, so 'Not' and 'None' count as No) decides; 1 = follows, 0 = does not, None = unparseable."""
    if "Final Judgement" not in text:
        return None
    tail = text.split("Final Judgement")[1]
    yes, no = tail.find("Yes"), tail.find("No")
    if yes == -1 and no == -1:
        return None
    if yes != -1 and (no == -1 or yes < no):
        return 1
    return 0


_STRICT = re.compile(r"Final Judgement[^:\n]*:\s*[*_\"'`(\[]*\s*(yes|no)\b", re.IGNORECASE)


def parse_verdict_strict(text: str) -> int | None:
    """Stricter: the last 'Final Judgement ...:' line must give the word Yes or No right after its colon
    (markdown emphasis and brackets allowed); anything else is unparseable."""
    matches = _STRICT.findall(text)
    if not matches:
        return None
    return 1 if matches[-1].lower() == "yes" else 0


_LAST_WORD = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_verdict_lenient(text: str) -> int | None:
    """For small models that do not keep the format (not the paper's): the official rule when 'Final Judgement' is
    there, else the last standalone Yes/No word anywhere in the reply."""
    if "Final Judgement" in text:
        return parse_verdict_official(text)
    words = _LAST_WORD.findall(text)
    return None if not words else int(words[-1].lower() == "yes")


def get_parser(name: str) -> Callable[[str], int | None]:
    from harness.core.errors import SparError

    if name not in PARSERS:
        raise SparError(f"judge parser {name!r}: choose from {', '.join(PARSERS)}")
    return {"official": parse_verdict_official, "strict": parse_verdict_strict, "lenient": parse_verdict_lenient}[name]


START, END = "[[start]]", "[[end]]"


def unwrap_refine_cot(text: str) -> str | None:
    """SPaR's official `unwrap_refine_cot`: `text.split('[[start]]')[1].split('[[end]]')[0].strip()`.

    None when there is no `[[start]]` (the official call raises); else the text between the first and the second
    `[[start]]`, up to the first `[[end]]` in it, stripped, possibly empty (`"[[start]] [[start]] X [[end]]"` gives
    ""). A missing `[[end]]` is accepted, as in the official code. The one rule every refinement reader uses."""
    if START not in text:
        return None
    return text.split(START)[1].split(END)[0].strip()


_START_ANY = re.compile(r"\[\[\s*start\s*\]\]", re.IGNORECASE)
_END_ANY = re.compile(r"\[\[\s*end\s*\]\]", re.IGNORECASE)


def unwrap_refine_lenient(text: str) -> str | None:
    """For small models (not the paper's): the official rule when the text has `[[start]]`; else what follows the
    last 'Refined Output:' (or the whole text), after a marker written another way (`[[Start]]`, `[[ start ]]`) if
    there is one, up to the first `[[end]]` (any case), stripped. Never keeps a marker."""
    if START in text:
        return unwrap_refine_cot(text)
    tail = _START_ANY.split(re.split(r"Refined Output\s*:", text)[-1], maxsplit=1)[-1]
    return _END_ANY.split(tail, maxsplit=1)[0].strip()


def parse_refinement(text: str, require_end: bool = False) -> str | None:
    """The refined output by the official rule (`unwrap_refine_cot`); None when there is none or it is empty.
    `require_end`: also None when the refinement has no closing `[[end]]` (stricter than the official code)."""
    refined = unwrap_refine_cot(text)
    if refined is not None and require_end and END not in text.split(START)[1]:
        return None
    return refined or None


def parse_refinement_lenient(text: str) -> str | None:
    """`unwrap_refine_lenient`, with an empty result as None."""
    return unwrap_refine_lenient(text) or None


def get_refine_parser(name: str) -> Callable[[str], str | None]:
    from harness.core.errors import SparError

    if name not in REFINE_PARSERS:
        raise SparError(f"refine parser {name!r}: choose from {', '.join(REFINE_PARSERS)}")
    return parse_refinement if name == "official" else parse_refinement_lenient


@dataclass(frozen=True)
class Vote:
    """Majority vote over n judgments. label: 1 follows / 0 does not / None tie or no valid judgment."""

    label: int | None
    yes: int
    no: int
    invalid: int
    critique: str | None  # the first judgment agreeing with the majority (the official choice)

    @property
    def value(self) -> float | None:
        """The fraction of Yes among valid judgments (a tree node's value in SPaR)."""
        return self.yes / (self.yes + self.no) if self.yes + self.no else None

    @property
    def tie(self) -> bool:
        return self.label is None

    @property
    def unanimous(self) -> bool:
        return self.label is not None and (self.yes == 0 or self.no == 0)

    def to_dict(self) -> dict:
        return dict(asdict(self), value=self.value)


def majority_vote(judgments: Sequence[str], parser: Callable[[str], int | None] = parse_verdict_official) -> Vote:
    labels = [parser(j) for j in judgments]
    yes, no = labels.count(1), labels.count(0)
    label = 1 if yes > no else 0 if no > yes else None
    critique = next((j for j, lab in zip(judgments, labels) if lab == label), None) if label is not None else None
    return Vote(label, yes, no, labels.count(None), critique)


@dataclass(frozen=True)
class JudgeConfig:
    """How a judge is asked: votes per item (n), decoding, and the verdict parser."""

    votes: int = 1
    sampling: SamplingParams = SamplingParams(temperature=0.0, max_new_tokens=1024)
    parser: str = "official"
    seed: int = 0

    def request(self, messages: tuple[Message, ...]) -> ChatRequest:
        return ChatRequest(messages, self.sampling, seed=self.seed, n=self.votes)

    def describe(self) -> dict:
        return {"votes": self.votes, "sampling": self.sampling.to_dict(), "parser": self.parser, "seed": self.seed}
