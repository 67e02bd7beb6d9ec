"""Tables out: a rich table for the terminal, and Markdown, LaTeX (booktabs) and CSV files.

Percent with one decimal as the paper prints; a measured cell is `value [low, high]` (its 95% bootstrap interval),
a published cell the number as printed, a Δ cell the signed difference in percentage points.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from harness.core.records import atomic_write_text
from harness.reports.cells import Cell
from harness.reports.tables import DELTA, MEASURED, PAPER, Table


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def cell_text(cell, kind: str, interval: bool = True) -> str:
    """The text of one cell (percent)."""
    if kind == MEASURED:
        if not isinstance(cell, Cell) or cell.value is None:
            return "–"
        signed = cell.difference
        text = _pct(100 * cell.value, signed)
        if interval and cell.has_ci:
            text += f" [{_pct(100 * cell.low, signed)}, {_pct(100 * cell.high, signed)}]"
        return text
    return _pct(cell, signed=kind == DELTA)


def _measured_columns(t: Table) -> list[int]:
    """Indexes of the columns that some measured row has a value for."""
    return [i for i in range(len(t.columns))
            if any(r.kind == MEASURED and isinstance(r.cells[i], Cell) and r.cells[i].value is not None
                   for r in t.rows)]


#: printed width of the row-label column (rich's borders and padding included)
ROW_COLUMN = 34 + 3


def _column_width(t: Table, i: int) -> int:
    """Printed width of column `i` (its widest line, header included, plus rich's padding and border)."""
    lines = [t.columns[i]]
    for row in t.rows:
        lines += cell_text(row.cells[i], row.kind).split(" [", 1)
    return max(len(x) for x in lines) + 3


def column_chunks(t: Table, keep: list[int], width: int | None) -> list[list[int]]:
    """`keep` split into consecutive parts that each fit `width` characters beside the row labels (one part when
    `width` is None or everything fits), so no column is cut or dropped on a narrow or non-terminal output."""
    if not width:
        return [keep]
    chunks: list[list[int]] = [[]]
    used = ROW_COLUMN
    for i in keep:
        w = _column_width(t, i)
        if chunks[-1] and used + w > width:
            chunks.append([])
            used = ROW_COLUMN
        chunks[-1].append(i)
        used += w
    return chunks


def rich_tables(tables: list[Table], width: int | None = None):
    """rich renderables: only the columns with measured values (the files have all), intervals under the values.
    With `width` (the console's), a table wider than that is stacked: printed in parts of whole columns, each
    with the row labels, so every column shows whatever the output."""
    out = []
    for t in tables:
        keep = _measured_columns(t)
        caption = _caption(t)
        if len(keep) < len(t.columns):
            caption.append(f"not measured (in the files only): "
                           f"{', '.join(c for i, c in enumerate(t.columns) if i not in keep)}")
        chunks = column_chunks(t, keep, width)
        for n, chunk in enumerate(chunks):
            title = t.title if len(chunks) == 1 else f"{t.title} (part {n + 1} of {len(chunks)})"
            out.append(_rich_table(t, chunk, title, "\n".join(caption) if n == len(chunks) - 1 else None))
    return out


def _rich_table(t: Table, keep: list[int], title: str, caption: str | None):
    """One rich table of the columns `keep` of `t`."""
    from rich.table import Table as RichTable
    from rich.text import Text

    rt = RichTable(title=title, caption=caption)
    rt.add_column("row", overflow="fold", min_width=22, max_width=34)
    for i in keep:
        rt.add_column(t.columns[i], justify="right", no_wrap=True)
    for n, row in enumerate(t.rows):
        if row.kind == MEASURED and n:
            rt.add_section()
        style = {MEASURED: "bold", PAPER: "dim", DELTA: ""}[row.kind]
        cells = []
        for i in keep:
            cell = row.cells[i]
            if row.kind == MEASURED and isinstance(cell, Cell) and cell.value is not None and cell.has_ci:
                value, _, ci = cell_text(cell, row.kind).partition(" ")
                cells.append(Text.assemble((value, style), "\n", (ci, "dim")))
            elif row.kind == DELTA and cell is not None:
                cells.append(Text(cell_text(cell, row.kind),
                                  style="green" if cell > 0 else "red" if cell < 0 else ""))
            else:
                cells.append(Text(cell_text(cell, row.kind), style=style))
        rt.add_row(Text(row.label, style=style), *cells)
    return rt


def _caption(t: Table) -> list[str]:
    lines = ["measured: percent [95% bootstrap CI]"
             + (f"; paper rows: {t.paper_model} ({t.paper_table})" if t.paper_table else "")]
    return lines + t.notes


def markdown(tables: list[Table]) -> str:
    """All tables as GitHub Markdown."""
    parts = []
    for t in tables:
        lines = [f"### {t.title}", "", "| row | " + " | ".join(t.columns) + " |",
                 "|---|" + "---:|" * len(t.columns)]
        for row in t.rows:
            label = row.label.replace("|", "\\|")
            texts = [cell_text(c, row.kind) for c in row.cells]
            if row.kind == MEASURED:
                label = f"**{label}**"
            elif row.kind == PAPER:
                label, texts = f"*{label}*", [f"*{x}*" if x != "–" else x for x in texts]
            lines.append(f"| {label} | " + " | ".join(texts) + " |")
        lines.append("")
        lines += [f"- {line}" for line in _caption(t)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "Δ": r"$\Delta$", "−": "--",
          "·": r"$\cdot$", "–": "--"}


def latex_escape(text: str) -> str:
    """Text with LaTeX's special characters escaped."""
    return re.sub("|".join(re.escape(k) for k in _LATEX), lambda m: _LATEX[m.group(0)], text)


def latex(tables: list[Table]) -> str:
    """All tables as LaTeX `table` environments with booktabs rules (\\usepackage{booktabs})."""
    parts = []
    for t in tables:
        spec = "l" + "r" * len(t.columns)
        lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{latex_escape(t.title)}}}",
                 rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(["Row"] + [latex_escape(c) for c in t.columns]) + r" \\", r"\midrule"]
        for i, row in enumerate(t.rows):
            if row.kind == MEASURED and i:
                lines.append(r"\midrule")
            cells = []
            for c in row.cells:
                if row.kind == MEASURED and isinstance(c, Cell) and c.value is not None and c.has_ci:
                    main, _, ci = cell_text(c, row.kind).partition(" ")
                    cells.append(rf"{latex_escape(main)} {{\scriptsize {latex_escape(ci)}}}")
                else:
                    text = latex_escape(cell_text(c, row.kind))
                    cells.append(rf"\textit{{{text}}}" if row.kind == PAPER else text)
            label = latex_escape(row.label)
            label = rf"\textit{{{label}}}" if row.kind == PAPER else label
            lines.append(" & ".join([label] + cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [rf"\par\smallskip\footnotesize {latex_escape(line)}" for line in _caption(t)]
        lines.append(r"\end{table}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


CSV_FIELDS = ("table", "row", "kind", "source", "column", "value", "ci_low", "ci_high", "n", "unit", "p", "note")


def csv_text(tables: list[Table]) -> str:
    """All cells in long form: one line per (table, row, column); values in percent."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for t in tables:
        for row in t.rows:
            for label, c in zip(t.columns, row.cells):
                if isinstance(c, Cell):
                    pct = (lambda v: "" if v is None else f"{100 * v:.4f}")
                    writer.writerow([t.id, row.label, row.kind, row.source, label, pct(c.value), pct(c.low),
                                     pct(c.high), c.n if c.n is not None else "", c.unit,
                                     "" if c.p is None else f"{c.p:.4g}", c.note])
                else:
                    writer.writerow([t.id, row.label, row.kind, row.source, label,
                                     "" if c is None else f"{c:.4f}", "", "", "", "", "", ""])
    return buf.getvalue()


def write_tables(tables: list[Table], folder: Path) -> list[Path]:
    """tables.md, tables.tex, tables.csv, and one file of each per table (table<id>.md/.tex/.csv) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, fn in ((".md", markdown), (".tex", latex), (".csv", csv_text)):
        path = folder / f"tables{suffix}"
        atomic_write_text(path, fn(tables))
        written.append(path)
        for t in tables:
            one = folder / f"table{t.id}{suffix}"
            atomic_write_text(one, fn([t]))
            written.append(one)
    return written
