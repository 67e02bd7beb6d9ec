"""LLMBar judgments made elsewhere: spar's JSONL and the official LLMBar evaluator's `result.json` files (one file,
or the `evaluators/<model>/<strategy>/result.json` tree), matched to the pairs of the data, with one-line errors
naming file, line and field. `LLMBarReaders` gives `LLMBarEvaluator` its `match_outputs`; the verdict rules the
files are read with live in `evaluators.llmbar.verdict_rules`.

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
from pathlib import Path
from typing import Any

from evaluators.base import LoadedData
from evaluators.llmbar.verdict_rules import SUBSETS, Judgment, Pair, needs_synthesis, official_parser
from harness.core.data import DuplicateKey, LineFilter, iter_jsonl, no_duplicate_keys, require, sha256_of
from harness.core.errors import DataError, SparError

FORMATS = ("jsonl", "llmbar-result")


class LLMBarReaders:
    """The judgment-file readers of `LLMBarEvaluator` (a mixin): they read the evaluator's `protocol`, `options`
    (`pairwise_parser`, `result_evaluator`), `judge` (`votes`) and `score5`."""

    protocol: str
    options: Any
    judge: Any
    score5: bool

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
            if protocol == "pairwise" and needs_synthesis(parser, o, s) and (o.synthesis is None or
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
