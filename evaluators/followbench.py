"""FollowBench (Jiang et al., 2024): six constraint categories, levels 1-5 (each level adds one constraint).

Scoring follows the official protocol (YJiangcm/FollowBench code/): rule checks for the example category (template
match), for every item whose source is rule-scored and for format items 22 and 30 (see followbench_rules.py); an
LLM judge for the rest, with the official per-category prompt (initial instruction, the instruction after each
added constraint, the answer) and the official parsing of its final line (`paring_discriminative_generation` in
code/gpt4_based_evaluation.py): at level 1 'YES' anywhere in the line, else 'NO' anywhere; at levels 2-5 the
Python list between the line's first '[' and last ']', with `level` elements each 'YES' or one of 'NO', 'PARTIAL',
'MAYBE', 'UNKNOWN', 'N/A' (not satisfied). Anything else is an invalid evaluation, where the official code raises
and returns -1 ("You must manually fix the evaluation"): a wrong length, a nested list or dict element
(`[['YES'], 'NO']`), no list at all (`{'a': 1}`). The list is read with `ast.literal_eval`, never `eval`, so a
line that only Python code would turn into a list (`['YES'] + ['NO']`) is invalid here. Substring matching at
level 1 is official too: `[['YES'], 'NO']` is a YES there.

Metrics per category and level: HSR (all constraints satisfied), SSR (share of satisfied constraints), CSL
(consecutive levels satisfied from level 1, averaged over example groups: a count of levels 0-5, not a fraction),
and overall per level the mean over the scored categories; `ssr_avg` is the mean of SSR Lv-1..Lv-5 (the SPaR
tables' FollowBench "Avg").

Judge votes (`JudgeConfig.votes` = N > 1): each of the item's `level` constraints is decided by majority over the
N judgments separately: satisfied when more than half of the VALID judgments say YES for it (a tie is not
satisfied); a judgment that is invalid for the item takes no part in the vote; when all N are invalid the item's
judgment is invalid. HSR/SSR then use the voted constraints (hard = all satisfied, soft = share satisfied). With
N = 1 this is the official single judgment. Samples record every text (`judgments`) and the tally (`votes`).

Invalid judge outputs are counted and reported (`invalid_judgments`, per category and level). The official code
adds -1 for them and asks for a manual fix; here option `invalid_policy` decides: "zero" (default: the item counts
as not satisfied, for HSR/SSR and for CSL, where the group stops at that level) or "exclude" (the item leaves the
HSR/SSR denominators and its example group leaves CSL). Under both, a subset whose judgments are all invalid (a
category at one level for HSR/SSR, a whole category for CSL) has no score (None, shown as n/a) rather than 0.

`spar score followbench` reads responses as spar's JSONL (`prompt` = the instruction, `response`) or the official
`api_output` files (code/model_inference.py, model_inference_vllm.py: `api_output/<model>/<category>_constraint.jsonl`,
one line per instruction with `prompt` (or `prompt_new`) and `choices[0].message.content`), one file or the folder.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from evaluators.base import Evaluator, GenerationConfig, LoadedData, ScoreResult
from evaluators.followbench_rules import RULE_FORMAT_IDS, RULE_SOURCES, SOURCE_CHECKS, example_check, format_check
from harness.core.data import (LineFilter, attach_coverage, check_coverage, coverage, iter_jsonl, load_hub_rows, locate,
                               read_json_list, require, sha256_of)
from harness.core.errors import DataError, SparError
from harness.core.options import option, options
from harness.core.types import ChatRequest, Message

HUB_ID = "YuxinJiang/FollowBench"
LOCAL_DIR = "followbench"
CATEGORIES = ("content", "situation", "style", "format", "example", "mixed")
LEVELS = (1, 2, 3, 4, 5)
NOT_SATISFIED = {"NO", "PARTIAL", "MAYBE", "UNKNOWN", "N/A"}
INVALID_POLICIES = ("zero", "exclude")
#: `spar score followbench --format`: spar's JSONL, or the official api_output files (a file or the folder)
FORMATS = ("jsonl", "api-output")
FORMAT_HELP = ("jsonl (one object per line: `prompt` = the instruction, `response`), api-output (the official "
               "api_output/<model>/<category>_constraint.jsonl: `prompt` or `prompt_new`, `choices[0].message.content`;"
               " a file or the folder)")
API_OUTPUT_FILE = "{}_constraint.jsonl"
VOTE_RULE = ("per constraint: satisfied when more than half of the valid judgments say YES (a tie is not "
             "satisfied); invalid judgments take no part; all invalid -> the item's judgment is invalid")
#: summary rows whose name ends with this hold a count of levels (0-5), not a fraction
LEVELS_SUFFIX = " (levels)"

# The constraint phrase in each category's judge prompt (official `<category>_evaluation_prompt`).
_PHRASE = {"content": "one content constraint",
           "situation": "one situation constraint (information to describe a specific situation/background)",
           "style": "one style constraint", "format": "one format constraint", "mixed": "one constraint"}


@dataclass(frozen=True)
class FBItem:
    example_id: int
    category: str
    source: str
    level: int
    instruction: str
    target: str
    chain: tuple[str, ...]  # the example's instructions from its first level up to this one

    @property
    def method(self) -> str:
        if self.category == "example":
            return "example_rule"
        if self.source in RULE_SOURCES:
            return "source_rule"
        if self.category == "format" and self.example_id in RULE_FORMAT_IDS:
            return "format_rule"
        return "llm"


def judge_prompt(category: str, chain: Sequence[str], answer: str) -> str:
    """The official FollowBench judge prompt for `category` (byte-exact)."""
    level = len(chain) - 1
    phrase = _PHRASE[category]
    if level == 1:
        text = (f"Given an initial instruction, we add {phrase} and obtain the final instruction with 1 additional "
                "constraint.\n\n")
    else:
        text = (f"Given an initial instruction, we add {phrase} per time and obtain the final instruction with "
                f"{level} additional constraints.\n\n")
    text += "#Initial Instruction#\n" + chain[0] + "\n\n"
    text += "#Initial Instruction + 1 constraint#\n" + chain[1] + "\n\n"
    for i in range(2, level + 1):
        text += f"#Initial Instruction + {i} constraints#\n" + chain[i] + "\n\n"
    if level == 1:
        text += "#Answer of Initial Instruction + 1 constraint#\n" + answer + "\n\n"
        text += ("#System#\n1) Please identify the 1 added constraint.\n2) Please descriminate if the #Answer of "
                 "Initial Instruction + 1 constraint# satisfies the 1 added constraint.\n3) In the final line, only "
                 "output a Python LIST with 1 element ('YES' or 'NO') indicating whether the answer satisfies the 1 "
                 "added constraint.")
    else:
        text += f"#Answer of Initial Instruction + {level} constraints#\n" + answer + "\n\n"
        text += (f"#System#\n1) Please identify all {level} added constraints.\n2) For the {level} added "
                 f"constraints, discriminate if the #Answer of Initial Instruction + {level} constraints# satisfies "
                 f"each constraint.\n3) In the final line, only output a Python LIST with {level} elements ('YES' or "
                 "'NO') indicating whether the answer satisfies each constraint.")
    return text


def parse_constraints(text: Any, level: int) -> list[bool] | None:
    """Per-constraint verdicts (True = satisfied) from the judge's final line, read as the official
    `paring_discriminative_generation` reads it (see the module docstring); None where that code raises, i.e. an
    invalid evaluation. Never raises."""
    if not isinstance(text, str):
        return None
    last = text.strip("`").strip().split("\n")[-1]
    if level == 1:
        return [True] if "YES" in last else [False] if "NO" in last else None
    found = re.search(r"\[.*\]", last)
    if not found:
        return None
    try:
        values = ast.literal_eval(found.group())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(values, (list, tuple)) or len(values) != level:
        return None
    verdicts = []
    for value in values:  # official: `i == 'YES'`, elif `i in [...]` (equality), else 'Invalid element'
        if not isinstance(value, str) or (value != "YES" and value not in NOT_SATISFIED):
            return None
        verdicts.append(value == "YES")
    return verdicts


def parse_judgment(text: Any, level: int) -> tuple[int, float] | None:
    """(hard, soft) from one judgment, as the official `paring_discriminative_generation`; None when invalid."""
    verdicts = parse_constraints(text, level)
    if verdicts is None:
        return None
    return int(all(verdicts)), sum(verdicts) / level


def vote_constraints(texts: Sequence[Any], level: int) -> tuple[list[bool] | None, dict]:
    """Majority vote of N judgments per constraint (`VOTE_RULE`): the voted verdicts (None when no judgment is
    valid) and the tally {"n", "valid", "invalid", "yes": YES count per constraint among the valid ones}."""
    parsed = [parse_constraints(t, level) for t in texts]
    valid = [p for p in parsed if p is not None]
    yes = [sum(p[i] for p in valid) for i in range(level)]
    tally = {"n": len(parsed), "valid": len(valid), "invalid": len(parsed) - len(valid), "yes": yes}
    if not valid:
        return None, tally
    return [2 * y > len(valid) for y in yes], tally


def _rows_to_items(rows: list[dict], category: str, where: Any) -> list[FBItem]:
    items: list[FBItem] = []
    chain: list[str] = []
    current = None
    for i, row in enumerate(rows):
        line = i + 1
        example_id = require(row, "example_id", int, where, line)
        level = require(row, "level", int, where, line)
        instruction = require(row, "instruction", str, where, line)
        source = require(row, "source", str, where, line)
        target = row.get("target", "")
        if not isinstance(target, str):
            target = json.dumps(target)
        if level not in (0, *LEVELS):
            raise DataError(where, f"level {level} is not in 0..5", line, "level")
        if example_id != current:
            current, chain = example_id, []
        chain.append(instruction)
        if level > 0:
            items.append(FBItem(example_id, category, source, level, instruction, target, tuple(chain)))
    return items


@options
class FollowBenchOptions:
    categories: str = option("", "comma-separated categories to score (default: all six: "
                                 + ", ".join(CATEGORIES) + ")")
    invalid_policy: Literal["zero", "exclude"] = option(
        "zero", "invalid judge outputs: zero (count as not satisfied) or exclude (drop from the denominators of "
                "HSR, SSR and CSL)")

    def __post_init__(self) -> None:
        unknown = [c for c in self.selected if c not in CATEGORIES]
        if unknown:
            raise SparError(f"followbench.categories {unknown}: choose from {', '.join(CATEGORIES)}")

    @property
    def selected(self) -> list[str]:
        return [c.strip() for c in (self.categories or ",".join(CATEGORIES)).split(",") if c.strip()]


class FollowBenchEvaluator(Evaluator):
    name = "followbench"
    Options = FollowBenchOptions
    searchable = True
    headline = tuple(f"ssr_lv{k}" for k in LEVELS) + ("ssr_avg", "hsr_avg")  # CSL: summary_rows, as a count
    formats = FORMATS

    def __init__(self, options=None, judge=None) -> None:
        super().__init__(options, judge)
        self.categories = self.options.selected
        self.invalid_policy = self.options.invalid_policy

    @property
    def needs_judge(self) -> bool:  # type: ignore[override]
        return any(c != "example" for c in self.categories)

    def describe(self) -> dict:
        return {"protocol": "official FollowBench (rule checks + per-category LLM judge prompts)",
                "categories": self.categories, "invalid_policy": self.invalid_policy,
                "judgment_parsing": "official paring_discriminative_generation (list read with ast.literal_eval); "
                                    "nested or non-string list elements are invalid",
                "judge_votes": self.judge.votes, "vote_rule": VOTE_RULE,
                "all_invalid_subset": "None (n/a) with the count of invalid judgments, under either policy",
                "overall": "mean over the scored categories, per level"}

    def load(self, source: str | None, limit: int | None = None) -> LoadedData:
        source = locate(source, HUB_ID, LOCAL_DIR)
        path = Path(source)
        items: list[FBItem] = []
        left_out: set[str] = set()  # instructions the run leaves out (--limit, other categories)
        provenance: dict[str, Any] = {"categories": {}}
        if path.is_dir():
            for cat in CATEGORIES:
                if cat not in self.categories:
                    left_out.update(_instructions_if_readable(path / f"{cat}_constraints.json", cat))
            for cat in self.categories:
                file = path / f"{cat}_constraints.json"
                if not file.is_file():
                    raise SparError(f"{path}: no {file.name} (expected FollowBench's data/*.json layout)")
                rows = read_json_list(file, "items")
                cat_items = _rows_to_items(rows, cat, file)
                items += cat_items[:limit] if limit else cat_items
                left_out.update(it.instruction for it in (cat_items[limit:] if limit else []))
                provenance["categories"][cat] = {"path": str(file.resolve()), "sha256": sha256_of(file)}
        elif path.exists():
            raise SparError(f"{source}: FollowBench data is a folder of <category>_constraints.json files")
        else:
            rows, provenance["hub"] = load_hub_rows(source)
            left_out.update(r["instruction"] for r in rows if r.get("category") not in self.categories
                            and isinstance(r.get("instruction"), str))
            for cat in self.categories:
                cat_items = _rows_to_items([r for r in rows if r.get("category") == cat], cat, source)
                items += cat_items[:limit] if limit else cat_items
                left_out.update(it.instruction for it in (cat_items[limit:] if limit else []))
        provenance.update(num_items=len(items), limit=limit, limit_applies_to="items per category")
        data = LoadedData(items, provenance)
        # `match_outputs` ignores answers to these instead of calling them unknown
        data.left_out = frozenset(left_out - {it.instruction for it in items})  # type: ignore[attr-defined]
        return data

    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]:
        system = (Message("system", config.system_prompt),) if config.system_prompt else ()
        return [ChatRequest(system + (Message("user", it.instruction),), config.sampling, seed=config.seed)
                for it in data.items]

    def judge_requests(self, data: LoadedData, responses: Sequence[str]) -> list[ChatRequest]:
        return [self.judge.request((Message("user", judge_prompt(it.category, it.chain, r)),))
                for it, r in zip(data.items, responses) if it.method == "llm"]

    # -- outputs made elsewhere ---------------------------------------------------------------------------------
    def match_outputs(self, data: LoadedData, path: str, fmt: str | None = None, allow_partial: bool = False,
                      skip_invalid: bool = False) -> tuple[LoadedData, list[str]]:
        """Responses made elsewhere, paired with the items by instruction text; see `FORMATS`.

        A line for an instruction the run leaves out (`--limit`, a category not selected) is ignored (counted in
        coverage.outside_selection); any other bad line (malformed, wrong field type, unknown instruction, an
        instruction answered twice) is an error naming file:line and field, or with `skip_invalid` counted by
        reason in `source["excluded"]` and left out (the first answer is kept)."""
        root = Path(path)
        files, fmt = self._outputs_files(root, fmt)
        filt = LineFilter(skip_invalid)
        left_out = getattr(data, "left_out", frozenset())
        by_instruction: dict[str | None, dict[str, FBItem]] = {None: {}}
        for it in data.items:
            by_instruction[None][it.instruction] = it
            by_instruction.setdefault(it.category, {})[it.instruction] = it
        found: dict[int, tuple[str, int, str]] = {}  # id(item) -> (file, line, response)
        outside = 0
        for file, cat in files:
            errors: list[DataError] | None = [] if skip_invalid else None
            rows = iter_jsonl(file, errors)
            filt.take(errors or ())
            file_fmt = fmt or _detect_format(file, rows)
            lookup = by_instruction.get(cat, {}) if cat is not None else by_instruction[None]
            for line, row in rows:
                try:
                    prompt, response, field = _read_row(row, file_fmt, file, line)
                except DataError as err:
                    filt.bad("bad_field", err)
                    continue
                item = lookup.get(prompt)
                if item is None:
                    if prompt in left_out:
                        outside += 1
                    else:
                        where = f"the {cat} items" if cat is not None else "FollowBench"
                        filt.bad("unknown_item", DataError(file, f"instruction not found in {where}: {prompt[:60]!r}",
                                                           line, field))
                    continue
                if id(item) in found:
                    first = found[id(item)]
                    at = f"line {first[1]}" if first[0] == str(file) else f"{first[0]}:{first[1]}"
                    filt.bad("duplicate", DataError(file, f"a second response for this instruction (first at {at})",
                                                    line, field))
                    continue
                found[id(item)] = (str(file), line, response)
        matched = [it for it in data.items if id(it) in found]  # the data's order (level chains for CSL)
        per_category = {cat: {"scored": sum(id(it) in found for it in data.items if it.category == cat),
                              "total": sum(it.category == cat for it in data.items)}
                        for cat in dict.fromkeys(it.category for it in data.items)}
        cov = coverage(len(matched), len(data.items), per_category, outside)
        missing = next((it for it in data.items if id(it) not in found), None)
        check_coverage(root, cov, "FollowBench instructions", allow_partial,
                       None if missing is None else f"{missing.category} example {missing.example_id} level "
                                                    f"{missing.level}")
        if root.is_dir():
            responses = {"path": str(root.resolve()), "format": fmt,
                         "files": {cat: {"path": str(f.resolve()), "sha256": sha256_of(f)} for f, cat in files}}
        else:
            responses = {"path": str(root.resolve()), "sha256": sha256_of(root), "format": fmt or file_fmt}
        source = dict(data.source, responses=responses, num_items=len(matched), coverage=cov)
        if skip_invalid:
            source.update(excluded=dict(filt.counts), excluded_examples=dict(filt.first))
        return LoadedData(matched, source), [found[id(it)][2] for it in matched]

    def _outputs_files(self, path: Path, fmt: str | None) -> tuple[list[tuple[Path, str | None]], str | None]:
        """The files to read, each with the category it answers (None: any), and the format (None: detect)."""
        if fmt is not None and fmt not in FORMATS:
            raise SparError(f"--format {fmt!r}: followbench accepts {', '.join(FORMATS)}")
        if path.is_dir():
            if fmt == "jsonl":
                raise SparError(f"{path}: a folder; --format jsonl reads one file")
            files = [(path / API_OUTPUT_FILE.format(cat), cat) for cat in self.categories
                     if (path / API_OUTPUT_FILE.format(cat)).is_file()]
            if not files:
                expected = ", ".join(API_OUTPUT_FILE.format(c) for c in self.categories)
                raise SparError(f"{path}: a folder without {expected} (the official api_output/<model>/ layout)")
            return files, "api-output"
        if not path.exists():
            raise SparError(f"{path}: no such file")
        named = re.fullmatch(r"(\w+)_constraint\.jsonl", path.name)
        cat = named.group(1) if named and named.group(1) in CATEGORIES else None
        if cat is not None and cat not in self.categories:
            raise SparError(f"{path}: answers the {cat} category, but this run scores "
                            f"{', '.join(self.categories)} (followbench.categories)")
        return [(path, cat)], fmt

    # -- scoring ------------------------------------------------------------------------------------------------
    def score(self, data: LoadedData, responses: Sequence[str], judgments=None) -> ScoreResult:
        judged = iter(judgments or [])
        samples = []
        for it, response in zip(data.items, responses):
            sample = {"category": it.category, "example_id": it.example_id, "level": it.level, "source": it.source,
                      "method": it.method, "instruction": it.instruction, "response": response}
            if it.method == "llm":
                texts = next(judged, None)
                if texts is None:
                    raise SparError("followbench: fewer judge outputs than LLM-judged items")
                texts = [texts] if isinstance(texts, str) else list(texts)
                verdicts, tally = vote_constraints(texts, it.level)
                sample.update(judgments=texts, votes=tally, constraints=verdicts,
                              judgment_valid=verdicts is not None)
                hard, soft = (int(all(verdicts)), sum(verdicts) / it.level) if verdicts is not None else (0, 0.0)
            else:
                if it.method == "example_rule":
                    ok = example_check(it.target, response)
                elif it.method == "format_rule":
                    ok = format_check(response, it.example_id, it.level)
                else:
                    ok = SOURCE_CHECKS[it.source](response, it.target, it.level)
                hard, soft = int(ok), float(ok)
            sample.update(hard=hard, soft=soft)
            samples.append(sample)
        metrics = compute_metrics(samples, self.invalid_policy)
        return ScoreResult(samples, attach_coverage(metrics, data.source))

    def summary_rows(self, metrics: dict) -> list[tuple[str, Any]]:
        """SSR Lv-1..5, ssr_avg, hsr_avg (fractions) and "csl (levels)": CSL is a count of levels 0-5, not a
        fraction; a row whose name ends with `LEVELS_SUFFIX` is printed as a number, not a percentage. None = n/a
        (no valid judgment in that subset)."""
        rows = [(k, metrics.get(k)) for k in self.headline]
        return rows + [("csl" + LEVELS_SUFFIX, metrics.get("csl"))]

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
        """The per-category view of the FollowBench paper: HSR and SSR per level (fractions), CSL (a count of levels:
        its column name ends with `LEVELS_SUFFIX`), invalid judgments; None = n/a."""
        columns = (["category"] + [f"hsr_lv{k}" for k in LEVELS] + [f"ssr_lv{k}" for k in LEVELS]
                   + ["csl" + LEVELS_SUFFIX, "invalid_judgments"])
        rows = [[cat] + [c["hsr"][str(k)] for k in LEVELS] + [c["ssr"][str(k)] for k in LEVELS]
                + [c["csl"], c["invalid_judgments"]] for cat, c in metrics.get("per_category", {}).items()]
        if not rows:
            return []
        counts = metrics.get("counts", {})
        rows.append(["overall"] + [metrics.get(f"hsr_lv{k}") for k in LEVELS] + [metrics.get(f"ssr_lv{k}")
                                                                                 for k in LEVELS]
                    + [metrics.get("csl"), counts.get("invalid_judgments", 0)])
        return [("FollowBench per category", columns, rows)]


def _instructions_if_readable(file: Path, category: str) -> set[str]:
    """The instructions of a category the run does not score (to recognise answers to it); unreadable: none."""
    try:
        return {it.instruction for it in _rows_to_items(read_json_list(file, "items"), category, file)}
    except SparError:
        return set()


def _detect_format(path: Path, rows: list[tuple[int, dict]]) -> str:
    """The outputs format from the file's first object: the official api_output lines have `choices`; spar's
    JSONL has `response`."""
    if not rows:
        raise SparError(f"{path}: no responses in the file")
    line, row = rows[0]
    if "choices" in row:
        return "api-output"
    if "response" in row:
        return "jsonl"
    fields = ", ".join(sorted(row)[:8]) or "none"
    raise SparError(f"{path}:{line}: not a FollowBench outputs format (fields: {fields}); --format accepts: "
                    f"{FORMAT_HELP}")


def _read_row(row: dict, fmt: str, path: Path, line: int) -> tuple[str, str, str]:
    """(instruction, response, the instruction's field name) of one outputs line."""
    if fmt == "api-output":
        # model_inference_vllm.py writes `prompt`; model_inference.py keeps the api_input line's `prompt_new`
        field = "prompt" if "prompt" in row or "prompt_new" not in row else "prompt_new"
        if field not in row:
            raise DataError(path, "missing (api_output lines hold the instruction in `prompt` or `prompt_new`)",
                            line, "prompt")
        prompt = require(row, field, str, path, line)
        choices = require(row, "choices", list, path, line)
        first = require({"c": choices[0]} if choices else {}, "c", dict, path, line, "choices[0]")
        message = require(first, "message", dict, path, line, "choices[0].message")
        return prompt, require(message, "content", str, path, line, "choices[0].message.content"), field
    prompt = require(row, "prompt", str, path, line)
    return prompt, require(row, "response", str, path, line), "prompt"


def compute_metrics(samples: Sequence[dict], invalid_policy: str = "zero") -> dict:
    """HSR/SSR per category and level, CSL per category, and their means over categories (see the module
    docstring for the invalid-judgment policies and the all-invalid rule)."""
    per_category: dict[str, dict] = {}
    for cat in dict.fromkeys(s["category"] for s in samples):
        rows = [s for s in samples if s["category"] == cat]
        hsr, ssr, n, invalid = {}, {}, {}, {}
        for k in LEVELS:
            at = [s for s in rows if s["level"] == k]
            invalid[k] = sum(1 for s in at if s.get("judgment_valid") is False)
            counted = [s for s in at if invalid_policy == "zero" or s.get("judgment_valid", True)]
            if invalid[k] == len(at):  # nothing valid at this level (or no item): n/a, not 0
                counted = []
            n[k] = len(counted)
            hsr[k] = sum(s["hard"] for s in counted) / len(counted) if counted else None
            ssr[k] = sum(s["soft"] for s in counted) / len(counted) if counted else None
        groups: dict[int, dict[int, tuple[int, bool]]] = {}
        for s in rows:
            valid = s.get("judgment_valid", True)
            groups.setdefault(s["example_id"], {})[s["level"]] = (s["hard"] if valid else 0, valid)
        complete = [g for g in groups.values() if set(g) == set(LEVELS)]
        if invalid_policy == "exclude":
            complete = [g for g in complete if all(valid for _, valid in g.values())]
        elif all(not valid for g in complete for _, valid in g.values()):
            complete = []  # every judgment of the category invalid: n/a
        csl = [next((k - 1 for k in LEVELS if g[k][0] != 1), 5) for g in complete]
        per_category[cat] = {
            "hsr": {str(k): v for k, v in hsr.items()}, "ssr": {str(k): v for k, v in ssr.items()},
            "csl": sum(csl) / len(csl) if csl else None, "csl_groups": len(csl), "items_per_level": n,
            "invalid_judgments": sum(invalid.values()), "invalid_per_level": invalid,
            "methods": {m: sum(s["method"] == m for s in rows) for m in sorted({s["method"] for s in rows})}}
    metrics: dict[str, Any] = {}
    for k in LEVELS:
        for name in ("hsr", "ssr"):
            vals = [c[name][str(k)] for c in per_category.values() if c[name][str(k)] is not None]
            metrics[f"{name}_lv{k}"] = sum(vals) / len(vals) if vals else None
    for name in ("hsr", "ssr"):
        vals = [metrics[f"{name}_lv{k}"] for k in LEVELS if metrics[f"{name}_lv{k}"] is not None]
        metrics[f"{name}_avg"] = sum(vals) / len(vals) if vals else None
    csls = [c["csl"] for c in per_category.values() if c["csl"] is not None]
    metrics["csl"] = sum(csls) / len(csls) if csls else None
    metrics["per_category"] = per_category
    metrics["counts"] = {"items": len(samples), "llm_judged": sum(s["method"] == "llm" for s in samples),
                         "rule_scored": sum(s["method"] != "llm" for s in samples),
                         "invalid_judgments": sum(1 for s in samples if s.get("judgment_valid") is False)}
    metrics["invalid_policy"] = invalid_policy
    return metrics
