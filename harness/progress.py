"""Progress reporting: rich bars for the CLI, silence for library callers."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Protocol


class Reporter(Protocol):
    """`stage` yields `advance(n, **fields)`: n more units done; optional `total`, `completed` (absolute progress)
    and `status` (a short text such as the current loss) update the line."""

    def stage(self, description: str, total: int) -> "contextmanager[Callable[..., None]]": ...

    def note(self, text: str) -> None: ...


class SilentReporter:
    @contextmanager
    def stage(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        yield lambda n, **fields: None

    def note(self, text: str) -> None:
        pass


class RichReporter:
    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=self.console,
                      transient=False) as progress:
            task = progress.add_task(description, total=total or None, status="")

            def advance(n: int, total: int | None = None, completed: int | None = None, status: str | None = None):
                changes = {k: v for k, v in (("total", total), ("completed", completed), ("status", status))
                           if v is not None}
                progress.update(task, advance=n, **changes)

            yield advance

    def note(self, text: str) -> None:
        self.console.print(text)
