"""Progress when the output is not a terminal: plain lines every interval (harness.core.progress.LineProgress),
driven by a fake clock; the reporter picks lines or a bar by whether its console is a terminal."""

from __future__ import annotations

import io
import threading

import pytest
from rich.console import Console

from harness.core.progress import LineProgress, RichReporter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_line_shows_counts_elapsed_remaining_and_status():
    clock = Clock()
    lines: list[str] = []
    progress = LineProgress("iter 1 collect", 200, lines.append, clock=clock)
    progress.advance(50)
    clock.now += 90
    assert progress.line() == "iter 1 collect: 50/200 (25%), 1m30s elapsed, ~4m30s left"
    progress.advance(0, total=10, completed=4, status="loss 0.6931")  # a trainer's absolute progress
    assert progress.line() == "iter 1 collect: 4/10 (40%), 1m30s elapsed, ~2m15s left, loss 0.6931"
    clock.now += 3600
    assert progress.line(ended=True) == "iter 1 collect: done 4/10 (40%), 1h01m elapsed, loss 0.6931"


def test_unknown_total_shows_the_count_only():
    clock = Clock()
    progress = LineProgress("train dpo", 0, [].append, clock=clock)
    progress.advance(3)
    clock.now += 5
    assert progress.line() == "train dpo: 3, 5s elapsed"


def test_lines_come_every_interval_while_nothing_advances():
    """The beat runs in its own thread: a long batch that reports nothing still prints that the stage is alive."""
    lines: list[str] = []
    seen = threading.Event()

    def write(text: str) -> None:
        lines.append(text)
        if len(lines) >= 2:
            seen.set()

    with LineProgress("eval ifeval", 5, write, interval=0.01).running() as advance:
        assert seen.wait(30), "no periodic line"
        advance(5)
    assert lines[0].startswith("eval ifeval: 0/5 (0%)")
    assert lines[-1].startswith("eval ifeval: done 5/5 (100%)")


def test_a_failed_stage_says_stopped():
    lines: list[str] = []
    with pytest.raises(RuntimeError):
        with LineProgress("search", 4, lines.append, interval=3600).running() as advance:
            advance(1)
            raise RuntimeError("boom")
    assert lines == [lines[-1]] and lines[-1].startswith("search: 1/4 (25%)") and lines[-1].endswith("(stopped)")


def test_reporter_prints_lines_when_not_a_terminal():
    out = io.StringIO()
    reporter = RichReporter(Console(file=out, force_terminal=False, width=200), line_interval=3600)
    with reporter.stage("iter 1 judge", 3) as advance:
        advance(3, status="[bold]x[/bold]")
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]
    assert out.getvalue().startswith("iter 1 judge: done 3/3 (100%)") and "[bold]x[/bold]" in out.getvalue()


def test_reporter_draws_a_bar_on_a_terminal():
    out = io.StringIO()
    reporter = RichReporter(Console(file=out, force_terminal=True, width=200), line_interval=3600)
    with reporter.stage("iter 1 judge", 3) as advance:
        advance(3)
    assert "━" in out.getvalue() and "done" not in out.getvalue()
