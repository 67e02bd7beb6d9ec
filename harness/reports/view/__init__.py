"""`spar view`: one self-contained HTML report of run and experiment folders (reports layer).

The data is gathered in Python (`gather`, `samples`, `trees`: plain dicts of text and numbers) and rendered with
Jinja2 (`render`) from the package's `templates/`: `report.html.j2` and its partials, `report.css` and `report.js`.
The file needs no server and fetches nothing: the CSS and the small vanilla-JS filter code are inlined from their
files, the figures are embedded as base64 images. Sections (each a collapsible block with a fixed id):

- `overview`: the folders, every run (label, command, status, headline metrics, the evaluators' detail tables) and,
  for experiments, the per-iteration summary (stage counts, losses, headline scores);
- `tables`: the paper's tables built by `harness.reports` (measured cells with bootstrap intervals beside the
  published rows);
- `plots`: the `harness.reports.plots` figures;
- `samples`: a per-sample browser per run and benchmark, filtered by pass/fail, by the benchmark's own facets
  (`evaluators.views`: e.g. failed instruction type, category and level, subset and wrong verdict) and free text;
- `trees`: per self-play iteration, each refinement tree of `searches.jsonl` (nodes with their responses, critiques,
  values and votes; the final node; the DPO pair made from it, `data/dpo.jsonl`), filtered by outcome and by whether
  a pair was made; iterations without searches list their training pairs.

Every text from a model or a data file is HTML-escaped (autoescape); only spar's own CSS and JS are inlined raw.
Size guard: at most `max_samples` samples per (run, benchmark) and `max_trees` trees per iteration are written (the
report says how many were left out and which flag raises the cap), and each text is cut at `max_chars` characters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from harness.core.errors import SparError
from harness.core.records import atomic_write_text
from harness.reports.view.gather import (SECTIONS, Iteration, Summary, ViewOptions, load_iteration, overview,
                                         plots_section, read_folders, tables_section)
from harness.reports.view.render import render_report
from harness.reports.view.samples import samples_section
from harness.reports.view.trees import iteration_block


def _meta(summary: Summary, runs: int, iters: int) -> dict[str, str]:
    """The counts beside each section's title."""
    samples = f"{summary.samples_shown} shown"
    if summary.samples_left_out:
        samples += f", {summary.samples_left_out} left out (--max-samples)"
    trees = f"{summary.trees_shown} trees"
    if summary.trees_left_out:
        trees += f", {summary.trees_left_out} left out (--max-trees)"
    return {"overview": f"{runs} runs · {iters} iterations", "tables": "", "plots": "", "samples": samples,
            "trees": trees}


def build_context(paths: Iterable[str | Path], opts: ViewOptions | None = None) -> tuple[dict, Summary]:
    """The data of the report of `paths` (what the templates render), and what it holds."""
    opts = opts or ViewOptions()
    paths = [Path(p) for p in paths]
    runs, iters, notes = read_folders(paths)
    if not runs and not iters:
        raise SparError(f"{', '.join(map(str, paths))}: no runs or self-play iterations to show")
    summary = Summary(runs=len(runs), notes=list(notes))
    tables, layout, maker, paper_model = tables_section(runs, opts, summary)
    plots = plots_section(runs, layout, maker, paper_model, opts, summary)
    samples = samples_section(runs, opts, summary)
    iterations = [iteration_block(it, opts, f"i{n}", summary) for n, it in enumerate(iters)]
    context = {
        "title": "spar view · " + ", ".join(p.name or str(p) for p in paths),
        "sections": SECTIONS, "meta": _meta(summary, len(runs), len(iters)), "opts": opts,
        "overview": overview(paths, runs, iters, notes), "tables": tables, "plots": plots, "sample_runs": samples,
        "iterations": iterations,
    }
    return context, summary


def build_html(paths: Iterable[str | Path], opts: ViewOptions | None = None) -> tuple[str, Summary]:
    """The report of `paths` as one HTML document, and what it holds."""
    context, summary = build_context(paths, opts)
    return render_report(context), summary


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


__all__ = ["Iteration", "Summary", "ViewOptions", "build_context", "build_html", "load_iteration", "write_view"]
