"""IFEval (Zhou et al., 2023): 541 prompts with 25 verifiable instruction types.

The checkers are lm-eval's IFEval instruction registry (the official google-research checkers); this module only
drives them exactly as the official `evaluation_main.py` does:
- strict: the response as is; an empty (whitespace-only) response fails every instruction;
- loose: an instruction passes if any of 8 variants passes (the response, with `*` removed, with its first line,
  last line or both removed, and those three with `*` removed); empty variants never pass.

Two sources of run-to-run variation in the official scorer are pinned, and the record says so:
- `langdetect` is seeded (DetectorFactory.seed = 0), as the benchmark notes recommend;
- `keywords:letter_frequency` with a one-character non-letter (keys 1122 and 1129 ask for `#` and `!`): the
  official google-research checker (`LetterFrequencyChecker.build_description`, current code) and lm-eval's copy
  replace any letter outside a-z with `random.choice(string.ascii_letters)`, so their verdicts on these two keys
  change with Python's random state. spar makes the deterministic choice of counting the character as given (as
  an earlier revision of the official checker did); this is a deliberate deviation, listed in the README.
- any other argument a checker finds unusable makes both implementations draw from Python's `random`; every
  instruction is built under its own fixed seed, derived from (prompt key, instruction index, instruction id), so
  such verdicts are reproducible too (the official ones are random). The global random state is left untouched.

`spar score ifeval` reads responses made elsewhere (`match_outputs`, `FORMATS`): spar's JSONL (`key` or `prompt`,
and `response`), or lm-eval's `--log_samples` file for the ifeval task (samples_ifeval_<date>.jsonl, as
lm_eval/evaluator.py and loggers/evaluation_tracker.py write it in lm-eval 0.4: `doc` with the dataset row,
`resps` = [[generation]], `filtered_resps` = [response scored]; spar scores `filtered_resps[0]`, the text lm-eval's
`process_results` received). The format is detected from the first line unless given.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evaluators.base import Evaluator, GenerationConfig, LoadedData, ScoreResult
from harness.core.backends.base import derive_seed
from harness.core.data import (LineFilter, attach_coverage, check_coverage, coverage, iter_jsonl, load_hub_rows, locate,
                               require, sha256_of)
from harness.core.errors import DataError, SparError
from harness.core.types import ChatRequest, Message

HUB_ID = "google/IFEval"
LOCAL_FILE = "ifeval/input_data.jsonl"
QUICKSTART_FILE = Path(__file__).parent / "data" / "ifeval_quickstart.jsonl"
LANGDETECT_SEED = 0
METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")
#: `spar score ifeval --format`: spar's own JSONL, or lm-eval's `--log_samples` file for the ifeval task
FORMATS = ("jsonl", "lm-eval")
FORMAT_HELP = ("jsonl (one object per line: `key` or `prompt`, and `response`), lm-eval (lm-eval --log_samples "
               "output samples_ifeval_*.jsonl: `doc` and `filtered_resps`/`resps`)")


@dataclass(frozen=True)
class IFEvalItem:
    key: int
    prompt: str
    instruction_id_list: tuple[str, ...]
    kwargs: tuple[dict, ...]


def _registry() -> dict:
    """lm-eval's instruction registry, imported only after punkt_tab is in place (its import would download)."""
    from harness.core.nltk_setup import ensure_punkt_tab

    ensure_punkt_tab()
    import langdetect

    langdetect.DetectorFactory.seed = LANGDETECT_SEED
    from lm_eval.tasks.ifeval import instructions_registry

    # The language checks log an error for every text langdetect cannot read (for example "***"); the verdict is
    # unaffected (the official checker passes such text), so those lines are noise on a 541-prompt run.
    logging.getLogger("lm_eval.tasks.ifeval.instructions").setLevel(logging.CRITICAL)
    return instructions_registry.INSTRUCTION_DICT


def loose_variants(response: str) -> list[str]:
    """The official loose variants, in the official order, without duplicates or empty strings."""
    lines = response.split("\n")
    first, last, both = ("\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip())
    variants = [response, response.replace("*", ""), first, last, both,
                first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]
    seen: set[str] = set()
    return [v for v in variants if v.strip() and not (v in seen or seen.add(v))]


def parse_items(rows: list[dict], path: Any, registry: dict,
                line_numbers: Sequence[int] | None = None) -> list[IFEvalItem]:
    """The IFEval items of data rows; errors name the file's line (`line_numbers`, default 1, 2, ...) and field."""
    items, first_line = [], {}  # key -> line of its first row
    for lineno, row in zip(line_numbers or range(1, len(rows) + 1), rows):
        key = require(row, "key", int, path, lineno)
        if key in first_line:  # one keyed response would be scored against two prompts
            raise DataError(path, f"key {key} appears twice (lines {first_line[key]} and {lineno}); keys must be "
                                  f"unique", lineno, "key")
        first_line[key] = lineno
        prompt = require(row, "prompt", str, path, lineno)
        ids = require(row, "instruction_id_list", list, path, lineno)
        kwargs = require(row, "kwargs", list, path, lineno)
        if len(ids) != len(kwargs):
            raise DataError(path, f"{len(ids)} instruction ids but {len(kwargs)} kwargs entries", lineno, "kwargs")
        for inst in ids:
            if inst not in registry:
                raise DataError(path, f"unknown instruction id {inst!r}", lineno, "instruction_id_list")
        for kw in kwargs:
            if not isinstance(kw, dict):
                raise DataError(path, "each kwargs entry must be an object", lineno, "kwargs")
        # Hub rows carry every argument name with None for the unused ones; the official data omits them.
        clean = tuple({k: v for k, v in kw.items() if v is not None} for kw in kwargs)
        items.append(IFEvalItem(key, prompt, tuple(ids), clean))
    return items


class IFEvalEvaluator(Evaluator):
    name = "ifeval"
    searchable = True
    headline = METRICS + ("average",)
    formats = FORMATS

    def __init__(self, options=None, judge=None) -> None:
        super().__init__(options, judge)
        self._registry_cache: dict | None = None

    @property
    def registry(self) -> dict:
        if self._registry_cache is None:
            self._registry_cache = _registry()
        return self._registry_cache

    def describe(self) -> dict:
        return {"checkers": "lm_eval.tasks.ifeval.instructions_registry", "langdetect_seed": LANGDETECT_SEED,
                "letter_frequency_non_letter": "counted as given (deterministic; the official checker and lm-eval "
                                               "substitute a random letter)",
                "unusable_argument_policy": "python random seeded per instruction with "
                                            "derive_seed('ifeval', key, index, instruction_id)",
                "loose_variants": 8, "kwargs_none_dropped": True}

    # -- data ---------------------------------------------------------------------------------------------------
    def load(self, source: str | None, limit: int | None = None) -> LoadedData:
        source = locate(source, HUB_ID, LOCAL_FILE)
        if source == "quickstart":
            source = str(QUICKSTART_FILE)
        path = Path(source)
        if path.is_dir():
            path = path / "input_data.jsonl" if (path / "input_data.jsonl").exists() else path / LOCAL_FILE
        if path.exists() or source.endswith((".jsonl", ".json")):
            numbered = iter_jsonl(path)
            rows, provenance = [row for _, row in numbered], {"path": str(path.resolve()), "sha256": sha256_of(path)}
            line_numbers: list[int] | None = [line for line, _ in numbered]
        else:
            (rows, provenance), line_numbers = load_hub_rows(source), None
        items = parse_items(rows, path if "path" in provenance else source, self.registry, line_numbers)
        left_out = items[limit:] if limit is not None else []
        if limit is not None:
            items = items[:limit]
        provenance.update(num_items=len(items), limit=limit)
        data = LoadedData(items, provenance)
        # what `--limit` left out: `match_outputs` ignores answers to these instead of calling them unknown
        ids = [it.key for it in left_out] + [it.prompt for it in left_out]
        data.left_out = frozenset(ids)  # type: ignore[attr-defined]
        return data

    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]:
        system = (Message("system", config.system_prompt),) if config.system_prompt else ()
        return [ChatRequest(system + (Message("user", it.prompt),), config.sampling, seed=config.seed)
                for it in data.items]

    def match_outputs(self, data: LoadedData, path: str, fmt: str | None = None, allow_partial: bool = False,
                      skip_invalid: bool = False) -> tuple[LoadedData, list[str]]:
        """Responses made elsewhere, paired with the prompts by `key` (else by `prompt` text); see `FORMATS`.

        A line for a prompt that `--limit` left out is ignored (counted in coverage.outside_selection); any other
        bad line (malformed, wrong field type, unknown key/prompt, a prompt answered twice, a key whose prompt
        differs) is an error naming file:line and field, or with `skip_invalid` counted by reason in
        `source["excluded"]` and left out (the first answer of a prompt is kept)."""
        file, fmt = _outputs_file(Path(path), fmt)
        filt = LineFilter(skip_invalid)
        errors: list[DataError] | None = [] if skip_invalid else None
        rows = iter_jsonl(file, errors)
        filt.take(errors or ())
        if fmt is None:
            fmt = detect_format(file, rows)
        by_key = {it.key: it for it in data.items}
        by_prompt = {it.prompt: it for it in data.items}
        left_out = getattr(data, "left_out", frozenset())
        found: dict[int, tuple[int, str]] = {}  # item key -> (line, response)
        outside = 0
        for line, row in rows:
            try:
                key, prompt, response, key_field, prompt_field = _read_row(row, fmt, file, line)
            except DataError as err:
                filt.bad("bad_field", err)
                continue
            if key is not None:
                item = by_key.get(key)
                if item is None:
                    if key in left_out:
                        outside += 1
                    else:
                        filt.bad("unknown_item", DataError(file, f"key {key} is not in the IFEval data", line,
                                                           key_field))
                    continue
                if prompt is not None and prompt != item.prompt:
                    filt.bad("mismatch", DataError(file, f"differs from the IFEval prompt of key {key}: "
                                                         f"{prompt[:60]!r}", line, prompt_field))
                    continue
            else:
                item = by_prompt.get(prompt)
                if item is None:
                    if prompt in left_out:
                        outside += 1
                    else:
                        filt.bad("unknown_item", DataError(file, f"prompt not found in the IFEval data: "
                                                                 f"{prompt[:60]!r}", line, prompt_field))
                    continue
            if item.key in found:
                filt.bad("duplicate", DataError(file, f"a second response for key {item.key} (first at line "
                                                      f"{found[item.key][0]})", line,
                                                key_field if key is not None else prompt_field))
                continue
            found[item.key] = (line, response)
        matched = [it for it in data.items if it.key in found]  # the data's order
        per_type: dict[str, dict[str, int]] = {}
        for it in data.items:
            for inst in it.instruction_id_list:
                row = per_type.setdefault(inst, {"scored": 0, "total": 0})
                row["total"] += 1
                row["scored"] += it.key in found
        cov = coverage(len(matched), len(data.items), dict(sorted(per_type.items())), outside)
        missing = next((it.key for it in data.items if it.key not in found), None)
        check_coverage(file, cov, "IFEval prompts", allow_partial, None if missing is None else f"key {missing}")
        source = dict(data.source, responses={"path": str(file.resolve()), "sha256": sha256_of(file), "format": fmt},
                      num_items=len(matched), coverage=cov)
        if skip_invalid:
            source.update(excluded=dict(filt.counts), excluded_examples=dict(filt.first))
        return LoadedData(matched, source), [found[it.key][1] for it in matched]

    # -- scoring ------------------------------------------------------------------------------------------------
    def _build(self, item: IFEvalItem, index: int):
        inst_id = item.instruction_id_list[index]
        instruction = self.registry[inst_id](inst_id)
        state = random.getstate()
        random.seed(derive_seed("ifeval", item.key, index, inst_id))
        try:
            instruction.build_description(**item.kwargs[index])
            _count_letter_as_given(inst_id, instruction, item.kwargs[index])
            args = instruction.get_instruction_args()
            if args and "prompt" in args:
                instruction.build_description(prompt=item.prompt)
        except (TypeError, ValueError) as exc:
            raise SparError(f"IFEval key {item.key}: instruction {inst_id!r} rejects its kwargs: {exc}") from None
        finally:
            random.setstate(state)
        return instruction

    def score_one(self, item: IFEvalItem, response: str) -> dict:
        variants = loose_variants(response)
        strict: list[bool] = []
        loose: list[bool] = []
        errors = 0
        for index in range(len(item.instruction_id_list)):
            instruction = self._build(item, index)
            verdicts: dict[str, bool] = {}

            def check(text: str) -> bool:
                nonlocal errors
                if text not in verdicts:
                    try:
                        verdicts[text] = bool(instruction.check_following(text))
                    except Exception:  # a checker crash on odd text fails the check; it is counted
                        errors += 1
                        verdicts[text] = False
                return verdicts[text]

            strict.append(bool(response.strip()) and check(response))
            loose.append(any(check(v) for v in variants))
        return {"key": item.key, "prompt": item.prompt, "response": response,
                "instruction_id_list": list(item.instruction_id_list),
                "follow_instruction_list_strict": strict, "follow_instruction_list_loose": loose,
                "follow_all_instructions_strict": all(strict), "follow_all_instructions_loose": all(loose),
                "checker_errors": errors}

    def score(self, data: LoadedData, responses: Sequence[str], judgments=None) -> ScoreResult:
        if len(responses) != len(data.items):
            raise SparError(f"ifeval: {len(responses)} responses for {len(data.items)} prompts")
        samples = [self.score_one(it, r if isinstance(r, str) else "") for it, r in zip(data.items, responses)]
        return ScoreResult(samples, attach_coverage(compute_metrics(samples), data.source))

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
        """Instruction-level accuracy per instruction group (the part of the id before ':', e.g. `keywords`); the
        25 single types are in metrics.json (`per_instruction_type`)."""
        groups: dict[str, list[float]] = {}
        for inst, row in metrics.get("per_instruction_type", {}).items():
            acc = groups.setdefault(inst.split(":")[0], [0, 0.0, 0.0])
            acc[0] += row["count"]
            acc[1] += row["strict_acc"] * row["count"]
            acc[2] += row["loose_acc"] * row["count"]
        rows = [[name, int(n), strict / n, loose / n] for name, (n, strict, loose) in sorted(groups.items())]
        return [("IFEval by instruction group", ["group", "instructions", "inst_strict_acc", "inst_loose_acc"],
                 rows)] if rows else []



def detect_format(path: Path, rows: list[tuple[int, dict]]) -> str:
    """The outputs format from the file's first object: lm-eval's samples have `doc` and `resps`/`filtered_resps`;
    spar's JSONL has `response`."""
    if not rows:
        raise SparError(f"{path}: no responses in the file")
    line, row = rows[0]
    if "doc" in row and ("filtered_resps" in row or "resps" in row):
        return "lm-eval"
    if "response" in row or "prompt" in row or "key" in row:
        return "jsonl"  # spar's own format; a missing `response` is then named by the line check
    fields = ", ".join(sorted(row)[:8]) or "none"
    raise SparError(f"{path}:{line}: not an IFEval outputs format (fields: {fields}); --format accepts: "
                    f"{FORMAT_HELP}")


def _outputs_file(path: Path, fmt: str | None) -> tuple[Path, str | None]:
    if fmt is not None and fmt not in FORMATS:
        raise SparError(f"--format {fmt!r}: ifeval accepts {', '.join(FORMATS)}")
    if not path.is_dir():
        if not path.exists():
            raise SparError(f"{path}: no such file")
        return path, fmt
    if fmt == "jsonl":
        raise SparError(f"{path}: a folder; --format jsonl reads one file")
    # lm-eval --output_path DIR --log_samples writes DIR/<model>/samples_ifeval_<date>.jsonl
    found = sorted(path.rglob("samples_ifeval_*.jsonl"))
    if len(found) != 1:
        what = "no samples_ifeval_*.jsonl" if not found else f"{len(found)} samples_ifeval_*.jsonl files"
        raise SparError(f"{path}: a folder with {what} (lm-eval --log_samples output); give the file")
    return found[0], "lm-eval"


def _read_row(row: dict, fmt: str, path: Path, line: int) -> tuple[int | None, str | None, str, str, str]:
    """(key or None, prompt or None, response, key field name, prompt field name) of one outputs line."""
    if fmt == "lm-eval":
        doc = require(row, "doc", dict, path, line)
        key = require(doc, "key", int, path, line, "doc.key")
        prompt = require(doc, "prompt", str, path, line, "doc.prompt") if "prompt" in doc else None
        # lm-eval scores filtered_resps[0] (process_results(doc, [req.filtered_resps[filter] ...])[0]); `resps`
        # (a list of lists: the raw generations per request) is the fallback for files without it
        if "filtered_resps" in row:
            resps = require(row, "filtered_resps", list, path, line)
            if not resps:
                raise DataError(path, "empty list", line, "filtered_resps")
            response = require({"r": resps[0]}, "r", str, path, line, "filtered_resps[0]")
        else:
            resps = require(row, "resps", list, path, line)
            first = require({"r": resps[0]} if resps else {}, "r", list, path, line, "resps[0]")
            response = require({"r": first[0]} if first else {}, "r", str, path, line, "resps[0][0]")
        return key, prompt, response, "doc.key", "doc.prompt"
    response = require(row, "response", str, path, line)
    key = require(row, "key", int, path, line) if row.get("key") is not None else None
    prompt = require(row, "prompt", str, path, line) if key is None or row.get("prompt") is not None else None
    return key, prompt, response, "key", "prompt"


def _count_letter_as_given(inst_id: str, instruction: Any, kwargs: dict) -> None:
    """The official checker and lm-eval replace a one-character non-letter for letter_frequency with a random
    letter; put the requested character back so the check counts it: a deterministic verdict (a documented
    deviation)."""
    letter = kwargs.get("letter")
    if inst_id == "keywords:letter_frequency" and isinstance(letter, str) and len(letter) == 1:
        instruction._letter = letter.strip().lower()


def compute_metrics(samples: Sequence[dict]) -> dict:
    """The four official accuracies (fractions), their mean (the SPaR tables' "Avg"), and a per-type breakdown."""
    if not samples:
        raise SparError("ifeval: no samples to score")
    strict = [v for s in samples for v in s["follow_instruction_list_strict"]]
    loose = [v for s in samples for v in s["follow_instruction_list_loose"]]
    metrics: dict[str, Any] = {
        "prompt_level_strict_acc": sum(s["follow_all_instructions_strict"] for s in samples) / len(samples),
        "inst_level_strict_acc": sum(strict) / len(strict),
        "prompt_level_loose_acc": sum(s["follow_all_instructions_loose"] for s in samples) / len(samples),
        "inst_level_loose_acc": sum(loose) / len(loose),
    }
    metrics["average"] = sum(metrics[m] for m in METRICS) / len(METRICS)
    per_type: dict[str, dict[str, float]] = {}
    for s in samples:
        for inst, st, lo in zip(s["instruction_id_list"], s["follow_instruction_list_strict"],
                                s["follow_instruction_list_loose"]):
            row = per_type.setdefault(inst, {"count": 0, "strict": 0, "loose": 0})
            row["count"] += 1
            row["strict"] += st
            row["loose"] += lo
    metrics["per_instruction_type"] = {
        k: {"count": v["count"], "strict_acc": v["strict"] / v["count"], "loose_acc": v["loose"] / v["count"]}
        for k, v in sorted(per_type.items())}
    metrics["counts"] = {"prompts": len(samples), "instructions": len(strict),
                         "empty_responses": sum(not s["response"].strip() for s in samples),
                         "checker_errors": sum(s.get("checker_errors", 0) for s in samples)}
    return metrics
