"""LLMBar (Zeng et al., 2024): does a judge prefer the output that follows the instruction?

Subsets: Natural and the four Adversarial ones (Neighbor, GPTInst, GPTOut, Manual); the model under test is the
judge. `load(source, limit)`: `limit` is per subset (the first `limit` pairs of each of the five).

Two protocols (option `protocol`):
- pointwise (default; how SPaR reports its refiner): each output of a pair is judged alone with the SPaR judge
  prompt; the output named by `label` should get Yes, the other No. Accuracy over the 2N judgments and F1 with
  "follows" as the positive class; ties and unparseable judgments are counted and score as wrong (never Yes).
- pairwise (the official LLMBar protocol; spar asks with its Vanilla prompt without rules): the judge picks
  Output (a) or (b), asked in both presentation orders; accuracy per order, their average (LLMBar's Acc.),
  both-correct, and positional agreement (the same underlying choice in both orders, LLMBar's `equal`: two orders
  without a verdict also count as agreeing, as in the official statistics).
Adversarial average = mean of the four adversarial subsets; overall = mean of all five (of those scored, when a
partial file is scored; the summary then says so).

Score judges (option `judge_prompt: score5`; how spar scores the Self-Rewarding / Meta-Rewarding judges): each
output is scored alone with the additive 5-point LLM-as-a-Judge prompt (Yuan et al. 2024, `evaluators.score_judge`,
`Score: <points>`; the judge's `parser` lenient reads small models' looser formats, the others the usual
`Score: <number>` rule); an output's score is the mean of its parseable judgments (unparseable ones are dropped and
counted, never scored 0). Pointwise: Yes when the score is at least `score_threshold` (default 4). Pairwise: the
two outputs' scores are compared with the official LLMBar Rating rule (original order picks output 1 unless score 2
is higher, swapped order picks output 2 unless score 1 is higher), so a tie is a positional disagreement; ties are
counted (`score_ties`). An output without a parseable score gives no verdict.

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

Files `spar score llmbar --judgments FILE` reads (`formats`; None detects: a folder or a file starting with '['
is llmbar-result, anything else jsonl):
- jsonl (spar's own): one JSON object per line with `subset` (Natural, Neighbor, GPTInst, GPTOut, Manual),
  `index` (0-based position of the pair in its subset's dataset.json), the slot — `output` 1 or 2 (pointwise:
  which output was judged) or `order` "original" or "swapped" (pairwise: "swapped" shows output_2 as Output (a)) —
  and exactly one of:
  - `judgment`: the judge's text; `judgments`: a list of texts (pointwise: votes, majority decides, at most the
    judge's `votes`; pairwise: one text per order);
  - `verdict`: an already parsed verdict. Pointwise: "Yes"/"No" (any case, surrounding spaces ignored), 1/0,
    true/false; pairwise: the output *as shown on that line's order*: "a"/"b", "(a)"/"(b)", "Output (a)"/
    "Output (b)" (any case) or 1/2 (1 = Output (a), the first shown). `null` in both = the judge gave no verdict
    (counted under no verdict, scores as wrong).
  Pairwise lines read with the swap/swap_cot parsers may add `synthesis` (the synthesis-stage completion of that
  order), required when the two orders' first-stage verdicts disagree.
- llmbar-result: the official evaluator's `result.json` (evaluate.py dumps the dataset with `results` added to each
  record): a JSON list of records `{"input", "output_1", "output_2", "label", "results": [...]}` where the last
  element of `results` holds `{"swap = False": {"completion": [text, finish_reason], "winner": "1"|"2"|null},
  "swap = True": {...}}` (winner already mapped back to original ids); Swap strategies hold the first stage then,
  when the orders disagreed, the synthesis stage (with its `prompt`); Metrics/Reference strategies put auxiliary
  `[text, finish_reason]` lists first; Rating strategies add `score_1`/`score_2` ([text, finish_reason]). Records
  are matched to the data by content (`input`, `output_1`, `output_2`; unique across LLMBar), which gives subset
  and index whatever the file's name, place or record order, and their `label` must agree with the data. The
  path may also be a folder of LLMBar's Dataset layout (every `result.json` below it; option `result_evaluator`,
  e.g. "GPT-4/CoT", picks one evaluator when the folder holds several).

Bad input is a DataError naming file:line and field (for llmbar-result, the line where the record starts): unknown
subset; index negative, not an integer, or past the subset's end; a slot other than 1/2 or original/swapped; a
second line for the same subset/index/slot; more judgments than requested; a malformed judgment/verdict; a pair
with only one of its two lines (named by the line that is there); a Swap pair lacking its synthesis stage. With
`skip_invalid` each such line is counted by reason (`metrics["excluded"]`, `counts["excluded_lines"]`) and its pair
is left out (`counts["excluded_pairs"]`; the pair's other line is counted under `same_pair`). A file with no line
for some pairs is an error unless `allow_partial`; `metrics["coverage"]` ({scored, total, partial, answered, per_subset,
outside_selection}) and `metrics["partial"]` say how much was scored. Lines for pairs that `limit` left out are
ignored (coverage.outside_selection).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from evaluators.base import Evaluator, GenerationConfig, LoadedData, ScoreResult
from evaluators.judging import Vote, get_parser, judge_messages, majority_vote
from evaluators.score_judge import get_score_parser, mean_score, score_judge_prompt
from harness.data import (DuplicateKey, LineFilter, iter_jsonl, load_hub_rows, locate, no_duplicate_keys,
                          read_json_list, require, sha256_of)
from harness.errors import DataError, SparError
from harness.options import option, options
from harness.types import ChatRequest, Message, SamplingParams

HUB_ID = "princeton-nlp/LLMBar"
LOCAL_DIR = "llmbar"
SUBSETS = ("Natural", "Neighbor", "GPTInst", "GPTOut", "Manual")
ADVERSARIAL = SUBSETS[1:]
PROTOCOLS = ("pointwise", "pairwise")
FORMATS = ("jsonl", "llmbar-result")
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

PAIRWISE_SYSTEM = ("You are a helpful assistant in evaluating the quality of the outputs for a given instruction. "
                   "Your goal is to select the best output for the given instruction.")
PAIRWISE_USER = (
    "Select the Output (a) or Output (b) that is better for the given instruction. The two outputs are generated by "
    "two different AI chatbots respectively.\n\nDo NOT provide any explanation for your choice.\nDo NOT say both / "
    "neither are good.\nYou should answer using ONLY \"Output (a)\" or \"Output (b)\". Do NOT output any other "
    "words.\n\n# Instruction:\n{input}\n\n# Output (a):\n{output_1}\n\n# Output (b):\n{output_2}\n\n# Which is "
    "better, Output (a) or Output (b)? Your response should be either \"Output (a)\" or \"Output (b)\":")
# LLMBar's decoding for API judges: greedy, 50 new tokens.
PAIRWISE_SAMPLING = SamplingParams(temperature=0.0, max_new_tokens=50)

@dataclass(frozen=True)
class Pair:
    subset: str
    index: int
    input: str
    output_1: str
    output_2: str
    label: int  # 1 or 2: the output that follows the instruction


def subset_path(root: Path, subset: str) -> Path:
    return root / ("Natural" if subset == "Natural" else f"Adversarial/{subset}") / "dataset.json"


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


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


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


def _as_judgment(value: Any) -> Judgment:
    if isinstance(value, Judgment):
        return value
    if isinstance(value, str):
        return Judgment(texts=(value,))
    return Judgment(texts=tuple(value))


@options
class LLMBarOptions:
    protocol: Literal["pointwise", "pairwise"] = option(
        "pointwise", "pointwise (SPaR's Yes/No judge prompt per output) or pairwise (official LLMBar Vanilla "
                     "prompt, both presentation orders)")
    pairwise_parser: Literal["auto", "vanilla", "cot", "swap", "swap_cot", "rating", "recorded"] = option(
        "auto", "how pairwise judgments are read, as the official LLMBar strategy does: vanilla (Vanilla, "
                "Metrics, Reference), cot (CoT), swap / swap_cot (Swap, Swap_CoT: two stages), rating, recorded "
                "(the winners in an official result.json); auto = vanilla, or for an official result.json the "
                "parser of the strategy named by its path")
    result_evaluator: str | None = option(
        None, "with --format llmbar-result and a folder: the official evaluator whose result.json files to read "
              "(e.g. GPT-4/CoT), when the folder holds several")
    judge_prompt: Literal["spar", "score5"] = option(
        "spar", "spar: SPaR's Yes/No judge prompt (pointwise) / LLMBar's Vanilla prompt (pairwise); score5: the "
                "Self-/Meta-Rewarding additive 5-point prompt per output, mapped to Yes by score_threshold "
                "(pointwise) or compared (pairwise)")
    score_threshold: float = option(4.0, "score5, pointwise: an output whose mean score is at least this is Yes",
                                    ge=0, le=5)
    score_parser: Literal["auto", "strict", "lenient"] = option(
        "auto", "score5: how a judgment's score is read: strict (`Score: k`, 0-5), lenient (small models: also "
                "'score of k', 'k/5', 'k points'), auto (lenient when the judge's parser is lenient, else strict)")


class LLMBarEvaluator(Evaluator):
    name = "llmbar"
    Options = LLMBarOptions
    scores = "judgments"
    formats = FORMATS
    headline = ("natural_acc", "adversarial_acc", "overall_acc", "natural_f1", "adversarial_f1", "overall_f1",
                "positional_agreement")
    completions_per_request = True  # the suite passes all n completions (votes) of each request

    def __init__(self, options=None, judge=None) -> None:
        super().__init__(options, judge)
        self.protocol = self.options.protocol
        self.parser = get_parser(self.judge.parser)
        self.score5 = self.options.judge_prompt == "score5"
        self.score_parser = get_score_parser(self.options.score_parser if self.options.score_parser != "auto"
                                             else self.judge.parser)

    def describe(self) -> dict:
        out: dict[str, Any] = {"protocol": self.protocol, "subsets": list(SUBSETS)}
        if self.score5:
            out.update(prompt="Self-Rewarding additive 5-point judge prompt per output", judge=self.judge.describe(),
                       score_parser=self.score_parser.__name__.removeprefix("parse_score_"),
                       score="mean of the parseable judgments' scores")
            if self.protocol == "pointwise":
                out.update(score_threshold=self.options.score_threshold, positive_class="follows")
            else:
                out.update(comparison="official LLMBar Rating rule; ties counted (score_ties)")
            return out
        if self.protocol == "pointwise":
            out.update(prompt="SPaR judge prompt", judge=self.judge.describe(), positive_class="follows")
        else:
            out.update(prompt="LLMBar Vanilla (no rules), both orders", sampling=PAIRWISE_SAMPLING.to_dict(),
                       pairwise_parser=self.options.pairwise_parser,
                       parser_for_generation="vanilla: '(?:^|\\n) ?Output \\(a\\)' then '(b)'")
        return out

    # -- data ------------------------------------------------------------------------------------------------------
    def load(self, source: str | None, limit: int | None = None) -> LoadedData:
        """The five subsets, the first `limit` pairs of each (limit is per subset)."""
        source = locate(source, HUB_ID, LOCAL_DIR)
        root = Path(source)
        pairs: list[Pair] = []
        left_out: set = set()
        sizes: dict[str, int] = {}
        provenance: dict[str, Any] = {"subsets": {}}
        for subset in SUBSETS:
            if root.is_dir():
                file = subset_path(root, subset)
                if not file.is_file():
                    raise SparError(f"{root}: no {file.relative_to(root)} (expected LLMBar's Dataset/LLMBar layout)")
                rows = read_json_list(file, "pairs")
                where: Any = file
                provenance["subsets"][subset] = {"path": str(file.resolve()), "sha256": sha256_of(file)}
            else:
                rows, provenance["subsets"][subset] = load_hub_rows(source, split="train",
                                                                     name=subset if subset == "Natural" else
                                                                     f"Adversarial_{subset}")
                where = f"{source}:{subset}"
            if not isinstance(rows, list):
                raise DataError(where, "expected a JSON list of pairs")
            sizes[subset] = len(rows)
            for i, row in enumerate(rows):
                if limit is not None and i >= limit:
                    if isinstance(row, dict):
                        left_out.add((row.get("input"), row.get("output_1"), row.get("output_2")))
                    continue
                if not isinstance(row, dict):
                    raise DataError(where, f"expected a JSON object per pair, got {type(row).__name__}", i + 1)
                label = require(row, "label", int, where, i + 1)
                if label not in (1, 2):
                    raise DataError(where, f"label must be 1 or 2, got {label}", i + 1, "label")
                pairs.append(Pair(subset, i, require(row, "input", str, where, i + 1),
                                  require(row, "output_1", str, where, i + 1),
                                  require(row, "output_2", str, where, i + 1), label))
        provenance.update(num_items=len(pairs), limit=limit, limit_applies_to="pairs per subset",
                          subset_sizes=sizes)
        data = LoadedData(pairs, provenance)
        # what `limit` left out: judgments of these pairs are ignored, not errors
        data.left_out = frozenset(left_out)  # type: ignore[attr-defined]
        return data

    # The model under test is the judge: its "requests" are judge prompts. Two per pair in both protocols.
    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]:
        if self.protocol == "pairwise" and self.options.pairwise_parser not in ("auto", "vanilla"):
            raise SparError(f"llmbar: pairwise_parser={self.options.pairwise_parser} reads imported judgments "
                            "(spar score); spar's own pairwise judge is asked with LLMBar's Vanilla prompt and read "
                            "with the vanilla rule (pairwise_parser=auto or vanilla)")
        out = []
        for p in data.items:
            if self.score5:
                out += [self.judge.request((Message("user", score_judge_prompt(p.input, p.output_1)),)),
                        self.judge.request((Message("user", score_judge_prompt(p.input, p.output_2)),))]
            elif self.protocol == "pointwise":
                out += [self.judge.request(judge_messages(p.input, p.output_1)),
                        self.judge.request(judge_messages(p.input, p.output_2))]
            else:
                for first, second in ((p.output_1, p.output_2), (p.output_2, p.output_1)):
                    user = PAIRWISE_USER.format(input=p.input, output_1=first, output_2=second)
                    out.append(ChatRequest((Message("system", PAIRWISE_SYSTEM), Message("user", user)),
                                           PAIRWISE_SAMPLING, seed=config.seed))
        return out

    # -- judgments made elsewhere ----------------------------------------------------------------------------------
    def match_outputs(self, data: LoadedData, path: str, fmt: str | None = None, allow_partial: bool = False,
                      skip_invalid: bool = False) -> tuple[LoadedData, list[Judgment]]:
        """A judgments file made elsewhere: spar's JSONL or LLMBar's result.json (see the module docstring for the
        accepted forms and the checks). Returns the pairs judged (in the data's order) and two `Judgment`s per pair
        (output 1 then 2, or original then swapped order)."""
        where = Path(path)
        if self.score5 and self.protocol == "pairwise":
            raise SparError("llmbar: judge_prompt=score5 with protocol=pairwise scores the judgments spar generates "
                            "(spar eval / spar run); score a file of per-output score judgments with "
                            "protocol=pointwise")
        if fmt is not None and fmt not in FORMATS:
            raise SparError(f"llmbar: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
        if not where.exists():
            raise SparError(f"{where}: no such file or folder")
        fmt = fmt or _detect_format(where)
        filt = LineFilter(skip_invalid)
        m = _Matcher(data, filt)
        if fmt == "jsonl":
            if where.is_dir():
                raise SparError(f"{where}: a folder; the jsonl format is one file (llmbar-result reads folders)")
            parser = self._resolved_parser(None)
            if self.protocol == "pairwise" and parser in ("rating", "recorded"):
                raise SparError(f"llmbar: pairwise_parser={parser} reads official result.json files only "
                                "(--format llmbar-result)")
            files = [where]
            self._read_jsonl(where, m, parser)
            evaluator_name = None
        else:
            if self.protocol != "pairwise":
                raise SparError(f"{where}: LLMBar result.json files hold pairwise judgments; set "
                                "llmbar.protocol=pairwise (--bench llmbar.protocol=pairwise)")
            files, evaluator_name = self._result_files(where)
            parser = self._resolved_parser(evaluator_name, files[0])
            for file in files:
                self._read_result(file, m, parser)
        m.finish(self.protocol, parser)
        pairs, outputs, cov = m.matched(self.protocol)
        _check_coverage(where, cov, m, allow_partial)
        files_info = [{"path": str(f.resolve()), "sha256": sha256_of(f)} for f in files]
        judgments_info: dict[str, Any] = {"format": fmt, "files": files_info}
        if len(files_info) == 1:
            judgments_info.update(files_info[0])
        if self.protocol == "pairwise":
            judgments_info["pairwise_parser"] = parser
        if evaluator_name:
            judgments_info["official_evaluator"] = evaluator_name
        source = dict(data.source, judgments=judgments_info, num_items=len(pairs), coverage=cov,
                      excluded=dict(filt.counts), excluded_lines=sum(filt.counts.values()),
                      excluded_pairs=len(m.bad_pairs), excluded_by_subset=dict(Counter(k[0] for k in m.bad_pairs)),
                      excluded_first=dict(filt.first))
        return LoadedData(pairs, source), outputs

    def _resolved_parser(self, evaluator_name: str | None, file: Path | None = None) -> str:
        chosen = self.options.pairwise_parser
        if chosen != "auto":
            return chosen
        if file is None:
            return "vanilla"
        if evaluator_name is not None and official_parser(evaluator_name):
            return official_parser(evaluator_name)  # type: ignore[return-value]
        raise SparError(f"{file}: cannot tell which official LLMBar strategy wrote this result.json (expected "
                        ".../evaluators/<model>/<strategy>/result.json); set llmbar.pairwise_parser to vanilla, "
                        "cot, swap, swap_cot, rating or recorded")

    def _result_files(self, where: Path) -> tuple[list[Path], str | None]:
        if where.is_file():
            return [where], _evaluator_of(where)
        found = sorted(where.rglob("result.json"))
        groups: dict[str | None, list[Path]] = {}
        for f in found:
            groups.setdefault(_evaluator_of(f), []).append(f)
        wanted = self.options.result_evaluator
        if wanted is not None:
            wanted = wanted.strip("/")
            if wanted not in groups:
                known = ", ".join(sorted(str(k) for k in groups if k)) or "none"
                raise SparError(f"{where}: no result.json of evaluator {wanted!r} below this folder (found: "
                                f"{known[:300]})")
            return groups[wanted], wanted
        if not groups:
            raise SparError(f"{where}: no result.json below this folder")
        if len(groups) > 1:
            names = sorted(str(k) for k in groups)
            raise SparError(f"{where}: result.json files of {len(names)} evaluators ({', '.join(names[:6])}"
                            f"{', ...' if len(names) > 6 else ''}); pick one with llmbar.result_evaluator")
        name = next(iter(groups))
        return groups[name], name

    def _read_jsonl(self, path: Path, m: "_Matcher", parser: str) -> None:
        filt = m.filt
        errors: list[DataError] | None = [] if filt.skip else None
        rows = iter_jsonl(path, errors)
        filt.take(errors or (), "malformed")
        if not rows and not errors:
            raise SparError(f"{path}: no judgments in the file")
        pointwise = self.protocol == "pointwise"
        slot_key, other_key = ("output", "order") if pointwise else ("order", "output")
        slots: tuple = (1, 2) if pointwise else ("original", "swapped")
        max_votes = self.judge.votes if pointwise else 1
        swap = not pointwise and parser in ("swap", "swap_cot")
        for line, row in rows:
            pair_key = m.pair_key(path, line, row)
            if pair_key is None or pair_key == "outside":
                continue
            # the slot: output 1/2 or order original/swapped
            if slot_key not in row:
                hint = (f" (this line has '{other_key}': {'pairwise' if pointwise else 'pointwise'} judgments; set "
                        f"llmbar.protocol={'pairwise' if pointwise else 'pointwise'})" if other_key in row else "")
                m.bad("bad_slot", DataError(path, "missing" + hint, line, slot_key), pair_key, line)
                continue
            slot = row[slot_key]
            if (pointwise and (type(slot) is not int or slot not in slots)) or (not pointwise and slot not in slots):
                m.bad("bad_slot", DataError(path, f"must be one of {', '.join(map(repr, slots))}, got {slot!r}",
                                            line, slot_key), pair_key, line)
                continue
            judgment = self._read_judgment(path, line, row, max_votes, swap, m, pair_key)
            if judgment is None:
                continue
            m.add(path, pair_key, slot, judgment, f"{slot_key} {slot!r}", slot_key)

    def _read_judgment(self, path: Path, line: int, row: dict, max_votes: int, swap: bool, m: "_Matcher",
                       pair_key: tuple) -> Judgment | None:
        pointwise = self.protocol == "pointwise"
        given = [k for k in ("judgment", "judgments", "verdict") if k in row]
        if not given:
            m.bad("bad_judgment", DataError(path, "missing: give `judgment` (text), `judgments` (list of texts) or "
                                                  "`verdict` (parsed)", line, "judgment"), pair_key, line)
            return None
        if len(given) > 1:
            m.bad("bad_judgment", DataError(path, f"give only one of {', '.join(given)}", line, given[1]),
                  pair_key, line)
            return None
        synthesis = row.get("synthesis")
        if "synthesis" in row:
            if not swap:
                m.bad("bad_judgment", DataError(
                    path, "only the swap and swap_cot pairwise parsers read a synthesis stage (llmbar."
                          f"pairwise_parser={self.options.pairwise_parser}, protocol={self.protocol})", line,
                    "synthesis"), pair_key, line)
                return None
            if not isinstance(synthesis, str):
                m.bad("bad_judgment", DataError(path, f"expected str, got {type(synthesis).__name__}", line,
                                                "synthesis"), pair_key, line)
                return None
        kind = given[0]
        value = row[kind]
        if kind == "verdict":
            try:
                verdict = _pointwise_verdict(value) if pointwise else _pairwise_verdict(value)
            except ValueError as exc:
                m.bad("bad_judgment", DataError(path, str(exc), line, "verdict"), pair_key, line)
                return None
            return Judgment(verdict=verdict, given=True, synthesis=synthesis, line=line)
        if kind == "judgment":
            if not isinstance(value, str):
                m.bad("bad_judgment", DataError(path, f"expected str, got {type(value).__name__}", line, "judgment"),
                      pair_key, line)
                return None
            texts = [value]
        else:
            if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
                m.bad("bad_judgment", DataError(path, "expected a non-empty list of texts", line, "judgments"),
                      pair_key, line)
                return None
            texts = value
        if len(texts) > max_votes:
            why = (f"the judge is asked for {max_votes} vote{'s' if max_votes > 1 else ''} per output (judge "
                   f"votes={max_votes}); set the judge's votes to score more" if pointwise else
                   "pairwise takes one judgment per order")
            m.bad("too_many_votes", DataError(path, f"{len(texts)} judgments, but {why}", line, kind),
                  pair_key, line)
            return None
        return Judgment(texts=tuple(texts), synthesis=synthesis, line=line)

    def _read_result(self, path: Path, m: "_Matcher", parser: str) -> None:
        for line, rec in _read_records(path):
            if not isinstance(rec, dict):
                m.bad("bad_record", DataError(path, f"expected a JSON object per record, got {type(rec).__name__}",
                                              line), None, line)
                continue
            try:
                texts = [require(rec, k, str, path, line) for k in ("input", "output_1", "output_2")]
                label = require(rec, "label", int, path, line)
                results = require(rec, "results", list, path, line)
                if not results:
                    raise DataError(path, "empty", line, "results")
            except DataError as err:
                m.bad("bad_record", err, None, line)
                continue
            key = m.pair_by_content(path, line, tuple(texts))
            if key is None or key == "outside":
                continue
            pair = m.by_key[key]
            if label != pair.label:
                m.bad("label_mismatch", DataError(path, f"{label} but the LLMBar data says {pair.label} for "
                                                        f"{pair.subset} #{pair.index} (another LLMBar version?)",
                                                  line, "label"), key, line)
                continue
            try:
                slots = _result_slots(path, line, results, parser)
            except DataError as err:
                m.bad("bad_record", err, key, line)
                continue
            if key in m.found or key in m.bad_pairs:
                first = m.first_line.get(key)
                m.bad("duplicate", DataError(path, f"a second record for {pair.subset} #{pair.index}"
                                                   + (f" (first at {first})" if first else ""), line, "input"),
                      key, line)
                continue
            for slot, judgment in zip(("original", "swapped"), slots):
                m.add(path, key, slot, judgment, "", "input")

    # -- scoring ---------------------------------------------------------------------------------------------------
    def _score_parser(self, data: LoadedData) -> str:
        info = data.source.get("judgments")
        if isinstance(info, dict) and info.get("pairwise_parser"):
            return info["pairwise_parser"]
        return self._resolved_parser(None)

    def score(self, data: LoadedData, responses: Sequence[Any], judgments=None) -> ScoreResult:
        outputs = [_as_judgment(r) for r in responses]
        if len(outputs) != 2 * len(data.items):
            raise SparError(f"llmbar: {len(outputs)} judgments for {len(data.items)} pairs (expected two per pair)")
        parser = self._score_parser(data) if self.protocol == "pairwise" else None
        samples = []
        for k, p in enumerate(data.items):
            first, second = outputs[2 * k], outputs[2 * k + 1]
            sample: dict[str, Any] = {"subset": p.subset, "index": p.index, "label": p.label}
            lines = [first.line, second.line]
            if any(x is not None for x in lines):
                sample["lines"] = lines
            if self.protocol == "pointwise":
                votes = [self._vote(first), self._vote(second)]
                sample.update(judgments=[list(first.texts), list(second.texts)], votes=[v.to_dict() for v in votes],
                              predicted=[v.label for v in votes], truth=[int(p.label == 1), int(p.label == 2)],
                              verdict_given=[first.given, second.given])
                if self.score5:
                    sample["scores"] = [mean_score(j.texts, self.score_parser)[0] for j in (first, second)]
            elif self.score5:
                sample.update(self._compare_scores(first, second))
            else:
                a, b, info = pairwise_choices(parser, first, second)  # type: ignore[arg-type]
                sample.update(judgments=[first.texts[0] if first.texts else None,
                                         second.texts[0] if second.texts else None],
                              choice_original=a, choice_swapped=b, verdict_given=[first.given, second.given],
                              unparseable=[a is None and not first.given, b is None and not second.given], **info)
                if first.has_recorded:
                    sample["recorded"] = [first.recorded, second.recorded]
            samples.append(sample)
        metrics = compute_metrics(samples, self.protocol, data.source, total=len(data.items))
        if parser is not None:
            metrics["pairwise_parser"] = parser
        return ScoreResult(samples, metrics)

    def _vote(self, j: Judgment) -> Vote:
        if j.given:
            return Vote(j.verdict, int(j.verdict == 1), int(j.verdict == 0), 0, None)
        if self.score5:  # the mean of the parseable scores against the threshold
            mean, scores = mean_score(j.texts, self.score_parser)
            threshold = self.options.score_threshold
            label = None if mean is None else int(mean >= threshold)
            return Vote(label, sum(s is not None and s >= threshold for s in scores),
                        sum(s is not None and s < threshold for s in scores), scores.count(None),
                        j.texts[0] if j.texts and label is not None else None)
        return majority_vote(list(j.texts), self.parser)

    def _compare_scores(self, first: Judgment, second: Judgment) -> dict:
        """Pairwise with a score judge: each output's mean score, compared by the official Rating rule."""
        (s1, all1), (s2, all2) = (mean_score(j.texts, self.score_parser) for j in (first, second))
        a = b = None
        if s1 is not None and s2 is not None:
            a, b = (1 if s1 > s2 else 2), (2 if s2 > s1 else 1)
        return {"judgments": [list(first.texts), list(second.texts)], "scores": [s1, s2],
                "judgment_scores": [all1, all2], "score_tie": s1 is not None and s1 == s2,
                "choice_original": a, "choice_swapped": b, "verdict_given": [False, False],
                "unparseable": [s1 is None, s2 is None]}

    # -- what the CLI prints ---------------------------------------------------------------------------------------
    def summary_rows(self, metrics: dict) -> list[tuple[str, Any]]:
        """The paper's Table 2 columns: accuracy and F1 (pointwise) or accuracy and positional agreement (pairwise)
        for each subset, the adversarial mean and the overall mean; then coverage and exclusions."""
        pointwise = metrics.get("protocol", "pointwise") == "pointwise"
        second = ("F1", "f1") if pointwise else ("agr", "agreement")
        rows: list[tuple[str, Any]] = []
        for label, key in [(s, s.lower()) for s in SUBSETS] + [("Adversarial avg", "adversarial"),
                                                                ("Overall avg", "overall")]:
            for name, suffix in (("acc", "acc"), second):
                value = metrics.get(f"{key}_{suffix}")
                if value is not None:
                    rows.append((f"{label} {name}", value))
        cov = metrics.get("coverage") or {}
        if metrics.get("partial"):
            rows.append(("PARTIAL: pairs scored", f"{cov.get('scored')} of {cov.get('total')}"))
        counts = metrics.get("counts", {})
        if counts.get("excluded_lines"):
            rows.append(("excluded lines", counts["excluded_lines"]))
            rows.append(("excluded pairs", counts.get("excluded_pairs", 0)))
            for reason, n in sorted((metrics.get("excluded") or {}).items()):
                rows.append((f"excluded: {reason}", n))
        if not pointwise and metrics.get("pairwise_parser"):
            rows.append(("verdict parser", metrics["pairwise_parser"]))
        if counts.get("differs_from_recorded"):
            rows.append(("pairs read differently from result.json winners", counts["differs_from_recorded"]))
        return rows

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
        """One row per subset: pairs scored/total, judgments, no verdict, unparseable, excluded pairs and scores."""
        pointwise = metrics.get("protocol", "pointwise") == "pointwise"
        per = metrics.get("per_subset", {})
        cov = (metrics.get("coverage") or {}).get("per_subset", {})
        excluded = metrics.get("excluded_by_subset", {})
        if pointwise:
            cols = ["subset", "pairs", "of", "judgments", "no verdict", "unparseable", "excluded pairs", "acc", "f1"]
        else:
            cols = ["subset", "pairs", "of", "judgments", "no verdict", "unparseable", "excluded pairs",
                    "acc original", "acc swapped", "acc", "acc both", "agreement"]
        rows = []
        for sub in SUBSETS:
            m = per.get(sub, {})
            c = cov.get(sub, {})
            row: list[Any] = [sub, m.get("pairs", 0), c.get("total", m.get("pairs", 0)), m.get("judgments", 0),
                              m.get("no_verdict", 0), m.get("unparseable", 0), excluded.get(sub, 0)]
            keys = ("acc", "f1") if pointwise else ("acc_original", "acc_swapped", "acc", "acc_both",
                                                    "positional_agreement")
            row += [m.get(k) for k in keys]
            rows.append(row)
        title = f"llmbar ({'pointwise' if pointwise else 'pairwise'}) per subset" + (
            " - PARTIAL file" if metrics.get("partial") else "")
        return [(title, cols, rows)]


# -- reading helpers -----------------------------------------------------------------------------------------------

def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "llmbar-result"
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "llmbar-result" if head.startswith(b"[") else "jsonl"


def _evaluator_of(file: Path) -> str | None:
    """"GPT-4/CoT" for .../evaluators/GPT-4/CoT/result.json (LLMBar's layout), else None."""
    parts = file.resolve().parts
    if "evaluators" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("evaluators")
    tail = parts[i + 1:-1]
    return "/".join(tail) if tail else None


def _pointwise_verdict(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return int(value.strip().lower() == "yes")
    raise ValueError(f"pointwise verdicts are Yes/No, 1/0, true/false or null; got {value!r}")


_PAIRWISE_VERDICTS = {"a": 1, "(a)": 1, "output (a)": 1, "b": 2, "(b)": 2, "output (b)": 2}


def _pairwise_verdict(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, 2):
        return value
    if isinstance(value, str) and value.strip().lower() in _PAIRWISE_VERDICTS:
        return _PAIRWISE_VERDICTS[value.strip().lower()]
    raise ValueError("pairwise verdicts name the output as shown on this line's order: a/b, (a)/(b), "
                     f"Output (a)/Output (b), 1/2 or null; got {value!r}")


_WS = re.compile(r"[ \t\n\r]*")


def _read_records(path: Path) -> list[tuple[int, Any]]:
    """(line where it starts, record) for each element of a JSON list file (LLMBar's result.json)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8: byte 0x{raw[exc.start]:02x} at byte offset {exc.start}",
                        raw.count(b"\n", 0, exc.start) + 1) from None
    decoder = json.JSONDecoder(object_pairs_hook=no_duplicate_keys)
    line, counted = 1, 0

    def line_at(pos: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    pos = _WS.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("[", pos):
        raise DataError(path, "expected a JSON list of records (LLMBar's result.json)", line_at(pos))
    pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    records: list[tuple[int, Any]] = []
    if text.startswith("]", pos):
        end = pos + 1
    else:
        while True:
            start = line_at(pos)
            try:
                rec, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", exc.lineno) from None
            except DuplicateKey as exc:
                raise DataError(path, "given twice in one JSON object (in the record starting here)", start,
                                str(exc)) from None
            records.append((start, rec))
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if text.startswith(",", pos):
                pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if text.startswith("]", pos):
                end = pos + 1
                break
            raise DataError(path, "malformed JSON (expected ',' or ']' after a record)", line_at(pos))
    if _WS.match(text, end).end() != len(text):  # type: ignore[union-attr]
        raise DataError(path, "malformed JSON (extra data after the list)", line_at(end))
    return records


def _completion(path: Path, line: int, stage: Any, order: str, where: str) -> tuple[str, int | None]:
    """The completion text and recorded winner of one order ("swap = False"/"swap = True") of a result stage."""
    field = f"{where}.{order}"
    if not isinstance(stage, dict) or not isinstance(stage.get(order), dict):
        raise DataError(path, "missing (expected {\"completion\": [text, finish_reason], \"winner\": ...})", line,
                        field)
    entry = stage[order]
    comp = entry.get("completion")
    if not isinstance(comp, list) or not comp or not isinstance(comp[0], str):
        raise DataError(path, "expected [text, finish_reason]", line, f"{field}.completion")
    return comp[0], _recorded(path, line, entry, field)


def _recorded(path: Path, line: int, entry: dict, field: str) -> int | None:
    if "winner" not in entry:
        raise DataError(path, "missing", line, f"{field}.winner")
    winner = entry["winner"]
    if winner not in ("1", "2", None):
        raise DataError(path, f"expected \"1\", \"2\" or null, got {winner!r}", line, f"{field}.winner")
    return None if winner is None else int(winner)


def _result_slots(path: Path, line: int, results: list, parser: str) -> tuple[Judgment, Judgment]:
    """The (original, swapped) judgments of one result.json record, as `parser` reads them."""
    final = results[-1]
    orders = ("swap = False", "swap = True")
    if not isinstance(final, dict):
        raise DataError(path, "the last element must be the evaluation (an object with \"swap = False\"/\"swap = "
                              "True\")", line, "results")
    recorded = []
    for order in orders:
        if not isinstance(final.get(order), dict):
            raise DataError(path, "missing", line, f"results[-1].{order}")
        recorded.append(_recorded(path, line, final[order], f"results[-1].{order}"))
    if parser == "rating":
        scores = []
        for name in ("score_1", "score_2"):
            value = final.get(name)
            if not isinstance(value, list) or not value or not isinstance(value[0], str):
                raise DataError(path, "missing or not [text, finish_reason] (not a Rating result? set llmbar."
                                      "pairwise_parser)", line, f"results[-1].{name}")
            scores.append(value[0])
        return tuple(Judgment(texts=(s,), recorded=r, has_recorded=True, line=line)  # type: ignore[return-value]
                     for s, r in zip(scores, recorded))
    if parser in ("swap", "swap_cot"):
        stages = [r for r in results if isinstance(r, dict)]
        first = stages[0]
        synthesis = stages[1] if len(stages) > 1 else None
        out = []
        for order, rec in zip(orders, recorded):
            text, _ = _completion(path, line, first, order, "results[0]")
            synth = _completion(path, line, synthesis, order, "results[1]")[0] if synthesis is not None else None
            out.append(Judgment(texts=(text,), synthesis=synth, recorded=rec, has_recorded=True, line=line))
        return out[0], out[1]
    out = []
    for order, rec in zip(orders, recorded):
        if parser == "recorded":  # the winner is all that is read (Rating results have no completion per order)
            comp = final[order].get("completion")
            texts = (comp[0],) if isinstance(comp, list) and comp and isinstance(comp[0], str) else ()
        else:
            texts = (_completion(path, line, final, order, "results[-1]")[0],)
        out.append(Judgment(texts=texts, recorded=rec, has_recorded=True, line=line))
    return out[0], out[1]


def _swap_first_stage(o: Judgment, s: Judgment) -> tuple[int | None, int | None]:
    a = o.verdict if o.given else (parse_cot(o.texts[0]) if o.texts else None)
    b = _flip(s.verdict if s.given else (parse_cot(s.texts[0]) if s.texts else None))
    return a, b


def _needs_synthesis(parser: str, o: Judgment, s: Judgment) -> bool:
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
        if not _needs_synthesis(parser, o, s):
            return a, b, {"stage": "first"}
        rule = parse_vanilla if parser == "swap" else parse_cot
        info = {"stage": "synthesis", "first_stage": [a, b], "synthesis": [o.synthesis, s.synthesis]}
        return (rule(o.synthesis) if o.synthesis is not None else None,
                _flip(rule(s.synthesis) if s.synthesis is not None else None), info)
    rule = parse_cot if parser == "cot" else parse_vanilla
    a = o.verdict if o.given else (rule(o.texts[0]) if o.texts else None)
    b = _flip(s.verdict if s.given else (rule(s.texts[0]) if s.texts else None))
    return a, b, {}


class _Matcher:
    """Collects the judgments of a file per pair, with the checks and the exclusion counts."""

    def __init__(self, data: LoadedData, filt: LineFilter) -> None:
        self.data, self.filt = data, filt
        self.by_key = {(p.subset, p.index): p for p in data.items}
        self.by_content = {(p.input, p.output_1, p.output_2): (p.subset, p.index) for p in data.items}
        self.left_out = getattr(data, "left_out", frozenset())
        self.loaded = Counter(p.subset for p in data.items)
        self.sizes: dict[str, int] = dict(data.source.get("subset_sizes") or self.loaded)
        self.found: dict[tuple, dict] = {}  # pair -> {slot: Judgment}
        self.first_line: dict[tuple, str] = {}
        self.pair_lines: dict[tuple, set] = {}  # pair -> lines stored for it (to count when the pair is excluded)
        self.reported: set = set()  # lines already counted as excluded
        self.bad_pairs: set = set()
        self.outside = 0

    def bad(self, reason: str, error: DataError, pair: tuple | None = None, line: int | None = None) -> None:
        self.filt.bad(reason, error)  # raises unless skipping
        self.reported.add((str(error.path), line))
        if pair is not None:
            self.bad_pairs.add(pair)

    def pair_key(self, path: Path, line: int, row: dict) -> tuple | str | None:
        """(subset, index) of a JSONL line; "outside" for a pair `limit` left out; None when bad (counted)."""
        subset = row.get("subset")
        if "subset" not in row or not isinstance(subset, str) or subset not in SUBSETS:
            what = "missing" if "subset" not in row else f"unknown subset {subset!r}"
            self.bad("unknown_subset", DataError(path, f"{what} (choose from {', '.join(SUBSETS)})", line,
                                                 "subset"), None, line)
            return None
        index = row.get("index")
        if "index" not in row:
            problem = "missing"
        elif isinstance(index, bool) or not isinstance(index, int):
            problem = f"expected a 0-based integer, got {type(index).__name__} {index!r}"
        elif index < 0:
            problem = f"must be 0 or more, got {index}"
        elif index >= self.sizes.get(subset, 0):
            problem = f"{index} is past the end of {subset} ({self.sizes.get(subset, 0)} pairs, indices from 0)"
        else:
            problem = None
        if problem is not None:
            self.bad("bad_index", DataError(path, problem, line, "index"), None, line)
            return None
        if index >= self.loaded.get(subset, 0):
            self.outside += 1
            return "outside"
        return (subset, index)

    def pair_by_content(self, path: Path, line: int, content: tuple) -> tuple | str | None:
        key = self.by_content.get(content)
        if key is not None:
            return key
        if content in self.left_out:
            self.outside += 1
            return "outside"
        self.bad("unknown_pair", DataError(path, f"no LLMBar pair has this input and these outputs: "
                                                 f"{content[0][:60]!r}", line, "input"), None, line)
        return None

    def add(self, path: Path, key: tuple, slot: Any, judgment: Judgment, what: str, field: str) -> None:
        slots = self.found.setdefault(key, {})
        self.pair_lines.setdefault(key, set()).add((str(path), judgment.line))
        if slot in slots:
            first = slots[slot].line
            self.bad("duplicate", DataError(path, f"a second judgment for {key[0]} #{key[1]} {what} (first at line "
                                                  f"{first})", judgment.line, field), key, judgment.line)
            return
        slots[slot] = judgment
        self.first_line.setdefault(key, f"{path}:{judgment.line}")

    def finish(self, protocol: str, parser: str) -> None:
        """Pair-level checks after the whole file is read: both halves there, the Swap synthesis stage where it
        is needed; then count the lines of excluded pairs."""
        slots: tuple = (1, 2) if protocol == "pointwise" else ("original", "swapped")
        slot_key = "output" if protocol == "pointwise" else "order"
        for p in self.data.items:
            key = (p.subset, p.index)
            if key not in self.found or key in self.bad_pairs:
                continue
            have = self.found[key]
            missing = [s for s in slots if s not in have]
            if missing:
                present_slot, present = next(iter(have.items()))
                path = self.first_line[key].rsplit(":", 1)[0]
                self.bad("missing_half", DataError(
                    path, f"{key[0]} #{key[1]} has no line for {slot_key} {missing[0]!r}; only this line's "
                          f"{slot_key} {present_slot!r}", present.line, slot_key), key, present.line)
                continue
            o, s = have[slots[0]], have[slots[1]]
            if protocol == "pairwise" and _needs_synthesis(parser, o, s) and (o.synthesis is None or
                                                                              s.synthesis is None):
                lacking = o if o.synthesis is None else s
                path = self.first_line[key].rsplit(":", 1)[0]
                from_result = lacking.has_recorded
                self.bad("missing_synthesis", DataError(
                    path, f"the two orders of {key[0]} #{key[1]} disagree after the first stage, so the {parser} "
                          "parser needs the synthesis-stage completion"
                          + (" (results has no second stage)" if from_result else ""),
                    lacking.line, "results" if from_result else "synthesis"), key, lacking.line)
        for key in self.bad_pairs:
            for where in self.pair_lines.get(key, ()):
                if where not in self.reported:
                    self.reported.add(where)
                    self.filt.bad("same_pair", DataError(where[0], "its pair is excluded", where[1]))

    def matched(self, protocol: str) -> tuple[list[Pair], list[Judgment], dict]:
        slots: tuple = (1, 2) if protocol == "pointwise" else ("original", "swapped")
        pairs, outputs = [], []
        per_subset = {s: {"scored": 0, "total": 0, "excluded": 0} for s in SUBSETS}
        answered = 0
        self.first_missing: str | None = None
        for p in self.data.items:
            key = (p.subset, p.index)
            per_subset[p.subset]["total"] += 1
            if key in self.bad_pairs:
                per_subset[p.subset]["excluded"] += 1
                answered += 1
                continue
            if key not in self.found:
                if self.first_missing is None:
                    self.first_missing = f"{p.subset} #{p.index}"
                continue
            answered += 1
            per_subset[p.subset]["scored"] += 1
            pairs.append(p)
            outputs += [self.found[key][s] for s in slots]
        total = len(self.data.items)
        cov = {"scored": len(pairs), "total": total, "partial": len(pairs) < total, "answered": answered,
               "per_subset": per_subset, "outside_selection": self.outside}
        return pairs, outputs, cov


def _check_coverage(where: Path, cov: dict, m: _Matcher, allow_partial: bool) -> None:
    if cov["answered"] == 0:
        raise SparError(f"{where}: no judgments in the file match the LLMBar data")
    if cov["scored"] == 0:
        raise SparError(f"{where}: every pair with judgments was excluded ({sum(m.filt.counts.values())} lines "
                        f"left out: {', '.join(f'{k}={v}' for k, v in sorted(m.filt.counts.items()))})")
    if cov["answered"] < cov["total"] and not allow_partial:
        per = ", ".join(f"{s} {c['scored'] + c['excluded']}/{c['total']}" for s, c in cov["per_subset"].items())
        raise SparError(f"{where}: judgments for {cov['answered']} of the {cov['total']} LLMBar pairs loaded ({per}; "
                        f"first missing: {m.first_missing}); score them anyway with --allow-partial")


# -- metrics -------------------------------------------------------------------------------------------------------

def _subset_metrics(rows: list[dict], protocol: str) -> dict:
    if protocol == "pointwise":
        tp = fp = fn = correct = ties = invalid = 0
        for s in rows:
            for pred, truth, vote in zip(s["predicted"], s["truth"], s["votes"]):
                correct += pred == truth
                tp += pred == 1 and truth == 1
                fp += pred == 1 and truth == 0
                fn += pred != 1 and truth == 1
                ties += pred is None
                invalid += vote["invalid"]
        n = 2 * len(rows)
        return {"acc": correct / n, "f1": f1(tp, fp, fn), "pairs": len(rows), "judgments": n, "no_verdict": ties,
                "unparseable": invalid, "unparseable_outputs": invalid, "tp": tp, "fp": fp, "fn": fn}
    n = len(rows)
    orig = sum(s["choice_original"] == s["label"] for s in rows)
    swap = sum(s["choice_swapped"] == s["label"] for s in rows)
    both = sum(s["choice_original"] == s["label"] == s["choice_swapped"] for s in rows)
    equal = sum(s["choice_original"] == s["choice_swapped"] for s in rows)
    return {"acc_original": orig / n, "acc_swapped": swap / n, "acc": (orig + swap) / (2 * n), "acc_both": both / n,
            "positional_agreement": equal / n, "correct_original": orig, "correct_swapped": swap,
            "correct_both": both, "agreements": equal, "pairs": n, "judgments": 2 * n,
            "score_ties": sum(bool(s.get("score_tie")) for s in rows),
            "no_verdict": sum((s["choice_original"] is None) + (s["choice_swapped"] is None) for s in rows),
            "unparseable": sum(sum(s.get("unparseable", (s["choice_original"] is None, s["choice_swapped"] is None)))
                               for s in rows)}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compute_metrics(samples: Sequence[dict], protocol: str, source: dict | None = None,
                    total: int | None = None) -> dict:
    """Per-subset and averaged metrics; with the `source` of matched judgments, its coverage and exclusions too.
    Flat keys: `<subset>_acc` (natural, neighbor, gptinst, gptout, manual), `adversarial_acc`, `overall_acc`, and
    `<...>_f1` (pointwise) or `<...>_agreement` (pairwise; `positional_agreement` = `overall_agreement`)."""
    source = source or {}
    per_subset = {sub: _subset_metrics([s for s in samples if s["subset"] == sub], protocol)
                  for sub in SUBSETS if any(s["subset"] == sub for s in samples)}
    metrics: dict[str, Any] = {"protocol": protocol}
    second = ("f1", "f1") if protocol == "pointwise" else ("positional_agreement", "agreement")
    for key, name in (("acc", "acc"), second):
        for sub in SUBSETS:
            metrics[f"{sub.lower()}_{name}"] = per_subset[sub][key] if sub in per_subset else None
        metrics[f"adversarial_{name}"] = _mean([per_subset[s][key] for s in ADVERSARIAL if s in per_subset])
        metrics[f"overall_{name}"] = _mean([m[key] for m in per_subset.values()])
    if protocol == "pairwise":
        metrics["positional_agreement"] = metrics["overall_agreement"]
    metrics["per_subset"] = per_subset
    counts: dict[str, Any] = {"pairs": len(samples), "subsets": len(per_subset),
                              "judgments": sum(m["judgments"] for m in per_subset.values()),
                              "no_verdict": sum(m["no_verdict"] for m in per_subset.values()),
                              "unparseable": sum(m["unparseable"] for m in per_subset.values())}
    if protocol == "pointwise":
        counts["unparseable_outputs"] = counts["unparseable"]
    elif any("score_tie" in s for s in samples):
        counts["score_ties"] = sum(m["score_ties"] for m in per_subset.values())
    recorded = [s for s in samples if "recorded" in s]
    if recorded:
        counts["differs_from_recorded"] = sum((s["choice_original"], s["choice_swapped"]) != tuple(s["recorded"])
                                              for s in recorded)
    counts["excluded_lines"] = int(source.get("excluded_lines", 0))
    counts["excluded_pairs"] = int(source.get("excluded_pairs", 0))
    metrics["counts"] = counts
    metrics["excluded"] = dict(source.get("excluded", {}))
    metrics["excluded_by_subset"] = dict(source.get("excluded_by_subset", {}))
    cov = source.get("coverage")
    if cov is None:  # judged here (spar eval): everything loaded was scored
        n = len(samples) if total is None else total
        per = Counter(s["subset"] for s in samples)
        cov = {"scored": len(samples), "total": n, "partial": len(samples) < n, "answered": len(samples),
               "per_subset": {s: {"scored": per.get(s, 0), "total": per.get(s, 0), "excluded": 0} for s in SUBSETS},
               "outside_selection": 0}
    metrics["coverage"] = cov
    metrics["partial"] = bool(cov["partial"])
    for sub, m in per_subset.items():
        m["excluded_pairs"] = metrics["excluded_by_subset"].get(sub, 0)
    return metrics
