"""A run's metrics in the terminal: each benchmark's headline rows in one summary table, then its detail tables
(fractions in %, counts and levels as numbers, missing as n/a)."""

from __future__ import annotations

from typing import Any


def _value(name: str, value: Any) -> str:
    """A metric for the terminal: fractions in %, counts and levels as numbers, missing as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not name.endswith("(levels)"):
        return f"{100 * value:.2f}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def print_results(console, metrics: dict[str, dict], title: str) -> None:
    """The summary (each benchmark's headline rows) and each benchmark's detail tables."""
    from rich.table import Table

    from evaluators import get_evaluator

    table = Table(title=title)
    for col, justify in (("benchmark", "left"), ("metric", "left"), ("value (%)", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    details = []
    notes = []
    for bench, values in metrics.items():
        ev = get_evaluator(bench)
        rows = ev.summary_rows(values)
        label = bench + (" (partial)" if values.get("partial") else "")
        for i, (name, value) in enumerate(rows):
            table.add_row(label if i == 0 else "", name, _value(name, value))
        details += ev.detail_tables(values)
        if values.get("counts"):
            notes.append(f"{bench}: " + ", ".join(f"{k}={v}" for k, v in values["counts"].items()))
        coverage = values.get("coverage")
        if isinstance(coverage, dict) and coverage.get("partial"):
            notes.append(f"{bench}: PARTIAL file, {coverage.get('scored')} of {coverage.get('total')} items scored")
    table.caption = "; ".join(notes)
    console.print(table)
    for detail_title, columns, rows in details:
        detail = Table(title=detail_title)
        for col in columns:
            detail.add_column(str(col), justify="left" if col == columns[0] else "right")
        for row in rows:
            detail.add_row(*(_value(str(columns[i]), v) if not isinstance(v, str) else v
                             for i, v in enumerate(row)))
        console.print(detail)
