"""How each benchmark's per-sample records are shown in `spar view`'s sample browser (evaluators layer: the only
place that knows what a benchmark's `samples.jsonl` fields mean; `harness/reports/view/` names no benchmark).

`view_for(name)` gives a `SampleView`: its `facets` are the filters the browser offers, and `card(sample)` turns one
record into a `Card` (title, pass/fail status, facet values, a checklist, the texts to read). Per benchmark:

- `ifeval`: filter by failed instruction type (strict), by instruction type present; the checklist is each
  instruction's strict and loose verdict; texts: prompt and response.
- `followbench`: filter by category, level and how it was checked (LLM judge or rule); the checklist is the judge's
  per-constraint verdict; texts: instruction, response and the judge's outputs.
- `llmbar`: filter by subset, by verdict (right / wrong / no verdict) and by which judgment was wrong (output 1 or 2
  for the pointwise protocol, original or swapped order for the pairwise one); texts: the pair's instruction and two
  outputs when the data files the run record names are still readable, and the judge's outputs.
- `refinement`: filter by whether the refinement parsed; texts: prompt, response, critique, the refiner's reply and
  the judgments.
- anything else (e.g. `lm-eval:<task>`): a generic card of the record's text fields, pass/fail from `acc` /
  `exact_match` style numeric fields when there is one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PASS, FAIL, INVALID = "pass", "fail", "invalid"


@dataclass(frozen=True)
class Facet:
    """One filter of the sample browser: `key` indexes `Card.facets`; a sample may have several values (e.g. all its
    failed instruction types) or none."""

    key: str
    label: str


@dataclass
class Check:
    """One line of a card's checklist: a name, its verdict (True / False / None: no verdict) and a detail."""

    name: str
    ok: bool | None
    detail: str = ""


@dataclass
class Card:
    title: str
    status: str = ""  # PASS, FAIL, INVALID or "" (unknown)
    status_text: str = ""
    facets: dict[str, list[str]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (label, text), shown verbatim (escaped)
    notes: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def _yes_no(value: Any) -> str:
    return {1: "Yes", 0: "No", True: "Yes", False: "No"}.get(value, "no verdict") if value is not None \
        else "no verdict"


class SampleView:
    """The generic view; subclasses name their facets and build cards."""

    facets: tuple[Facet, ...] = ()
    #: record fields shown as texts by the generic card, in this order when present
    text_fields: tuple[str, ...] = ("prompt", "instruction", "input", "question", "response", "output", "target",
                                    "refine_output", "judgment", "judgments")
    #: numeric / boolean fields read as the sample's outcome by the generic card (the first present wins)
    outcome_fields: tuple[str, ...] = ("acc", "exact_match", "correct", "follows", "pass", "passed")

    def prepare(self, data_entry: dict) -> list[str]:
        """Read what the cards need beyond the samples (the run record's `data` entry of this benchmark); returns
        notes for the reader (e.g. data files that could not be read)."""
        return []

    def title(self, sample: dict, position: int) -> str:
        for key in ("key", "doc_id", "id", "index"):
            if key in sample and not isinstance(sample[key], (dict, list)):
                return f"{key} {sample[key]}"
        return f"sample {position + 1}"

    def card(self, sample: dict, position: int = 0) -> Card:
        card = Card(self.title(sample, position))
        for name in self.outcome_fields:
            value = sample.get(name)
            if isinstance(value, (bool, int, float)):
                card.status = PASS if float(value) >= 1.0 else FAIL
                card.status_text = f"{name} = {value}"
                break
        shown = set()
        for name in self.text_fields:
            if name in sample and sample[name] not in (None, "", []):
                card.texts.append((name, _text(sample[name])))
                shown.add(name)
        rest = {k: v for k, v in sample.items() if k not in shown}
        if rest:
            card.texts.append(("other fields", json.dumps(rest, ensure_ascii=False, indent=1, default=str)))
        return card


class IFEvalView(SampleView):
    facets = (Facet("failed", "failed instruction (strict)"), Facet("instruction", "instruction type"),
              Facet("group", "failed instruction group"))

    def card(self, sample: dict, position: int = 0) -> Card:
        ids = [str(i) for i in sample.get("instruction_id_list") or []]
        strict = list(sample.get("follow_instruction_list_strict") or [])
        loose = list(sample.get("follow_instruction_list_loose") or [])
        failed = [i for i, ok in zip(ids, strict) if not ok]
        card = Card(f"key {sample.get('key', position)}")
        card.status = PASS if sample.get("follow_all_instructions_strict") else FAIL
        card.status_text = (f"strict {sum(map(bool, strict))}/{len(ids)} · loose {sum(map(bool, loose))}/{len(ids)} "
                            "instructions followed")
        card.facets = {"failed": failed or ["(none)"], "instruction": ids,
                       "group": list(dict.fromkeys(i.split(":")[0] for i in failed)) or ["(none)"]}
        for k, inst in enumerate(ids):
            s = strict[k] if k < len(strict) else None
            lo = loose[k] if k < len(loose) else None
            card.checks.append(Check(inst, bool(s) if s is not None else None,
                                     f"strict {'✓' if s else '✗'} · loose {'✓' if lo else '✗'}"))
        if sample.get("checker_errors"):
            card.notes.append(f"{sample['checker_errors']} checker error(s) on this response (counted as failed)")
        card.texts = [("prompt", _text(sample.get("prompt"))), ("response", _text(sample.get("response")))]
        return card


class FollowBenchView(SampleView):
    facets = (Facet("category", "category"), Facet("level", "level"), Facet("checked", "checked by"))

    def card(self, sample: dict, position: int = 0) -> Card:
        method = str(sample.get("method", ""))
        level = sample.get("level")
        card = Card(f"{sample.get('category', '?')} · example {sample.get('example_id', '?')} · level {level}")
        judged = method == "llm"
        if judged and sample.get("judgment_valid") is False:
            card.status, card.status_text = INVALID, "the judge's output could not be parsed"
        else:
            card.status = PASS if sample.get("hard") else FAIL
            card.status_text = f"hard {sample.get('hard')} · soft {float(sample.get('soft') or 0):.2f}"
        card.facets = {"category": [str(sample.get("category", "?"))], "level": [f"level {level}"],
                       "checked": ["LLM judge" if judged else f"rule ({method or '?'})"]}
        constraints = sample.get("constraints")
        if isinstance(constraints, list):
            for k, ok in enumerate(constraints, 1):
                card.checks.append(Check(f"constraint {k}", bool(ok), "satisfied" if ok else "not satisfied"))
        votes = sample.get("votes")
        if isinstance(votes, dict):
            card.notes.append("judge votes: " + ", ".join(f"{k}={v}" for k, v in votes.items()))
        card.texts = [("instruction", _text(sample.get("instruction"))), ("response", _text(sample.get("response")))]
        for k, text in enumerate(sample.get("judgments") or [], 1):
            card.texts.append((f"judge output {k}", _text(text)))
        return card


class LLMBarView(SampleView):
    facets = (Facet("subset", "subset"), Facet("verdict", "verdict"), Facet("wrong", "wrong judgment"))

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, int], dict] = {}

    def prepare(self, data_entry: dict) -> list[str]:
        """The pairs (instruction, two outputs) from the subset files the run record names, when still there."""
        notes = []
        subsets = (data_entry or {}).get("subsets") or {}
        for subset, info in subsets.items():
            path = Path(str((info or {}).get("path") or ""))
            if not path.is_file():
                notes.append(f"{subset}: data file {path} not found (instructions and outputs not shown)")
                continue
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                notes.append(f"{subset}: cannot read {path} ({exc})")
                continue
            if isinstance(rows, list):
                for index, row in enumerate(rows):
                    if isinstance(row, dict):
                        self.pairs[(str(subset), index)] = row
        return notes

    def card(self, sample: dict, position: int = 0) -> Card:
        subset = str(sample.get("subset", "?"))
        label = sample.get("label")
        card = Card(f"{subset} · pair {sample.get('index', position)} · better output {label}")
        outcomes: list[tuple[str, bool | None, str]] = []
        if "predicted" in sample:  # pointwise: a Yes/No verdict on each output
            truth = sample.get("truth") or []
            votes = sample.get("votes") or []
            for k, pred in enumerate(sample.get("predicted") or []):
                want = truth[k] if k < len(truth) else None
                vote = votes[k] if k < len(votes) and isinstance(votes[k], dict) else {}
                tally = f" (votes yes {vote.get('yes', 0)} / no {vote.get('no', 0)} / invalid " \
                        f"{vote.get('invalid', 0)})" if vote else ""
                outcomes.append((f"output {k + 1}", None if pred is None else pred == want,
                                 f"judged {_yes_no(pred)}, should be {_yes_no(want)}{tally}"))
        else:  # pairwise: which output is better, asked in both orders
            for name, key in (("original order", "choice_original"), ("swapped order", "choice_swapped")):
                if key in sample:
                    choice = sample.get(key)
                    outcomes.append((name, None if choice is None else choice == label,
                                     f"chose output {choice if choice is not None else '(none)'}, better is {label}"))
        card.checks = [Check(name, ok, detail) for name, ok, detail in outcomes]
        wrong = [name for name, ok, _ in outcomes if ok is False]
        missing = [name for name, ok, _ in outcomes if ok is None]
        if wrong:
            card.status, card.status_text, verdict = FAIL, "wrong: " + ", ".join(wrong), "wrong"
        elif missing:
            card.status, card.status_text, verdict = INVALID, "no verdict: " + ", ".join(missing), "no verdict"
        else:
            card.status, card.status_text, verdict = PASS, "right", "right"
        card.facets = {"subset": [subset], "verdict": [verdict], "wrong": wrong or ["(none)"]}
        pair = self.pairs.get((subset, sample.get("index"))) if isinstance(sample.get("index"), int) else None
        if pair is not None:
            card.texts += [("instruction", _text(pair.get("input"))), ("output 1", _text(pair.get("output_1"))),
                           ("output 2", _text(pair.get("output_2")))]
        judgments = sample.get("judgments") or []
        for k, entry in enumerate(judgments):
            texts = entry if isinstance(entry, list) else [entry]
            where = outcomes[k][0] if k < len(outcomes) else f"judgment {k + 1}"
            for j, text in enumerate(texts, 1):
                if text is not None:
                    card.texts.append((f"judge on {where}" + (f" #{j}" if len(texts) > 1 else ""), _text(text)))
        return card


class RefinementView(SampleView):
    facets = (Facet("parsed", "refinement parsed"),)

    def card(self, sample: dict, position: int = 0) -> Card:
        card = Card(f"item {position + 1}")
        card.status = PASS if sample.get("follows") else FAIL
        vote = sample.get("vote") if isinstance(sample.get("vote"), dict) else {}
        card.status_text = ("refinement judged to follow the prompt" if sample.get("follows") else
                            "no parseable refinement" if not sample.get("parsed") else
                            "refinement judged not to follow the prompt")
        if vote:
            card.status_text += f" (votes yes {vote.get('yes', 0)} / no {vote.get('no', 0)})"
        card.facets = {"parsed": ["parsed" if sample.get("parsed") else "not parsed"]}
        for label, key in (("prompt", "prompt"), ("response", "response"), ("critique", "critique"),
                           ("refiner reply", "refine_output"), ("refined", "refined")):
            if sample.get(key):
                card.texts.append((label, _text(sample[key])))
        for k, text in enumerate(sample.get("judgments") or [], 1):
            card.texts.append((f"judgment {k}", _text(text)))
        return card


VIEWS: dict[str, type[SampleView]] = {"ifeval": IFEvalView, "followbench": FollowBenchView, "llmbar": LLMBarView,
                                      "refinement": RefinementView}


def view_for(benchmark: str) -> SampleView:
    """A fresh view of `benchmark`'s samples (the generic view for benchmarks without one)."""
    return VIEWS.get(benchmark, SampleView)()


__all__ = ["FAIL", "INVALID", "PASS", "Card", "Check", "Facet", "SampleView", "VIEWS", "view_for"]
