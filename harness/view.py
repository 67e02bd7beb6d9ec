"""`spar view`: one self-contained HTML report of run and experiment folders (front layer).

The file needs no server and fetches nothing: the CSS and the small vanilla-JS filter code are inline, the figures
are embedded as base64 images. Sections (each a collapsible block with a fixed id):

- `overview`: the folders, every run (label, command, status, headline metrics, the evaluators' detail tables) and,
  for experiments, the per-iteration summary (stage counts, losses, headline scores);
- `tables`: the paper's tables built by `harness.report` (measured cells with bootstrap intervals beside the
  published rows);
- `plots`: the `harness.report.plots` figures;
- `samples`: a per-sample browser per run and benchmark, filtered by pass/fail, by the benchmark's own facets
  (`evaluators.views`: e.g. failed instruction type, category and level, subset and wrong verdict) and free text;
- `trees`: per self-play iteration, each refinement tree of `searches.jsonl` (nodes with their responses, critiques,
  values and votes; the final node; the DPO pair made from it, `data/dpo.jsonl`), filtered by outcome and by whether
  a pair was made; iterations without searches list their training pairs.

Every text from a model or a data file is HTML-escaped; nothing is injected raw. Size guard: at most `max_samples`
samples per (run, benchmark) and `max_trees` trees per iteration are written (the report says how many were left
out and which flag raises the cap), and each text is cut at `max_chars` characters.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from evaluators.views import FAIL, INVALID, PASS, Card, view_for
from harness.compute import compute_columns
from harness.data import read_jsonl
from harness.errors import SparError
from harness.records import atomic_write_text
from harness.report.runs import ITER_DIR, Run, collect_runs, is_experiment

SECTIONS = (("overview", "Overview"), ("tables", "Tables"), ("plots", "Figures"), ("samples", "Samples"),
            ("trees", "Refinement trees and DPO pairs"))
STATUS_FACET = "_status"
STATUS_LABELS = {PASS: "pass", FAIL: "fail", INVALID: "no verdict", "": "unknown"}


@dataclass
class ViewOptions:
    """What goes into the report, and the size guard."""

    max_samples: int = 200
    max_trees: int = 100
    max_chars: int = 20000
    tables: bool = True
    plots: bool = True
    resamples: int = 1000
    seed: int = 0
    paper_model: str | None = None


@dataclass
class Iteration:
    """One `iter_<t>` folder of an experiment as the report reads it."""

    path: Path
    experiment: str
    t: int
    record: dict
    searches: list[dict] | None = None
    pairs: list[dict] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.experiment} · iter {self.t}"

    @property
    def end_gate(self) -> float:
        gate = ((self.record.get("config") or {}).get("search") or {}).get("end_gate")
        if isinstance(gate, (int, float)):
            return float(gate)
        from training.tree_search import SearchConfig

        return float(SearchConfig().end_gate)


@dataclass
class Summary:
    """What `write_view` put in the report (for the CLI's closing line and tests)."""

    runs: int = 0
    samples_shown: int = 0
    samples_left_out: int = 0
    trees_shown: int = 0
    trees_left_out: int = 0
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------- reading
def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))



def _iteration_dirs(path: Path) -> list[Path]:
    """The iteration folders of `path`: itself, its iter_<t>/ folders, or those of experiments one level down."""
    def of(p: Path) -> list[Path]:
        if ITER_DIR.match(p.name) and p.is_dir():
            return [p]
        if is_experiment(p):
            return sorted((c for c in p.iterdir() if c.is_dir() and ITER_DIR.match(c.name)),
                          key=lambda c: int(ITER_DIR.match(c.name).group(1)))  # type: ignore[union-attr]
        return []
    found = of(path)
    if not found and path.is_dir() and not (path / "record.json").is_file():
        for child in sorted(p for p in path.iterdir() if p.is_dir()):
            found += of(child)
    return found


def load_iteration(path: Path) -> Iteration:
    record: dict = {}
    notes = []
    if (path / "record.json").is_file():
        try:
            record = _read_json(path / "record.json")
        except (OSError, ValueError) as exc:
            notes.append(f"{path / 'record.json'}: unreadable ({exc})")
    if not record.get("config") and (path.parent / "config.json").is_file():
        try:
            record = dict(record, config=_read_json(path.parent / "config.json"))
        except (OSError, ValueError):
            pass
    name = str(record.get("experiment") or (record.get("config") or {}).get("experiment") or path.parent.name)
    t = int(ITER_DIR.match(path.name).group(1))  # type: ignore[union-attr]
    it = Iteration(path, name, int(record.get("iteration", t)), record, notes=notes)
    for attr, file in (("searches", path / "searches.jsonl"), ("pairs", path / "data" / "dpo.jsonl")):
        if file.is_file():
            try:
                setattr(it, attr, read_jsonl(file))
            except (OSError, SparError) as exc:
                it.notes.append(str(exc))
    return it


def gather(paths: Iterable[str | Path]) -> tuple[list[Run], list[Iteration], list[str]]:
    """The runs and self-play iterations under `paths` (run folders, experiment folders, iteration folders, or
    folders of those); an experiment still without evaluations gives its iterations only."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise SparError("give at least one run or experiment folder")
    runs: list[Run] = []
    iters: list[Path] = []
    notes: list[str] = []
    for path in paths:
        if not path.exists():
            raise SparError(f"{path}: no such folder")
        if not path.is_dir():
            raise SparError(f"{path}: not a folder (give a run or experiment folder)")
        found_iters = _iteration_dirs(path)
        try:
            runs += collect_runs([path])
        except SparError as exc:
            if not found_iters:
                raise
            notes.append(str(exc))
        iters += found_iters
    seen_runs: set[Path] = set()
    unique_runs = []
    for run in runs:
        if run.path.resolve() not in seen_runs:
            seen_runs.add(run.path.resolve())
            unique_runs.append(run)
    unique_iters = list(dict.fromkeys(p.resolve() for p in iters))
    return unique_runs, [load_iteration(p) for p in unique_iters], notes


# ------------------------------------------------------------------------------------------------- HTML helpers
def esc(value: Any) -> str:
    """Text as HTML (quotes too, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _clip(text: str, limit: int) -> tuple[str, int]:
    if limit and len(text) > limit:
        return text[:limit], len(text) - limit
    return text, 0


def _pre(text: str, limit: int, cls: str = "") -> str:
    body, cut = _clip(text, limit)
    more = f'<div class="cut">… {cut} more characters not shown (--max-chars)</div>' if cut else ""
    return f'<pre class="{esc(cls)}">{esc(body)}</pre>{more}'


def _snippet(text: Any, n: int = 90) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= n else one[: n - 1] + "…"


def _attr_json(data: Any) -> str:
    return esc(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _value(name: str, value: Any) -> str:
    """A metric: fractions in percent, counts and levels as numbers, missing as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not name.endswith(("(levels)", "seconds")) and "loss" not in name:
        return f"{100 * value:.2f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(columns: list[str], rows: list[list[Any]], cls: str = "grid", first_left: bool = True) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            num = not (i == 0 and first_left) and not isinstance(cell, str)
            text = _value(str(columns[i]) if i < len(columns) else "", cell) if not isinstance(cell, str) else cell
            cells.append(f'<td class="{"num" if num else ""}">{esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _section(sid: str, title: str, body: str, meta: str = "") -> str:
    meta_html = f' <span class="meta">{esc(meta)}</span>' if meta else ""
    return (f'<section id="{sid}" class="section"><details open><summary><h2>{esc(title)}{meta_html}</h2>'
            f'</summary><div class="section-body">{body}</div></details></section>')


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _badge(text: str, cls: str) -> str:
    return f'<span class="badge {esc(cls)}">{esc(text)}</span>'


# ------------------------------------------------------------------------------------------------- browser
def _filter_bar(facets: list[tuple[str, str]], items: list[dict[str, list[str]]], total: int) -> str:
    """Selects for each facet (values with their counts), a text box, expand/collapse, a counter."""
    parts = []
    for key, label in facets:
        counts: dict[str, int] = {}
        for values in items:
            for v in dict.fromkeys(values.get(key) or []):
                counts[v] = counts.get(v, 0) + 1
        if not counts:
            continue
        options = [f'<option value="">all ({len(items)})</option>']
        ordered = sorted(counts, key=lambda v: (v.startswith("("), _natural(v)))
        options += [f'<option value="{esc(v)}">{esc(v)} ({counts[v]})</option>' for v in ordered]
        parts.append(f'<label class="facet">{esc(label)} <select data-facet="{esc(key)}">{"".join(options)}'
                     f'</select></label>')
    parts.append('<label class="facet">text <input type="search" class="q" placeholder="search the texts"></label>')
    parts.append('<button type="button" class="expand">expand all</button>'
                 '<button type="button" class="collapse">collapse all</button>')
    parts.append(f'<span class="count" data-total="{total}">showing {total} of {total}</span>')
    return f'<div class="filters">{"".join(parts)}</div>'


def _natural(value: str) -> tuple:
    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in re.split(r"(\d+)", value.lower()) if x)


def _card_html(card: Card, facets: dict[str, list[str]], limit: int, uid: str) -> str:
    status = card.status if card.status in STATUS_LABELS else ""
    head = (f'<span class="title">{esc(card.title)}</span> {_badge(STATUS_LABELS[status], "st-" + (status or "na"))}'
            f' <span class="status-text">{esc(card.status_text)}</span>')
    body = []
    if card.checks:
        rows = "".join(f'<li class="{"ok" if c.ok else "bad" if c.ok is False else "na"}">'
                       f'<span class="mark">{"✓" if c.ok else "✗" if c.ok is False else "?"}</span> '
                       f'<code>{esc(c.name)}</code> <span class="detail">{esc(c.detail)}</span></li>'
                       for c in card.checks)
        body.append(f'<ul class="checks">{rows}</ul>')
    body += [_note(n) for n in card.notes]
    for label, text in card.texts:
        body.append(f'<div class="text"><div class="label">{esc(label)}</div>{_pre(text, limit)}</div>')
    return (f'<details class="item st-{status or "na"}" id="{esc(uid)}" data-facets="{_attr_json(facets)}">'
            f'<summary>{head}</summary><div class="body">{"".join(body)}</div></details>')


def _samples_block(run: Run, benchmark: str, opts: ViewOptions, uid: str, summary: Summary) -> str:
    try:
        samples = run.samples(benchmark)
    except SparError as exc:
        return _note(str(exc))
    view = view_for(benchmark)
    notes = view.prepare(run.entry(benchmark).get("data") or {})
    shown = samples[: opts.max_samples]
    left = len(samples) - len(shown)
    summary.samples_shown += len(shown)
    summary.samples_left_out += left
    cards, facet_rows = [], []
    for i, sample in enumerate(shown):
        try:
            card = view.card(sample, i)
        except Exception as exc:  # a record the view does not understand is shown raw, not fatal
            card = Card(f"sample {i + 1}", notes=[f"cannot read this record ({type(exc).__name__}: {exc})"],
                        texts=[("record", json.dumps(sample, ensure_ascii=False, indent=1, default=str))])
        facets = dict(card.facets, **{STATUS_FACET: [STATUS_LABELS.get(card.status, "unknown")]})
        facet_rows.append(facets)
        cards.append(_card_html(card, facets, opts.max_chars, f"{uid}-s{i}"))
    facets = [(STATUS_FACET, "result")] + [(f.key, f.label) for f in view.facets]
    parts = [_filter_bar(facets, facet_rows, len(shown))]
    parts += [_note(n) for n in notes]
    parts.append(f'<div class="items">{"".join(cards)}</div>')
    if left:
        parts.append(f'<p class="left-out">{left} more of {len(samples)} samples not shown (the first '
                     f'{len(shown)} are; raise the cap with --max-samples {len(samples)})</p>')
    counts = {}
    for row in facet_rows:
        counts[row[STATUS_FACET][0]] = counts.get(row[STATUS_FACET][0], 0) + 1
    meta = f"{len(samples)} samples · " + ", ".join(f"{v} {k}" for k, v in counts.items())
    return (f'<details class="browser" id="{esc(uid)}"><summary><h3>{esc(benchmark)} '
            f'<span class="meta">{esc(meta)}</span></h3></summary>{"".join(parts)}</details>')


# ------------------------------------------------------------------------------------------------- trees
def _node_html(node: dict, classes: list[str], badges: list[str], gate: float, limit: int, uid: str) -> str:
    value = node.get("value")
    value = float(value) if isinstance(value, (int, float)) else None
    value_text = "no value" if value is None else f"value {value:.2f}"
    width = 0 if value is None else max(0, min(100, round(100 * value)))
    status = "na" if value is None else "pass" if value > gate else "fail"
    tally = [node.get(k) or 0 for k in ("yes", "no", "invalid")]
    root = node.get("parent") is None
    votes = (f"yes {tally[0]} · no {tally[1]} · invalid {tally[2]} (refiner's judgments)" if any(tally) else
             "the actor's response that the refiner judged not to follow (the search's root; value 0 by convention)"
             if root else "no judgments recorded")
    head = (f'<span class="nid">#{esc(node.get("id"))}</span> <span class="depth">depth {esc(node.get("depth"))}'
            f'</span> <span class="value v-{status}">{esc(value_text)}</span><span class="bar"><span '
            f'style="width:{width}%"></span></span> <span class="votes">{esc(votes)}</span> '
            + "".join(badges))
    parts = [f'<div class="node-head">{head}</div>', _pre(str(node.get("response") or ""), limit, "response")]
    if node.get("critique"):
        what = "the judgment that made it a negative" if root else "critique (a judgment agreeing with the majority)"
        parts.append(f'<details class="sub"><summary>{esc(what)}</summary>{_pre(str(node["critique"]), limit)}'
                     '</details>')
    if node.get("refine_cot"):
        parts.append(f'<details class="sub"><summary>the refiner\'s reply that made this node</summary>'
                     f'{_pre(str(node["refine_cot"]), limit)}</details>')
    return f'<div class="node {" ".join(classes)} v-{status}" id="{esc(uid)}">{"".join(parts)}</div>'


def _pair_text(messages: Any) -> str:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return str(messages[-1].get("content", ""))
    return messages if isinstance(messages, str) else json.dumps(messages, ensure_ascii=False)


def _tree_html(tree: dict, pair: dict | None, has_pairs: bool, gate: float, limit: int, uid: str
               ) -> tuple[str, dict[str, list[str]]]:
    nodes = [n for n in tree.get("nodes") or [] if isinstance(n, dict)]
    by_id = {n.get("id"): n for n in nodes}
    final = tree.get("final")
    passed = bool(tree.get("passed"))
    root = next((n for n in nodes if n.get("parent") is None), nodes[0] if nodes else None)
    chosen_id = rejected_id = None
    if pair is not None:
        chosen_text, rejected_text = _pair_text(pair.get("chosen")), _pair_text(pair.get("rejected"))
        chosen_id = final if final in by_id and by_id[final].get("response") == chosen_text else next(
            (n.get("id") for n in nodes if n.get("response") == chosen_text), None)
        rejected_id = root.get("id") if root and root.get("response") == rejected_text else next(
            (n.get("id") for n in nodes if n.get("response") == rejected_text), None)
    final_node = by_id.get(final)
    best = f"node #{final}" + (f" (value {final_node['value']:.2f})" if final_node and
                               isinstance(final_node.get("value"), (int, float)) else "")
    if pair is not None:
        why = (f"DPO pair made: chosen = node #{chosen_id if chosen_id is not None else '?'} (the search passed: value "
               f"above the gate {gate:g}), rejected = node #{rejected_id if rejected_id is not None else '?'} "
               "(the root: the actor's response judged not to follow the instruction).")
        pair_facet = "pair made"
    elif not has_pairs:
        why, pair_facet = "No data/dpo.jsonl in this iteration (the data stage has not run).", "no pair file"
    elif not passed:
        why = (f"No DPO pair: the search did not pass (no node above the gate {gate:g}; the best is {best}).")
        pair_facet = "no pair: search failed"
    elif final_node is not None and root is not None and final_node.get("response") == root.get("response"):
        why, pair_facet = "No DPO pair: the final response equals the root's (no preference).", "no pair: same text"
    else:
        why, pair_facet = "No DPO pair in data/dpo.jsonl for this search.", "no pair"

    children: dict[Any, list[dict]] = {}
    for n in nodes:
        if n is not root:
            children.setdefault(n.get("parent"), []).append(n)
    seen: set = set()

    def render(node: dict) -> str:
        nid = node.get("id")
        if nid in seen:
            return ""
        seen.add(nid)
        classes, badges = [], []
        if node is root:
            classes.append("root")
            badges.append(_badge("root", "b-root"))
        if nid == final:
            classes.append("final")
            badges.append(_badge("final" + (" · passed" if passed else " · best, failed"), "b-final"))
        if pair is not None and nid == chosen_id:
            classes.append("chosen")
            badges.append(_badge("DPO chosen", "b-chosen"))
        if pair is not None and nid == rejected_id:
            classes.append("rejected")
            badges.append(_badge("DPO rejected", "b-rejected"))
        kids = "".join(f"<li>{render(c)}</li>" for c in children.get(nid, []))
        return _node_html(node, classes, badges, gate, limit, f"{uid}-n{nid}") + (f"<ul>{kids}</ul>" if kids else "")

    tree_html = f'<ul class="tree"><li>{render(root)}</li></ul>' if root else _note("a search without nodes")
    orphans = [n for n in nodes if n.get("id") not in seen]
    if orphans:
        tree_html += _note(f"{len(orphans)} node(s) whose parent is not in the tree:") + "".join(
            _node_html(n, ["orphan"], [], gate, limit, f"{uid}-n{n.get('id')}") for n in orphans)
    depth = max((int(n.get("depth") or 0) for n in nodes), default=0)
    counters = ", ".join(f"{k.replace('_', ' ')} {tree[k]}" for k in ("refinements", "dropped_ties",
                                                                     "refine_failures", "invalid_judgments",
                                                                     "refine_requests", "judge_requests")
                         if isinstance(tree.get(k), int))
    status = PASS if passed else FAIL
    facets = {STATUS_FACET: ["passed" if passed else "failed"], "pair": [pair_facet], "depth": [f"depth {depth}"],
              "nodes": [f"{len(nodes)} nodes"]}
    head = (f'<span class="title">{esc(tree.get("key", ""))}</span> '
            f'{_badge("passed" if passed else "failed", "st-" + status)} '
            f'{_badge(pair_facet, "b-chosen" if pair is not None else "b-none")} '
            f'<span class="status-text">{len(nodes)} nodes · depth {depth} · {esc(_snippet(tree.get("prompt")))}'
            f'</span>')
    body = [f'<p class="why">{esc(why)}</p>', f'<div class="text"><div class="label">instruction</div>'
            f'{_pre(str(tree.get("prompt") or ""), limit, "prompt")}</div>']
    if counters:
        body.append(_note(counters))
    body.append(tree_html)
    if pair is not None and (chosen_id is None or rejected_id is None):
        body.append(f'<div class="text"><div class="label">DPO chosen (not a node of this tree)</div>'
                    f'{_pre(_pair_text(pair.get("chosen")), limit)}</div><div class="text"><div class="label">DPO '
                    f'rejected</div>{_pre(_pair_text(pair.get("rejected")), limit)}</div>')
    html_ = (f'<details class="item tree-item st-{status}" id="{esc(uid)}" data-facets="{_attr_json(facets)}">'
             f'<summary>{head}</summary><div class="body">{"".join(body)}</div></details>')
    return html_, facets


def _iteration_block(it: Iteration, opts: ViewOptions, uid: str, summary: Summary) -> str:
    parts = [_note(n) for n in it.notes]
    pairs = {str(p.get("key")): p for p in it.pairs or [] if isinstance(p, dict)}
    if it.searches is not None:
        gate = it.end_gate
        shown = it.searches[: opts.max_trees]
        left = len(it.searches) - len(shown)
        summary.trees_shown += len(shown)
        summary.trees_left_out += left
        trees, facet_rows = [], []
        for k, tree in enumerate(shown):
            html_, facets = _tree_html(tree, pairs.get(str(tree.get("key"))), it.pairs is not None, gate,
                                       opts.max_chars, f"{uid}-t{k}")
            trees.append(html_)
            facet_rows.append(facets)
        facets = [(STATUS_FACET, "search"), ("pair", "DPO pair"), ("depth", "deepest level"), ("nodes", "size")]
        parts.append(_filter_bar(facets, facet_rows, len(shown)))
        parts.append(f'<div class="items">{"".join(trees)}</div>')
        if left:
            parts.append(f'<p class="left-out">{left} more of {len(it.searches)} trees not shown (the first '
                         f'{len(shown)} are; raise the cap with --max-trees {len(it.searches)})</p>')
        passed = sum(bool(t.get("passed")) for t in it.searches)
        meta = (f"{len(it.searches)} trees · {passed} passed · "
                f"{len(it.pairs) if it.pairs is not None else 'no'} DPO pairs")
    elif it.pairs is not None:
        shown = it.pairs[: opts.max_trees]
        rows = []
        for k, pair in enumerate(shown):
            prompt = _pair_text(pair.get("prompt"))
            rows.append(f'<details class="item" id="{esc(uid)}-p{k}" data-facets="{_attr_json({})}"><summary>'
                        f'<span class="title">{esc(pair.get("key", k))}</span> <span class="status-text">'
                        f'{esc(_snippet(prompt))}</span></summary><div class="body">'
                        f'<div class="text"><div class="label">prompt</div>{_pre(prompt, opts.max_chars)}</div>'
                        f'<div class="text chosen"><div class="label">chosen</div>'
                        f'{_pre(_pair_text(pair.get("chosen")), opts.max_chars)}</div>'
                        f'<div class="text rejected"><div class="label">rejected</div>'
                        f'{_pre(_pair_text(pair.get("rejected")), opts.max_chars)}</div></div></details>')
        parts.append(_filter_bar([], [{} for _ in shown], len(shown)))
        parts.append(f'<div class="items">{"".join(rows)}</div>')
        if len(it.pairs) > len(shown):
            parts.append(f'<p class="left-out">{len(it.pairs) - len(shown)} more of {len(it.pairs)} pairs not shown '
                         f'(--max-trees {len(it.pairs)})</p>')
        meta = f"no searches.jsonl · {len(it.pairs)} DPO pairs"
    else:
        parts.append(_note("no searches.jsonl and no data/dpo.jsonl in this iteration (iteration 0 only evaluates "
                           "the starting models)"))
        meta = "no searches"
    return (f'<details class="browser" id="{esc(uid)}"><summary><h3>{esc(it.label)} <span class="meta">'
            f'{esc(meta)}</span></h3></summary>{"".join(parts)}</details>')


# ------------------------------------------------------------------------------------------------- sections
def _headline(run: Run, benchmark: str) -> tuple[list[tuple[str, Any]], list]:
    metrics = run.metrics.get(benchmark) or {}
    try:
        from evaluators import get_evaluator

        ev = get_evaluator(benchmark)
        return ev.summary_rows(metrics), ev.detail_tables(metrics)
    except Exception:  # an unknown or unloadable benchmark: its scalar metrics as they are
        return [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)], []


def _overview(paths: list[Path], runs: list[Run], iters: list[Iteration], notes: list[str]) -> str:
    parts = ['<ul class="folders">' + "".join(f"<li><code>{esc(p)}</code></li>" for p in paths) + "</ul>"]
    parts += [_note(n) for n in notes]
    if runs:
        rows = []
        for run in runs:
            metrics = []
            for bench in run.benchmarks:
                head, _ = _headline(run, bench)
                shown = ", ".join(f"{name} {_value(name, value)}" for name, value in head[:4])
                partial = " (partial)" if (run.metrics.get(bench) or {}).get("partial") else ""
                metrics.append(f"<div><b>{esc(bench)}</b>{esc(partial)}: {esc(shown)}</div>")
            status = str(run.record.get("status", ""))
            fake = " [fake backend: not a measurement]" if run.fake else ""  # tables mark partial data too
            rows.append(f"<tr><td>{esc(run.label + fake)}</td><td><code>{esc(run.path)}</code></td>"
                        f"<td>{esc(run.command)}{' · ' + esc(status) if status else ''}</td>"
                        f"<td>{''.join(metrics)}</td></tr>")
        parts.append('<h3>Runs</h3><table class="grid runs"><thead><tr><th>run</th><th>folder</th><th>command</th>'
                     f'<th>headline metrics (%)</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
        details = []
        for run in runs:
            for bench in run.benchmarks:
                head, tables = _headline(run, bench)
                if not head and not tables:
                    continue
                inner = _table(["metric", "value"], [[n, v] for n, v in head])
                for title, columns, trows in tables:
                    inner += f"<h4>{esc(title)}</h4>" + _table([str(c) for c in columns], trows)
                details.append(f'<details class="sub"><summary>{esc(run.label)} · {esc(bench)}</summary>'
                               f'{inner}</details>')
        if details:
            parts.append("<h3>Metrics per run and benchmark</h3>" + "".join(details))
    else:
        parts.append(_note("no finished evaluation runs in these folders"))
    by_exp: dict[str, list[Iteration]] = {}
    for it in iters:
        by_exp.setdefault(str(it.path.parent), []).append(it)
    for folder, its in by_exp.items():
        rows_by_t = []
        for it in its:
            row = (it.record.get("extra") or {}).get("summary")
            if not isinstance(row, dict):
                row = {"iteration": it.t}
                for stage, info in (it.record.get("stages") or {}).items():
                    if isinstance(info, dict):
                        row.update({f"{stage}.{k}": v for k, v in info.items()
                                    if isinstance(v, (int, float, str)) and not isinstance(v, bool)})
                row.update(compute_columns(it.record.get("stages") or {}))  # tokens, seconds, GPU-seconds
            row = dict(row, status=str(it.record.get("status", "")) or "(no record)")
            rows_by_t.append((it.t, row))
        keys = list(dict.fromkeys(k for _, r in rows_by_t for k in r if k != "iteration"))
        table = _table(["", *(f"iter {t}" for t, _ in rows_by_t)],
                       [[k, *(_value(k, r[k]) if k in r else "" for _, r in rows_by_t)] for k in keys])
        parts.append(f'<h3>Experiment {esc(its[0].experiment)}</h3><p class="note"><code>{esc(folder)}</code></p>'
                     + table)
    return "".join(parts)


def _tables_section(runs: list[Run], opts: ViewOptions, summary: Summary) -> tuple[str, Any, Any, str]:
    """The paper tables as HTML; also the layout, cell maker and paper model for the figures."""
    if not opts.tables and not opts.plots:
        return _note("tables and figures turned off (--no-tables --no-plots)"), None, None, ""
    if not runs:
        return _note("no runs to tabulate"), None, None, ""
    from harness.paper import resolve_paper_model
    from harness.report import CellMaker, build_tables, load_layout
    from harness.report.render import cell_text
    from harness.report.tables import DELTA, MEASURED, PAPER

    try:
        layout = load_layout()
        paper_model = resolve_paper_model(opts.paper_model or None)
    except SparError as exc:
        summary.notes.append(f"tables: {exc}")
        return _note(f"no tables: {exc}"), None, None, ""
    maker = CellMaker(opts.resamples, opts.seed)
    if not opts.tables:
        return _note("tables turned off (--no-tables)"), layout, maker, paper_model
    try:
        tables = build_tables(runs, layout, maker, paper_model)
    except SparError as exc:
        summary.notes.append(f"tables: {exc}")
        return _note(f"no tables: {exc}"), layout, maker, paper_model
    if not tables:
        return _note("no run has the columns of any paper table"), layout, maker, paper_model
    out = []
    for t in tables:
        from harness.report.cells import Cell

        keep = [i for i in range(len(t.columns)) if any(r.kind == MEASURED and isinstance(r.cells[i], Cell)
                                                         and r.cells[i].value is not None for r in t.rows)]
        head = "<th>row</th>" + "".join(f"<th>{esc(t.columns[i])}</th>" for i in keep)
        body = []
        for row in t.rows:
            cells = []
            for i in keep:
                c = row.cells[i]
                cls = "num"
                if row.kind == DELTA and isinstance(c, (int, float)):
                    cls += " pos" if c > 0 else " neg" if c < 0 else ""
                value, _, interval = cell_text(c, row.kind).partition(" ")
                ci = f'<br><span class="ci">{esc(interval)}</span>' if interval else ""
                cells.append(f'<td class="{cls}">{esc(value)}{ci}</td>')
            kind = {MEASURED: "measured", PAPER: "paper", DELTA: "delta"}.get(row.kind, "")
            body.append(f'<tr class="{kind}"><td title="{esc(row.source)}">{esc(row.label)}</td>{"".join(cells)}</tr>')
        caption = ["measured: percent [95% bootstrap CI, " f"{opts.resamples} resamples]"
                   + (f"; paper rows: {t.paper_model} ({t.paper_table})" if t.paper_table else "")] + t.notes
        if len(keep) < len(t.columns):
            caption.append("not measured: " + ", ".join(c for i, c in enumerate(t.columns) if i not in keep))
        out.append(f'<h3>{esc(t.title)}</h3><div class="scroll"><table class="grid paper-table"><thead><tr>{head}'
                   f'</tr></thead><tbody>{"".join(body)}</tbody></table></div><ul class="caption">'
                   + "".join(f"<li>{esc(c)}</li>" for c in caption) + "</ul>")
    return "".join(out), layout, maker, paper_model


def _plots_section(runs: list[Run], layout: Any, maker: Any, paper_model: str, opts: ViewOptions,
                   summary: Summary) -> str:
    if not opts.plots:
        return _note("figures turned off (--no-plots)")
    if layout is None or not runs:
        return _note("no figures (no runs, or no table layout)")
    from harness.report.plots import make_plots

    with tempfile.TemporaryDirectory(prefix="spar-view-") as tmp:
        try:
            written, skipped = make_plots(runs, layout, maker, paper_model, Path(tmp))
        except SparError as exc:
            summary.notes.append(f"figures: {exc}")
            return _note(f"no figures: {exc}")
        figures = []
        for path in written:
            if path.suffix != ".png":
                continue
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            figures.append(f'<figure id="fig-{esc(path.stem)}"><img alt="{esc(path.stem)}" '
                           f'src="data:image/png;base64,{data}"><figcaption>{esc(path.stem)}</figcaption></figure>')
    parts = figures or [_note("no figure has runs to draw")]
    parts += [_note(f"skipped: {why}") for why in skipped]
    return "".join(parts)


def build_html(paths: Iterable[str | Path], opts: ViewOptions | None = None) -> tuple[str, Summary]:
    """The report of `paths` as one HTML document, and what it holds."""
    opts = opts or ViewOptions()
    paths = [Path(p) for p in paths]
    runs, iters, notes = gather(paths)
    if not runs and not iters:
        raise SparError(f"{', '.join(map(str, paths))}: no runs or self-play iterations to show")
    summary = Summary(runs=len(runs), notes=list(notes))
    tables_html, layout, maker, paper_model = _tables_section(runs, opts, summary)
    plots_html = _plots_section(runs, layout, maker, paper_model, opts, summary)
    sample_blocks = [_samples_block(run, bench, opts, f"r{i}-b{j}", summary)
                     for i, run in enumerate(runs) for j, bench in enumerate(run.benchmarks)]
    by_run = []
    k = 0
    for i, run in enumerate(runs):
        blocks = sample_blocks[k:k + len(run.benchmarks)]
        k += len(run.benchmarks)
        by_run.append(f'<div class="run-samples"><h3 class="run-title">{esc(run.label)} <span class="meta"><code>'
                      f'{esc(run.path)}</code></span></h3>{"".join(blocks)}</div>')
    samples_html = "".join(by_run) or _note("no finished evaluation runs, so no samples")
    tree_blocks = [_iteration_block(it, opts, f"i{n}", summary) for n, it in enumerate(iters)]
    trees_html = "".join(tree_blocks) or _note("no self-play iterations (iter_<t>/ folders) in these folders")
    overview_html = _overview(paths, runs, iters, notes)
    sections = {
        "overview": (overview_html, f"{len(runs)} runs · {len(iters)} iterations"),
        "tables": (tables_html, ""),
        "plots": (plots_html, ""),
        "samples": (samples_html, f"{summary.samples_shown} shown" + (f", {summary.samples_left_out} left out "
                                                                       "(--max-samples)"
                                                                       if summary.samples_left_out else "")),
        "trees": (trees_html, f"{summary.trees_shown} trees" + (f", {summary.trees_left_out} left out (--max-trees)"
                                                                 if summary.trees_left_out else "")),
    }
    title = "spar view · " + ", ".join(p.name or str(p) for p in paths)
    nav = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name in SECTIONS)
    body = "".join(_section(sid, name, *sections[sid]) for sid, name in SECTIONS)
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width, initial-scale=1">'
           f'<title>{esc(title)}</title><style>{CSS}</style></head><body>'
           f'<header class="top"><h1>{esc(title)}</h1><nav>{nav}'
           f'<button type="button" id="open-all">open all</button></nav></header>'
           f'<div id="view-errors" hidden></div><main>{body}</main>'
           f'<footer>Written by <code>spar view</code>; self-contained (no network). Caps: {opts.max_samples} samples '
           f'per benchmark, {opts.max_trees} trees per iteration, {opts.max_chars} characters per text.</footer>'
           f'<script>{JS}</script></body></html>')
    return doc, summary


def write_view(paths: Iterable[str | Path], output: str | Path, opts: ViewOptions | None = None) -> Summary:
    """Write the report of `paths` to `output` (an .html file)."""
    output = Path(output)
    if output.exists() and output.is_dir():
        raise SparError(f"--output {output}: a folder (give a file name, e.g. {output / 'view.html'})")
    doc, summary = build_html(paths, opts)
    atomic_write_text(output, doc)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(output, 0o666 & ~umask)  # a report to share, not a private temporary file
    return summary


CSS = """
:root{--fg:#1d2125;--muted:#5c6670;--bg:#fbfbfc;--card:#fff;--line:#dde1e6;--accent:#2f5fa7;--ok:#1f7a3d;
--bad:#b3261e;--na:#8a6d00;--okbg:#e8f5ec;--badbg:#fbeaea;--nabg:#fdf6dd}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.top{position:sticky;top:0;z-index:5;background:#20324d;color:#fff;padding:8px 18px;display:flex;
align-items:center;gap:18px;flex-wrap:wrap;box-shadow:0 1px 4px rgba(0,0,0,.2)}
header.top h1{font-size:16px;margin:0;font-weight:600}
header.top nav{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
header.top a{color:#cfe0ff;text-decoration:none}header.top a:hover{text-decoration:underline}
main{padding:12px 18px;max-width:1400px;margin:0 auto}
footer{color:var(--muted);font-size:12px;padding:10px 18px 30px;max-width:1400px;margin:0 auto}
section.section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:12px 0;padding:4px 14px}
section.section>details>summary h2{display:inline;font-size:18px;margin:0}
summary{cursor:pointer}summary h2,summary h3{display:inline}
.section-body{padding:6px 0 12px}
.meta{color:var(--muted);font-weight:normal;font-size:12px;margin-left:6px}
.note{color:var(--muted);margin:6px 0}
.left-out{background:var(--nabg);border:1px solid #ecd98b;padding:6px 10px;border-radius:6px}
table.grid{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
table.grid th,table.grid td{border:1px solid var(--line);padding:3px 8px;vertical-align:top;text-align:left}
table.grid th{background:#f0f3f7}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.pos{color:var(--ok)}td.neg{color:var(--bad)}
.scroll{overflow-x:auto;max-width:100%}
table.paper-table td:first-child{min-width:16em;max-width:26em}
table.paper-table .ci{color:var(--muted);font-size:11px}
tr.measured td:first-child{font-weight:600}tr.paper td{color:var(--muted);font-style:italic}
tr.measured{border-top:2px solid #b8c0ca}
ul.caption{color:var(--muted);font-size:12px;margin-top:0}
figure{display:inline-block;margin:8px;border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff}
figure img{max-width:100%;height:auto;display:block}figcaption{color:var(--muted);font-size:12px}
details.browser{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:4px 10px;background:#fcfdff}
details.browser>summary h3{font-size:15px;margin:4px 0}
h3.run-title{font-size:15px;margin:14px 0 4px}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;padding:6px 0;border-bottom:1px solid var(--line);
margin-bottom:6px;position:sticky;top:38px;background:#fcfdff;z-index:2}
.filters select,.filters input{font:inherit;padding:2px 4px}
.filters button,header.top button{font:inherit;font-size:12px;padding:2px 8px;cursor:pointer}
.count{color:var(--muted);margin-left:auto}
details.item{border:1px solid var(--line);border-left:4px solid #c3c9d1;border-radius:4px;margin:4px 0;
background:var(--card)}
details.item>summary{padding:4px 8px}details.item .body{padding:4px 12px 10px}
details.item.st-pass{border-left-color:var(--ok)}details.item.st-fail{border-left-color:var(--bad)}
details.item.st-invalid{border-left-color:var(--na)}
details.item.hidden{display:none}
.title{font-weight:600}.status-text{color:var(--muted)}
.badge{display:inline-block;font-size:11px;padding:0 6px;border-radius:9px;border:1px solid var(--line);
background:#f3f4f6;margin-left:3px;white-space:nowrap}
.st-pass>.badge,.badge.st-pass{background:var(--okbg);color:var(--ok);border-color:#b5dcc1}
.badge.st-fail{background:var(--badbg);color:var(--bad);border-color:#efc1bd}
.badge.st-invalid,.badge.st-na{background:var(--nabg);color:var(--na);border-color:#ecd98b}
.badge.b-chosen{background:var(--okbg);color:var(--ok);border-color:#b5dcc1}
.badge.b-rejected{background:var(--badbg);color:var(--bad);border-color:#efc1bd}
.badge.b-final{background:#e7eefb;color:var(--accent);border-color:#bfd0ef}
.badge.b-root{background:#eee;color:#444}.badge.b-none{color:var(--muted)}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #e6e9ed;border-radius:4px;
padding:6px 8px;margin:2px 0 6px;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
max-height:28em;overflow:auto}
.text .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.text.chosen pre{border-color:#b5dcc1;background:var(--okbg)}.text.rejected pre{border-color:#efc1bd;
background:var(--badbg)}
.cut{color:var(--na);font-size:12px}
ul.checks{list-style:none;padding:0;margin:4px 0 8px}ul.checks li{padding:1px 0}
ul.checks .mark{display:inline-block;width:1.2em;font-weight:700}
ul.checks li.ok .mark{color:var(--ok)}ul.checks li.bad .mark{color:var(--bad)}ul.checks li.na .mark{color:var(--na)}
.detail{color:var(--muted)}
p.why{background:#eef3fb;border:1px solid #cfdcf2;border-radius:6px;padding:6px 10px;margin:6px 0}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:22px;border-left:2px solid #d6dde6}
ul.tree{padding-left:0;border-left:none}
ul.tree li{margin:6px 0;position:relative}
ul.tree ul>li:before{content:"";position:absolute;left:-22px;top:14px;width:18px;border-top:2px solid #d6dde6}
.node{border:1px solid var(--line);border-radius:6px;padding:4px 8px;background:#fff}
.node.v-pass{border-color:#b5dcc1}.node.v-fail{border-color:#efc1bd}
.node.chosen{box-shadow:0 0 0 2px var(--ok)}.node.rejected{box-shadow:0 0 0 2px var(--bad)}
.node-head{font-size:12.5px;margin-bottom:2px}.nid{font-weight:700}.depth,.votes{color:var(--muted)}
.value.v-pass{color:var(--ok);font-weight:600}.value.v-fail{color:var(--bad);font-weight:600}
.bar{display:inline-block;width:60px;height:7px;background:#eceff3;border-radius:4px;margin:0 6px;
vertical-align:middle;overflow:hidden}.bar>span{display:block;height:100%;background:var(--accent)}
details.sub{margin:4px 0}details.sub>summary{color:var(--accent);font-size:12.5px}
#view-errors{background:var(--badbg);color:var(--bad);border:1px solid #efc1bd;padding:8px 14px;margin:10px 18px;
border-radius:6px;white-space:pre-wrap}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
"""

JS = r"""
(function () {
  'use strict';
  var errors = document.getElementById('view-errors');
  function report(message) {
    errors.hidden = false;
    errors.appendChild(document.createTextNode('report script error: ' + message + '\n'));
  }
  window.addEventListener('error', function (ev) { report(ev.message || String(ev.error)); });
  function facetsOf(el) {
    if (!el._facets) {
      try { el._facets = JSON.parse(el.getAttribute('data-facets') || '{}'); } catch (e) { el._facets = {}; }
    }
    return el._facets;
  }
  function textOf(el) {
    if (el._text === undefined) { el._text = el.textContent.toLowerCase(); }
    return el._text;
  }
  function setup(browser) {
    var bar = browser.querySelector('.filters');
    var list = browser.querySelector('.items');
    if (!bar || !list) { return; }
    var items = Array.prototype.slice.call(list.children);
    var selects = Array.prototype.slice.call(bar.querySelectorAll('select[data-facet]'));
    var query = bar.querySelector('input.q');
    var counter = bar.querySelector('.count');
    function apply() {
      var wanted = selects.map(function (s) { return [s.getAttribute('data-facet'), s.value]; });
      var q = query ? query.value.trim().toLowerCase() : '';
      var shown = 0;
      items.forEach(function (el) {
        var f = facetsOf(el);
        var ok = wanted.every(function (w) { return !w[1] || (f[w[0]] || []).indexOf(w[1]) >= 0; });
        if (ok && q) { ok = textOf(el).indexOf(q) >= 0; }
        el.classList.toggle('hidden', !ok);
        if (ok) { shown += 1; }
      });
      if (counter) { counter.textContent = 'showing ' + shown + ' of ' + items.length; }
      browser.setAttribute('data-shown', String(shown));
    }
    selects.forEach(function (s) { s.addEventListener('change', apply); });
    if (query) { query.addEventListener('input', apply); }
    var expand = bar.querySelector('button.expand');
    var collapse = bar.querySelector('button.collapse');
    if (expand) {
      expand.addEventListener('click', function () {
        items.forEach(function (el) { if (!el.classList.contains('hidden')) { el.open = true; } });
      });
    }
    if (collapse) {
      collapse.addEventListener('click', function () { items.forEach(function (el) { el.open = false; }); });
    }
    browser._apply = apply;
    apply();
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    while (el) {
      if (el.tagName === 'DETAILS') { el.open = true; }
      el = el.parentElement;
    }
  }
  try {
    Array.prototype.forEach.call(document.querySelectorAll('details.browser'), setup);
    var openAll = document.getElementById('open-all');
    openAll.addEventListener('click', function () {
      var open = openAll.textContent === 'open all';
      Array.prototype.forEach.call(document.querySelectorAll('details.browser, section > details'),
        function (d) { d.open = open || d.parentElement.tagName === 'SECTION'; });
      openAll.textContent = open ? 'close all' : 'open all';
    });
    window.addEventListener('hashchange', openTarget);
    openTarget();
    document.documentElement.setAttribute('data-view-ready', '1');
  } catch (e) {
    report(e && e.message ? e.message : String(e));
  }
}());
"""

__all__ = ["Iteration", "Summary", "ViewOptions", "build_html", "gather", "load_iteration", "write_view"]
