"""Figures (matplotlib, PNG and SVG), laid out by the `plots:` section of results/paper/tables.yaml:

- `iterations`: one line per method (experiment) over self-play iterations, one panel per metric, 95% bootstrap
  intervals as error bars, the published rows of the paper model as hollow reference markers and its base model
  as a dotted line (paper Figure 3 for the actor; the refiner's LLMBar accuracy likewise);
- `scaling`: a metric against the generations per prompt each run actually spent (its record's
  `decode.generations_per_prompt`; the budget for records without it), one line per strategy (paper Figure 5), a
  point that spent less than its budget labelled with it, and the published numbers as reference lines;
- `compute`: a metric against the completion tokens each method's data stages generated through each iteration
  (from the iteration records' `compute` entries), one line per experiment, so methods can be compared at equal
  generation compute (iteration 0, the starting model, at 0 tokens).

A figure without runs to draw is skipped (`make_plots` returns what it wrote and why it skipped the others).
matplotlib is imported only here, with the file-only Agg backend.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from harness.core.errors import SparError
from harness.core.paper import rows_of_model
from harness.reports.cells import CellMaker
from harness.reports.layout import Column, Layout, PlotLayout
from harness.reports.runs import Run

FORMATS = ("png", "svg")
PAPER_STYLE = {"color": "0.35", "linestyle": "--", "marker": "o", "markerfacecolor": "none", "markersize": 7}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SparError("plots need matplotlib (pip install matplotlib), or pass --no-plots") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series_point(maker: CellMaker, run: Run, column: Column) -> tuple[float, float, float] | None:
    cell = maker.cell(run, column)
    if cell.value is None:
        return None
    value = 100 * cell.value
    if cell.has_ci:
        return value, value - 100 * cell.low, 100 * cell.high - value  # type: ignore[operator]
    return value, 0.0, 0.0


def _paper_value(row: dict, column: Column) -> float | None:
    value = row.get(column.paper) if column.paper else None
    return float(value) if isinstance(value, (int, float)) else None


def _dodge(count: int, width: float = 0.08) -> list[float]:
    """Small x offsets that keep series with equal x apart (error bars would hide each other)."""
    return [(i - (count - 1) / 2) * width for i in range(count)]


def _legend(ax) -> None:
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)


def _save(fig, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in FORMATS:
        path = folder / f"{name}.{fmt}"
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        out.append(path)
    return out


def _finish_axis(ax, label: str) -> None:
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    _legend(ax)


def _save_closed(plt, fig, folder: Path, name: str) -> tuple[list[Path], str]:
    """Save the figure in every format, close it: (files written, '')."""
    fig.tight_layout()
    paths = _save(fig, folder, name)
    plt.close(fig)
    return paths, ""


def _panels(plt, count: int, title: str):
    fig, axes = plt.subplots(1, count, figsize=(5.6 * count, 5.0), squeeze=False)
    fig.suptitle(title)
    return fig, list(axes[0])


def iterations_plot(runs: list[Run], plot: PlotLayout, maker: CellMaker, paper_model: str,
                    folder: Path) -> tuple[list[Path], str]:
    """A per-iteration figure: (files written, why it was skipped or '')."""
    chosen = [r for r in runs if r.experiment is not None and r.role == plot.role]
    panels = [c for c in plot.panels if any(maker.has(r, c) for r in chosen)]
    if not panels:
        return [], f"{plot.id}: no experiment with {plot.role} evaluations of " + \
            ", ".join(c.label for c in plot.panels)
    plt = _pyplot()
    fig, axes = _panels(plt, len(panels), plot.title)
    by_experiment: dict[str, list[Run]] = defaultdict(list)
    labels: dict[str, str] = {}
    for run in chosen:
        key = str(run.experiment.path)  # type: ignore[union-attr]
        by_experiment[key].append(run)
        labels[key] = f"{run.experiment.title} ({run.model})" if run.model else run.experiment.title  # type: ignore
    _, paper_rows = rows_of_model(plot.paper.get("tables", []), paper_model)
    methods = list(plot.paper.get("methods") or [])
    for ax, column in zip(axes, panels):
        ticks: set[int] = set()
        dodge = _dodge(len(by_experiment))
        for offset, (key, group) in zip(dodge, by_experiment.items()):
            points = sorted((r.iteration or 0, _series_point(maker, r, column)) for r in group
                            if _series_point(maker, r, column) is not None)
            if not points:
                continue
            xs = [x for x, _ in points]
            ticks.update(xs)
            ys = [p[0] for _, p in points]
            err = [[p[1] for _, p in points], [p[2] for _, p in points]]
            ax.errorbar([x + offset for x in xs], ys, yerr=err, marker="s", capsize=3, label=labels[key])
        published = sorted((r["iteration"], _paper_value(r, column)) for r in paper_rows
                           if r["method"] in methods and r["iteration"] is not None
                           and _paper_value(r, column) is not None)
        if published:
            ticks.update(x for x, _ in published)
            ax.plot([x for x, _ in published], [y for _, y in published],
                    label=f"paper: {' / '.join(methods)} ({paper_model})", **PAPER_STYLE)
        base = next((r for r in paper_rows if r["method"] == plot.paper.get("base")), None)
        if base is not None and _paper_value(base, column) is not None:
            ax.axhline(_paper_value(base, column), color="0.5", linestyle=":", label=f"paper: {base['model']}")
        ax.set_xlabel("self-play iteration (0 = initialisation)")
        ax.set_xticks(sorted(ticks) or [0])
        _finish_axis(ax, column.label)
    return _save_closed(plt, fig, folder, plot.id)


def _spent(run: Run, column: Column) -> tuple[float, int]:
    """(generations per prompt the run spent on the column's benchmark, its budget): the spent number comes from
    the record (`decode.generations_per_prompt`); records without it (greedy, older runs) count the budget."""
    _, budget = run.decode  # type: ignore[misc]
    spent = next((s for s in map(run.decode_spent, column.benchmarks) if s is not None), None)
    return (float(budget) if spent is None else spent), budget


def scaling_plot(runs: list[Run], plot: PlotLayout, maker: CellMaker, paper_model: str,
                 folder: Path) -> tuple[list[Path], str]:
    """An inference-scaling figure: (files written, why it was skipped or '')."""
    decoded = [r for r in runs if r.decode is not None]
    if not any(r.decode != ("greedy", 1) for r in decoded):  # type: ignore[comparison-overlap]
        return [], f"{plot.id}: no run decoded at a budget (spar eval --decode ... --budget N)"
    panels = [c for c in plot.panels if any(maker.has(r, c) for r in decoded)]
    if not panels:
        return [], f"{plot.id}: no decoded run has " + ", ".join(c.label for c in plot.panels)
    plt = _pyplot()
    fig, axes = _panels(plt, len(panels), plot.title)
    models = {r.model for r in decoded}
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in decoded:
        strategy, _ = run.decode  # type: ignore[misc]
        groups[strategy if len(models) == 1 else f"{strategy} ({run.model})"].append(run)
    _, paper_rows = rows_of_model(plot.paper.get("tables", []), paper_model)
    for ax, column in zip(axes, panels):
        xs_all = []
        for label, group in sorted(groups.items()):
            points = sorted((*_spent(r, column), _series_point(maker, r, column)) for r in group
                            if _series_point(maker, r, column) is not None)
            if not points:
                continue
            xs = [x for x, _, _ in points]
            xs_all += xs
            ax.errorbar(xs, [p[0] for _, _, p in points], yerr=[[p[1] for _, _, p in points],
                                                                [p[2] for _, _, p in points]],
                        marker="o", capsize=3, label=label)
            for x, budget, point in points:  # a point that spent less than its budget names the budget
                if x < budget:
                    ax.annotate(f"budget {budget}", (x, point[0]), textcoords="offset points", xytext=(4, -10),
                                fontsize=6, color="0.35")
        for spec in plot.paper.get("points") or []:
            row = next((r for r in paper_rows if r["method"] == spec.get("method")
                        and (spec.get("iteration") is None or r["iteration"] == spec["iteration"])), None)
            if row is not None and _paper_value(row, column) is not None:
                ax.plot([spec.get("generations", 1)], [_paper_value(row, column)], linestyle="none",
                        label=f"{spec.get('label', 'paper')} ({paper_model})",
                        **{k: v for k, v in PAPER_STYLE.items() if k != "linestyle"})
        for spec in plot.paper.get("lines") or []:
            row = next((r for r in paper_rows if r["method"] == spec.get("method")), None)
            if row is not None and _paper_value(row, column) is not None:
                ax.axhline(_paper_value(row, column), color="0.35", linestyle="--",
                           label=f"{spec.get('label', 'paper')} ({paper_model})")
        if xs_all and max(xs_all) / max(min(xs_all), 1) >= 8:
            ax.set_xscale("log", base=2)
        if xs_all:
            ticks = sorted({round(x, 1) for x in xs_all} | {1})
            ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
            ax.minorticks_off()
        ax.set_xlabel("generations per prompt (spent, at most the decode budget)")
        _finish_axis(ax, column.label)
    return _save_closed(plt, fig, folder, plot.id)


def compute_plot(runs: list[Run], plot: PlotLayout, maker: CellMaker, paper_model: str,
                 folder: Path) -> tuple[list[Path], str]:
    """Score against generated tokens per method: (files written, why it was skipped or '')."""
    chosen = [(r, r.experiment.generated_tokens_through()) for r in runs  # type: ignore[union-attr]
              if r.experiment is not None and r.role == plot.role]
    chosen = [(r, x) for r, x in chosen if x is not None]
    panels = [c for c in plot.panels if any(maker.has(r, c) for r, _ in chosen)]
    if not panels:
        return [], f"{plot.id}: no experiment whose records hold compute entries and {plot.role} evaluations of " + \
            ", ".join(c.label for c in plot.panels)
    plt = _pyplot()
    fig, axes = _panels(plt, len(panels), plot.title)
    by_experiment: dict[str, list[tuple[Run, int]]] = defaultdict(list)
    for run, tokens in chosen:
        label = run.experiment.title + (f" ({run.model})" if run.model else "")  # type: ignore[union-attr]
        by_experiment[label].append((run, tokens))
    for ax, column in zip(axes, panels):
        for label, group in sorted(by_experiment.items()):
            points = sorted((tokens, run.iteration or 0, _series_point(maker, run, column)) for run, tokens in group
                            if _series_point(maker, run, column) is not None)
            if not points:
                continue
            ax.errorbar([x for x, _, _ in points], [p[0] for _, _, p in points],
                        yerr=[[p[1] for _, _, p in points], [p[2] for _, _, p in points]], marker="o", capsize=3,
                        label=label)
            for x, t, p in points:
                ax.annotate(f"it{t}", (x, p[0]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("completion tokens generated by the method's data stages, iterations 1..t")
        _finish_axis(ax, column.label)
    return _save_closed(plt, fig, folder, plot.id)


def make_plots(runs: list[Run], layout: Layout, maker: CellMaker, paper_model: str,
               folder: Path) -> tuple[list[Path], list[str]]:
    """Every figure of the layout that has runs to draw: (files written, reasons for the figures skipped)."""
    written, skipped = [], []
    for plot in layout.plots:
        draw = {"iterations": iterations_plot, "compute": compute_plot}.get(plot.kind, scaling_plot)
        paths, why = draw(runs, plot, maker, paper_model, folder)
        written += paths
        if why:
            skipped.append(why)
    return written, skipped
