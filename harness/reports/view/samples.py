"""The per-sample browser of `spar view` as plain data: per run and benchmark, a card per sample (its checks,
notes and texts) with the facets the filter bar offers (`evaluators.views` says what a benchmark's samples mean)."""

from __future__ import annotations

import json
from typing import Any

from evaluators.views import FAIL, INVALID, PASS, Card, view_for
from harness.core.errors import SparError
from harness.reports.runs import Run
from harness.reports.view.gather import Summary, ViewOptions, clip, facets_json, natural

STATUS_FACET = "_status"
STATUS_LABELS = {PASS: "pass", FAIL: "fail", INVALID: "no verdict", "": "unknown"}


def filter_bar(facets: list[tuple[str, str]], items: list[dict[str, list[str]]], total: int) -> dict:
    """The `filters` macro's data: a select per facet that has values (each value with its count), and the total."""
    selects = []
    for key, label in facets:
        counts: dict[str, int] = {}
        for values in items:
            for v in dict.fromkeys(values.get(key) or []):
                counts[v] = counts.get(v, 0) + 1
        if not counts:
            continue
        ordered = sorted(counts, key=lambda v: (v.startswith("("), natural(v)))
        selects.append({"key": key, "label": label, "all": len(items),
                        "options": [{"value": v, "count": counts[v]} for v in ordered]})
    return {"selects": selects, "total": total}


def card_data(card: Card, facets: dict[str, list[str]], limit: int, uid: str) -> dict:
    """One sample's card: status, checks (✓ ✗ ?), notes and texts (cut at `limit` characters)."""
    status = card.status if card.status in STATUS_LABELS else ""
    checks = [{"cls": "ok" if c.ok else "bad" if c.ok is False else "na",
               "mark": "✓" if c.ok else "✗" if c.ok is False else "?", "name": c.name, "detail": c.detail}
              for c in card.checks]
    return {"uid": uid, "status": status or "na", "status_label": STATUS_LABELS[status], "facets": facets_json(facets),
            "title": card.title, "status_text": card.status_text, "checks": checks, "notes": list(card.notes),
            "texts": [{"label": label, "text": clip(text, limit)} for label, text in card.texts]}


def _card(view: Any, sample: dict, i: int) -> Card:
    try:
        return view.card(sample, i)
    except Exception as exc:  # a record the view does not understand is shown raw, not fatal
        return Card(f"sample {i + 1}", notes=[f"cannot read this record ({type(exc).__name__}: {exc})"],
                    texts=[("record", json.dumps(sample, ensure_ascii=False, indent=1, default=str))])


def samples_block(run: Run, benchmark: str, opts: ViewOptions, uid: str, summary: Summary) -> dict:
    """One (run, benchmark) browser: filters, notes, the first `max_samples` cards and what was left out; or
    {"error": ...} when the samples cannot be read."""
    try:
        samples = run.samples(benchmark)
    except SparError as exc:
        return {"error": str(exc)}
    view = view_for(benchmark)
    notes = view.prepare(run.entry(benchmark).get("data") or {})
    shown = samples[: opts.max_samples]
    left = len(samples) - len(shown)
    summary.samples_shown += len(shown)
    summary.samples_left_out += left
    cards, facet_rows = [], []
    for i, sample in enumerate(shown):
        card = _card(view, sample, i)
        facets = dict(card.facets, **{STATUS_FACET: [STATUS_LABELS.get(card.status, "unknown")]})
        facet_rows.append(facets)
        cards.append(card_data(card, facets, opts.max_chars, f"{uid}-s{i}"))
    facets = [(STATUS_FACET, "result")] + [(f.key, f.label) for f in view.facets]
    counts: dict[str, int] = {}
    for row in facet_rows:
        counts[row[STATUS_FACET][0]] = counts.get(row[STATUS_FACET][0], 0) + 1
    left_out = (f"{left} more of {len(samples)} samples not shown (the first {len(shown)} are; raise the cap with "
                f"--max-samples {len(samples)})") if left else ""
    return {"uid": uid, "benchmark": benchmark,
            "meta": f"{len(samples)} samples · " + ", ".join(f"{v} {k}" for k, v in counts.items()),
            "filters": filter_bar(facets, facet_rows, len(shown)), "notes": list(notes or []), "cards": cards,
            "left_out": left_out}


def samples_section(runs: list[Run], opts: ViewOptions, summary: Summary) -> list[dict]:
    """Per run: its label, folder and a browser per benchmark."""
    return [{"label": run.label, "path": str(run.path),
             "blocks": [samples_block(run, bench, opts, f"r{i}-b{j}", summary)
                        for j, bench in enumerate(run.benchmarks)]}
            for i, run in enumerate(runs)]
