"""LLMBar as its official code defines it: the five subsets, a pair of the data, and the verdict rule of each
official strategy (how princeton-nlp/LLMBar reads an evaluator's output). Pure rules: no files, no options; the
benchmark (`evaluators.llmbar`) and the readers of judgments made elsewhere (`evaluators.llmbar.readers`) apply them.
`Judgment` (one judged slot of a pair) lives here because the rules read it; both of those build it.

Verdict parsers for pairwise judgments (option `pairwise_parser`), each the exact rule of the official code
(princeton-nlp/LLMBar `LLMEvaluator/evaluate.py::completion_with_parsing` with the `parsing` regexes of
`LLMEvaluator/evaluators/config/<model>/<strategy>.json`: the stripped completion is searched with the "1" regex,
then the "2" regex; the first that matches anywhere wins, else no verdict):
- vanilla: '(?:^|\\n) ?Output \\(a\\)' then '... \\(b\\)' (Output (a) at the start of the text or of a line).
  Official strategies Vanilla, Vanilla_NoRules, Vanilla_1shot, Vanilla_2shot, Metrics, Reference,
  Metrics_Reference, and PaLM2's CoT (its config parses CoT with this rule).
- cot: 'Output \\(a\\) is better.' then 'Output \\(b\\) is better.' ('.' is any character; (a) wins when both
  occur, wherever they are). Strategy CoT.
- swap / swap_cot: Swap and Synthesize (`annotate`, SwapBased). Each order is first read with the cot rule; when
  the two orders name different outputs, the synthesis-stage completion of each order decides, read with the
  vanilla rule (swap) or the cot rule (swap_cot). When the orders agree, or either has no verdict, the first stage
  stands. Strategies Swap and Swap_CoT.
- rating: Rating*: each output is scored alone; `int(score_1)`, `int(score_2)` (Python's int: surrounding
  whitespace allowed); original order picks 1 if score_1 > score_2 else 2, swapped order picks 2 if score_2 >
  score_1 else 1 (a tie is a positional disagreement); a score that is not an integer gives 1 and 2. Only for
  `llmbar-result` files.
- recorded: the `winner` the official evaluator stored in its result.json (no re-parsing; `llmbar-result` only).
- auto (default): vanilla for spar's own pairwise generation and for spar's JSONL; for `llmbar-result`, the
  official parser of the evaluator named by the file's place in LLMBar's layout
  (`.../evaluators/<model>/<strategy>/result.json`, e.g. GPT-4/CoT -> cot).
Scoring a CoT file with the vanilla rule misreads most CoT answers ("Output (a) and Output (b) both ... Therefore,
Output (b) is better." reads as (a)); hence `auto`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -- the official data and strategies ------------------------------------------------------------------------------

SUBSETS = ("Natural", "Neighbor", "GPTInst", "GPTOut", "Manual")
ADVERSARIAL = SUBSETS[1:]
PAIRWISE_PARSERS = ("auto", "vanilla", "cot", "swap", "swap_cot", "rating", "recorded")
#: the parser of each official strategy (the `parsing` of its config's last module, and Swap's two stages)
OFFICIAL_PARSERS = {
    "Vanilla": "vanilla", "Vanilla_NoRules": "vanilla", "Vanilla_1shot": "vanilla", "Vanilla_2shot": "vanilla",
    "Metrics": "vanilla", "Reference": "vanilla", "Metrics_Reference": "vanilla", "CoT": "cot", "Swap": "swap",
    "Swap_CoT": "swap_cot", "Rating": "rating", "Rating_NoRules": "rating", "Rating_Metrics": "rating",
    "Rating_Reference": "rating", "Rating_Metrics_Reference": "rating",
}
#: official configs whose parsing differs from their strategy's (config/PaLM2/CoT.json uses the Vanilla regexes)
OFFICIAL_EXCEPTIONS = {"PaLM2/CoT": "vanilla"}


@dataclass(frozen=True)
class Pair:
    subset: str
    index: int
    input: str
    output_1: str
    output_2: str
    label: int  # 1 or 2: the output that follows the instruction


# -- the official parsing rules ------------------------------------------------------------------------------------

VANILLA_RULE = ((1, re.compile(r"(?:^|\n) ?Output \(a\)")), (2, re.compile(r"(?:^|\n) ?Output \(b\)")))
COT_RULE = ((1, re.compile(r"Output \(a\) is better.")), (2, re.compile(r"Output \(b\) is better.")))


def _first_rule(rule: tuple, text: str) -> int | None:
    text = text.strip()
    for value, exp in rule:
        if exp.search(text):
            return value
    return None


def parse_vanilla(text: str) -> int | None:
    """Official Vanilla rule: 'Output (a)' at the start of the text or of a line (one space allowed) -> 1, else the
    same for 'Output (b)' -> 2, else None."""
    return _first_rule(VANILLA_RULE, text)


def parse_cot(text: str) -> int | None:
    """Official CoT rule: 'Output (a) is better.' anywhere -> 1, else 'Output (b) is better.' -> 2, else None."""
    return _first_rule(COT_RULE, text)


parse_choice = parse_vanilla  # the name spar used before the other rules were added


def parse_rating(score_1: str, score_2: str) -> tuple[int, int]:
    """Official Rating rule: (original-order winner, swapped-order winner) in original ids."""
    try:
        s1, s2 = int(score_1), int(score_2)
    except (TypeError, ValueError):
        return 1, 2
    return (1 if s1 > s2 else 2), (2 if s2 > s1 else 1)


def official_parser(evaluator: str) -> str | None:
    """The parser of an official evaluator name ("GPT-4/CoT"), or None when the strategy is unknown."""
    model_strategy = "/".join(evaluator.strip("/").split("/")[-2:])
    if model_strategy in OFFICIAL_EXCEPTIONS:
        return OFFICIAL_EXCEPTIONS[model_strategy]
    return OFFICIAL_PARSERS.get(evaluator.rsplit("/", 1)[-1])


def _flip(choice: int | None) -> int | None:
    return {1: 2, 2: 1}.get(choice) if choice is not None else None  # type: ignore[return-value]


# -- a pair's two judgments, as each official strategy reads them --------------------------------------------------

@dataclass(frozen=True)
class Judgment:
    """One judged slot of a pair (an output, pointwise; an order, pairwise) as read from a file: judge texts, or an
    already parsed verdict (`given`; pointwise 1/0, pairwise the position shown, 1 = Output (a); None = no verdict),
    the Swap synthesis-stage text, and the winner an official result.json recorded (original ids)."""

    texts: tuple[str, ...] = ()
    verdict: int | None = None
    given: bool = False
    synthesis: str | None = None
    recorded: int | None = None
    has_recorded: bool = False
    line: int | None = None


def _swap_first_stage(o: Judgment, s: Judgment) -> tuple[int | None, int | None]:
    a = o.verdict if o.given else (parse_cot(o.texts[0]) if o.texts else None)
    b = _flip(s.verdict if s.given else (parse_cot(s.texts[0]) if s.texts else None))
    return a, b


def needs_synthesis(parser: str, o: Judgment, s: Judgment) -> bool:
    """Whether a Swap / Swap+CoT judgment goes to its synthesis stage: the two orders' first-stage answers disagree
    (one says output 1, the other output 2), as the official strategy decides."""
    if parser not in ("swap", "swap_cot") or o.given or s.given:
        return False
    return {*_swap_first_stage(o, s)} == {1, 2}


def pairwise_choices(parser: str, o: Judgment, s: Judgment) -> tuple[int | None, int | None, dict]:
    """(original-order choice, swapped-order choice) in original output ids (1/2, None = no verdict), as the
    official strategy reads them, and what the sample should record about the stages."""
    if parser == "recorded":
        return o.recorded, s.recorded, {}
    if parser == "rating":
        a, b = parse_rating(o.texts[0], s.texts[0])
        return a, b, {"scores": [o.texts[0], s.texts[0]]}
    if parser in ("swap", "swap_cot"):
        a, b = _swap_first_stage(o, s)
        if not needs_synthesis(parser, o, s):
            return a, b, {"stage": "first"}
        rule = parse_vanilla if parser == "swap" else parse_cot
        info = {"stage": "synthesis", "first_stage": [a, b], "synthesis": [o.synthesis, s.synthesis]}
        return (rule(o.synthesis) if o.synthesis is not None else None,
                _flip(rule(s.synthesis) if s.synthesis is not None else None), info)
    rule = parse_cot if parser == "cot" else parse_vanilla
    a = o.verdict if o.given else (rule(o.texts[0]) if o.texts else None)
    b = _flip(s.verdict if s.given else (rule(s.texts[0]) if s.texts else None))
    return a, b, {}
