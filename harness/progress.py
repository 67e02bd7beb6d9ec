"""Progress reporting: rich bars for the CLI, silence for library callers."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Protocol


class Reporter(Protocol):
    def stage(self, description: str, total: int) -> "contextmanager[Callable[[int], None]]": ...

    def note(self, text: str) -> None: ...


class SilentReporter:
    @contextmanager
    def stage(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n: None

    def note(self, text: str) -> None:
        pass


class RichReporter:
    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task, n)

    def note(self, text: str) -> None:
        self.console.print(text)
