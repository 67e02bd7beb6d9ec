"""`spar regress RUN --baseline FILE`: a run's metrics against a stored baseline; a drop beyond the tolerance, or
below the baseline's confidence interval, fails (exit 1).

The baseline is JSON (`write_baseline` / `--update`):

    {"format": "spar-regress-baseline/1", "created": "...", "tolerance": 0.02,
     "source": {"run": "...", "record_command": "eval", "models": {...}, "config": {...},
                "benchmarks": {"<benchmark>": {"data": {...}, "scorer": {...}}}},
     "metrics": {"<benchmark>.<metric>": {"value": 0.5, "low": 0.3, "high": 0.7, "n": 10, "unit": "pair",
                                          "n_resamples": 2000, "seed": 0}}}

Default metrics (when the baseline is created): every `*_acc` / `*_f1` number at the top of the metrics of the
run's judge benchmarks (those `spar score` reads judgments for: the refiner's judgment accuracy and F1 per subset,
adversarial and overall). A run that scored different data or used other scorer settings than the baseline's is
refused (SparError), as `spar compare` does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from evaluators import evaluator_class, uncertainty
from harness.core.errors import SparError
from harness.core.records import now, write_json
from harness.reports.cells import CellMaker
from harness.reports.compare import _differences
from harness.reports.layout import Column
from harness.reports.runs import Run, data_identity, find_metric

FORMAT = "spar-regress-baseline/1"
DEFAULT_TOLERANCE = 0.02
OK, DROP, BELOW_CI, IMPROVED = "ok", "DROP", "BELOW CI", "improved"


@dataclass
class Check:
    """One metric: baseline value and interval, current value, change (current - baseline) and status."""

    metric: str
    baseline: float
    low: float | None
    high: float | None
    current: float
    status: str

    @property
    def change(self) -> float:
        """current - baseline."""
        return self.current - self.baseline

    @property
    def failed(self) -> bool:
        """A drop beyond the tolerance or below the baseline's interval."""
        return self.status in (DROP, BELOW_CI)


def _split(name: str, runs: list[Run]) -> tuple[Run, str, str]:
    """The run holding '<benchmark>.<metric>' (the first of `runs` with that benchmark)."""
    for run in runs:
        for bench in run.benchmarks:
            if name.startswith(bench + "."):
                return run, bench, name[len(bench) + 1:]
    known = sorted({b for r in runs for b in r.benchmarks})
    raise SparError(f"unknown metric {name!r}: name it '<benchmark>.<metric>' with a benchmark of the run "
                    f"({', '.join(known) or 'none'})")


def default_metrics(runs: list[Run]) -> list[str]:
    """Every top-level `*_acc` / `*_f1` number of the runs' judge benchmarks (`scores == "judgments"`)."""
    out = []
    for run in runs:
        for bench in run.benchmarks:
            try:
                judged = evaluator_class(bench).scores == "judgments"
            except SparError:
                judged = False
            if judged:
                out += [f"{bench}.{k}" for k, v in run.metrics[bench].items()
                        if k.endswith(("_acc", "_f1")) and uncertainty.is_number(v)]
    if not out:
        raise SparError("the run has no judge benchmark to guard by default; name the metrics with --metrics")
    return list(dict.fromkeys(out))


def _value(name: str, runs: list[Run]) -> float:
    run, bench, metric = _split(name, runs)
    value = find_metric(run.metrics[bench], metric)
    if not uncertainty.is_number(value):
        raise SparError(f"unknown metric {name!r} (no number at {metric!r} in {run.path}'s {bench} metrics)")
    return float(value)


def write_baseline(path: Path, runs: list[Run], metrics: list[str] | None, tolerance: float,
                   maker: CellMaker) -> dict:
    """Measure `metrics` (default: `default_metrics`) with bootstrap intervals and write the baseline file."""
    names = metrics or default_metrics(runs)
    entries, benchmarks = {}, {}
    first = runs[0]
    for name in names:
        run, bench, metric = _split(name, runs)
        _value(name, runs)
        cell = maker.cell(run, Column(name, ((bench, metric),)))
        entries[name] = {"value": cell.value, "low": cell.low if cell.has_ci else None,
                         "high": cell.high if cell.has_ci else None, "n": cell.n, "unit": cell.unit,
                         "n_resamples": maker.n_resamples, "seed": maker.seed}
        benchmarks[bench] = {"data": run.entry(bench).get("data"), "scorer": run.scorer(bench)}
    baseline = {"format": FORMAT, "created": now(), "tolerance": tolerance,
                "source": {"run": str(first.path), "label": first.label, "record_command": first.command,
                           "argv": (first.record.get("environment") or {}).get("argv"),
                           "models": {k: v.get("identity") if isinstance(v, dict) else v
                                      for k, v in (first.record.get("models") or {}).items()},
                           "config": first.config, "benchmarks": benchmarks},
                "metrics": entries}
    write_json(path, baseline)
    return baseline


def read_baseline(path: Path) -> dict:
    """A baseline file, checked to be one (one-line errors otherwise)."""
    if not path.is_file():
        raise SparError(f"{path}: no such baseline file (create it with --update)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SparError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("metrics"), dict):
        raise SparError(f"{path}: not a spar regress baseline (format {FORMAT})")
    return data


def _check_same_setup(baseline: dict, runs: list[Run], names: list[str]) -> None:
    recorded = (baseline.get("source") or {}).get("benchmarks") or {}
    for bench in dict.fromkeys(_split(n, runs)[1] for n in names):
        if bench not in recorded:
            continue
        run = next(r for r in runs if bench in r.benchmarks)
        want = recorded[bench]
        rec = uncertainty.records_for(bench)
        then, now_ = data_identity(want.get("data"), counts=True), run.data_identity(bench, counts=True)
        if then != now_:
            raise SparError(f"cannot check {bench} against the baseline: the run scored different data: "
                            + "; ".join(_differences(then, now_)[:3]))
        sa, sb = rec.scorer_identity(want.get("scorer")), rec.scorer_identity(run.scorer(bench))
        if sa != sb:
            raise SparError(f"cannot check {bench} against the baseline: different scorer settings: "
                            + "; ".join(_differences(sa, sb)[:3]))


def check(runs: list[Run], baseline: dict, metrics: list[str] | None = None,
          tolerance: float | None = None) -> list[Check]:
    """Each baseline metric (or only `metrics`) of the run against the baseline."""
    stored = baseline["metrics"]
    names = metrics or list(stored)
    unknown = [n for n in names if n not in stored]
    if unknown:
        raise SparError(f"unknown metric {unknown[0]!r}: the baseline has {', '.join(stored)}")
    _check_same_setup(baseline, runs, names)
    tol = float(baseline.get("tolerance", DEFAULT_TOLERANCE) if tolerance is None else tolerance)
    out = []
    for name in names:
        entry = stored[name]
        base = float(entry["value"])
        current = _value(name, runs)
        low, high = entry.get("low"), entry.get("high")
        drop = base - current
        if drop > tol + 1e-12:
            status = DROP
        elif low is not None and current < float(low) - 1e-12:
            status = BELOW_CI
        elif current - base > tol + 1e-12:
            status = IMPROVED
        else:
            status = OK
        out.append(Check(name, base, low, high, current, status))
    return out


def regress_table(checks: list[Check], tolerance: float, baseline_path: Path):
    """A rich table of the checks, failures first."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"regression check against {baseline_path}",
                  caption=f"percent; fails when a metric drops by more than {100 * tolerance:.1f} points or "
                          "below the baseline's 95% CI")
    table.add_column("metric", overflow="fold", min_width=20)
    for col in ("baseline", "baseline 95% CI", "now", "change", "status"):
        table.add_column(col, justify="left" if col == "status" else "right", no_wrap=True)
    for c in sorted(checks, key=lambda c: (not c.failed, c.metric)):
        ci = "–" if c.low is None or c.high is None or math.isnan(c.low) else \
            f"[{100 * c.low:.1f}, {100 * c.high:.1f}]"
        style = "bold red" if c.failed else "green" if c.status == IMPROVED else ""
        table.add_row(c.metric, f"{100 * c.baseline:.1f}", ci, f"{100 * c.current:.1f}",
                      f"{100 * c.change:+.1f}", Text(c.status, style=style))
    return table
