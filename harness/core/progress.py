"""Progress reporting: rich bars for the CLI on a terminal, a plain line every ~30 s when the output goes to a file
or a CI log (`LineProgress`), silence for library callers."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol

#: seconds between progress lines when the output is not a terminal
LINE_INTERVAL_S = 30.0


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


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class LineProgress:
    """One stage's progress as plain lines (for logs): one every `interval` seconds while it runs (from a background
    thread, so a long batch with no progress still shows it is alive) and one when it ends (as the bar's last frame).
    `advance` has the bar's signature: n more units done; `total`, `completed` and `status` update the line."""

    def __init__(self, description: str, total: int, write: Callable[[str], None],
                 interval: float = LINE_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.description, self.total, self.write, self.interval, self.clock = description, total or None, write, \
            interval, clock
        self.done, self.status = 0, ""
        self.started = self.clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def advance(self, n: int, total: int | None = None, completed: int | None = None,
                status: str | None = None) -> None:
        with self._lock:
            self.done = completed if completed is not None else self.done + n
            self.total = total if total is not None else self.total
            self.status = status if status is not None else self.status

    def line(self, ended: bool = False) -> str:
        """The current state: done/total, percent, elapsed and (while running, when known) the time remaining."""
        with self._lock:
            done, total, status = self.done, self.total, self.status
        elapsed = self.clock() - self.started
        count = f"{done}/{total} ({100 * done / total:.0f}%)" if total else f"{done}"
        text = f"{self.description}: {'done ' if ended else ''}{count}, {_duration(elapsed)} elapsed"
        if not ended and total and 0 < done < total:
            text += f", ~{_duration(elapsed * (total - done) / done)} left"
        return text + (f", {status}" if status else "")

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self.write(self.line())

    @contextmanager
    def running(self) -> Iterator[Callable[..., None]]:
        """Start the periodic lines; yields `advance`; the last line says how the stage ended."""
        beat = threading.Thread(target=self._beat, name="spar-progress", daemon=True)
        beat.start()
        ended = False
        try:
            yield self.advance
            ended = True
        finally:
            self._stop.set()
            beat.join()
            self.write(self.line(ended=True) if ended else f"{self.line()} (stopped)")


class RichReporter:
    """A rich progress bar per stage on a terminal; when the console is not a terminal (a file, a pipe, a CI log),
    plain progress lines every `line_interval` seconds instead (a bar is drawn there only when it ends)."""

    def __init__(self, console=None, line_interval: float = LINE_INTERVAL_S):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.line_interval = line_interval

    @contextmanager
    def stage(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        if not self.console.is_terminal:
            with LineProgress(description, total, self._line, self.line_interval).running() as advance:
                yield advance
            return
        with self._bar(description, total) as advance:
            yield advance

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    @contextmanager
    def _bar(self, description: str, total: int) -> Iterator[Callable[..., None]]:
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
