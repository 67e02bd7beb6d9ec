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
from harness.data import (LineFilter, attach_coverage, check_coverage, coverage, iter_jsonl, load_hub_rows, locate,
                          read_json_list, require, sha256_of)
from harness.errors import DataError, SparError
from harness.options import option, options
from harness.types import ChatRequest, Message

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
    headline = tuple(f"ssr_lv{k}" for k in LEVELS) + ("ssr_avg", "hsr_avg")  # CSL (a count) is in metrics.json

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
                "overall": "mean over the scored categories, per level"}

    def load(self, source: str | None, limit: int | None = None) -> LoadedData:
        source = locate(source, HUB_ID, LOCAL_DIR)
        path = Path(source)
        items: list[FBItem] = []
        provenance: dict[str, Any] = {"categories": {}}
        if path.is_dir():
            for cat in self.categories:
                file = path / f"{cat}_constraints.json"
                if not file.is_file():
                    raise SparError(f"{path}: no {file.name} (expected FollowBench's data/*.json layout)")
                rows = read_json_list(file, "items")
                cat_items = _rows_to_items(rows, cat, file)
                items += cat_items[:limit] if limit else cat_items
                provenance["categories"][cat] = {"path": str(file.resolve()), "sha256": sha256_of(file)}
        elif path.exists():
            raise SparError(f"{source}: FollowBench data is a folder of <category>_constraints.json files")
        else:
            rows, provenance["hub"] = load_hub_rows(source)
            for cat in self.categories:
                cat_items = _rows_to_items([r for r in rows if r.get("category") == cat], cat, source)
                items += cat_items[:limit] if limit else cat_items
        provenance.update(num_items=len(items), limit=limit, limit_applies_to="items per category")
        return LoadedData(items, provenance)

    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]:
        system = (Message("system", config.system_prompt),) if config.system_prompt else ()
        return [ChatRequest(system + (Message("user", it.instruction),), config.sampling, seed=config.seed)
                for it in data.items]

    def judge_requests(self, data: LoadedData, responses: Sequence[str]) -> list[ChatRequest]:
        return [self.judge.request((Message("user", judge_prompt(it.category, it.chain, r)),))
                for it, r in zip(data.items, responses) if it.method == "llm"]

    def match_outputs(self, data: LoadedData, path: str, fmt: str | None = None, allow_partial: bool = False,
                      skip_invalid: bool = False) -> tuple[LoadedData, list[str]]:
        from harness.data import read_jsonl

        by_instruction = {it.instruction: it for it in data.items}
        matched, responses, seen = [], [], set()
        for line, row in enumerate(read_jsonl(path), 1):
            prompt = require(row, "prompt", str, path, line)
            response = require(row, "response", str, path, line)
            item = by_instruction.get(prompt)
            if item is None:
                raise DataError(path, f"instruction not found in FollowBench: {prompt[:60]!r}", line, "prompt")
            if prompt in seen:
                raise DataError(path, "a second response for this instruction", line, "prompt")
            seen.add(prompt)
            matched.append(item)
            responses.append(response)
        if not matched:
            raise SparError(f"{path}: no responses in the file")
        order = {id(it): i for i, it in enumerate(data.items)}  # keep the data's order (level chains for CSL)
        pairs = sorted(zip(matched, responses), key=lambda p: order[id(p[0])])
        source = dict(data.source, responses={"path": str(Path(path).resolve()), "sha256": sha256_of(path)},
                      num_items=len(pairs))
        return LoadedData([p[0] for p in pairs], source), [p[1] for p in pairs]

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
                parsed = parse_judgment(texts[0], it.level)
                sample["judgment"] = texts[0]
                sample["judgment_valid"] = parsed is not None
                hard, soft = parsed if parsed is not None else (0, 0.0)
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
        return ScoreResult(samples, compute_metrics(samples, self.invalid_policy))


def compute_metrics(samples: Sequence[dict], invalid_policy: str = "zero") -> dict:
    per_category: dict[str, dict] = {}
    for cat in dict.fromkeys(s["category"] for s in samples):
        rows = [s for s in samples if s["category"] == cat]
        counted = [s for s in rows if invalid_policy == "zero" or s.get("judgment_valid", True)]
        hsr, ssr, n = {}, {}, {}
        for k in LEVELS:
            at = [s for s in counted if s["level"] == k]
            n[k] = len(at)
            hsr[k] = sum(s["hard"] for s in at) / len(at) if at else None
            ssr[k] = sum(s["soft"] for s in at) / len(at) if at else None
        groups: dict[int, dict[int, int]] = {}
        for s in rows:
            groups.setdefault(s["example_id"], {})[s["level"]] = s["hard"] if s.get("judgment_valid", True) else 0
        complete = [g for g in groups.values() if set(g) == set(LEVELS)]
        csl = [next((k - 1 for k in LEVELS if g[k] != 1), 5) for g in complete]
        per_category[cat] = {
            "hsr": {str(k): v for k, v in hsr.items()}, "ssr": {str(k): v for k, v in ssr.items()},
            "csl": sum(csl) / len(csl) if csl else None, "csl_groups": len(csl), "items_per_level": n,
            "invalid_judgments": sum(1 for s in rows if s.get("judgment_valid") is False),
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
