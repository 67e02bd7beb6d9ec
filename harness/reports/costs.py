"""The compute table of `spar tables`: what each method spent per iteration, from the iteration records' `compute`
entries (harness/core/compute.py), so score tables can be read against what each row cost.

One row per experiment iteration: generation requests, prompt and completion tokens of the method's data stages
(completion tokens split into generated in this run and read back from the cache), the same cumulated over
iterations 1..t (the x axis of the `compute` figure), tokens trained, tokens generated to score the checkpoints,
wall seconds and GPU-seconds of all the iteration's stages. Records written before compute was accounted give no
row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from harness.core.records import atomic_write_text
from harness.reports.runs import Run

COLUMNS = (("method", "method"), ("iteration", "iter"), ("requests", "gen requests"),
           ("prompt_tokens", "gen prompt tokens"), ("completion_tokens", "gen tokens (this run)"),
           ("cached_completion_tokens", "gen tokens (cache)"), ("generated_through", "gen tokens, iters 1..t"),
           ("trained_tokens", "trained tokens"), ("eval_tokens", "eval tokens"), ("seconds", "seconds"),
           ("gpu_seconds", "GPU-seconds"))


def compute_rows(runs: list[Run]) -> list[dict]:
    """One row per experiment iteration among `runs` that has compute entries, in the runs' order."""
    rows, seen = [], set()
    for run in runs:
        exp = run.experiment
        if exp is None or (str(exp.path), exp.iteration) in seen:
            continue
        seen.add((str(exp.path), exp.iteration))
        c = exp.compute
        if not any(c["all"].values()):
            continue
        gen = c["generation"]
        rows.append({"method": exp.title, "iteration": exp.iteration, "requests": gen["requests"],
                     "prompt_tokens": gen["prompt_tokens"], "completion_tokens": gen["completion_tokens"],
                     "cached_completion_tokens": gen["cached_completion_tokens"],
                     "generated_through": exp.generated_tokens_through(),
                     "trained_tokens": c["training"]["trained_tokens"],
                     "eval_tokens": c["evaluation"]["total_completion_tokens"], "seconds": c["all"]["seconds"],
                     "gpu_seconds": c["all"]["gpu_seconds"] or None})
    return rows


def _text(value) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def rich_compute_table(rows: list[dict]):
    """The rows as a rich table for the terminal."""
    from rich.table import Table

    table = Table(title="Compute per method and iteration (generation: the method's data stages)",
                  caption="gen tokens: completion tokens; (cache): read back from the generation cache, counted as "
                          "what they cost when made; GPU-seconds: wall seconds x GPUs held")
    for key, label in COLUMNS:
        table.add_column(label, justify="left" if key == "method" else "right")
    for row in rows:
        table.add_row(*(_text(row[k]) for k, _ in COLUMNS))
    return table


def write_compute(rows: list[dict], folder: Path) -> list[Path]:
    """compute.csv and compute.md in `folder`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([k for k, _ in COLUMNS])
    writer.writerows([["" if row[k] is None else row[k] for k, _ in COLUMNS] for row in rows])
    md = ["| " + " | ".join(label for _, label in COLUMNS) + " |",
          "|" + "|".join("---" if k == "method" else "---:" for k, _ in COLUMNS) + "|"]
    md += ["| " + " | ".join(_text(row[k]) for k, _ in COLUMNS) + " |" for row in rows]
    paths = [folder / "compute.csv", folder / "compute.md"]
    atomic_write_text(paths[0], buf.getvalue())
    atomic_write_text(paths[1], "\n".join(md) + "\n")
    return paths
