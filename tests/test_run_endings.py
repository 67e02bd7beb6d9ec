"""How runs end: SIGTERM marks the record "interrupted" (exit 130); a SIGKILL leaves "running", and the same
command run again finishes with byte-identical outputs to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO

ARGS = ["eval", "--data", "quickstart", "--limit", "12", "--model", "m", "--backend", "fake",
        "--set", "model.script=tests.slow_reply:reply", "--batch-size", "2"]


def _start(out: Path, cache: Path) -> subprocess.Popen:
    env = dict(os.environ, SPAR_SLOW_REPLY_S="0.25")
    argv = [sys.executable, "-m", "harness.commands", *ARGS, "--output", str(out), "--cache", str(cache)]
    return subprocess.Popen(argv, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_cache_rows(cache: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.exists():
            try:
                with sqlite3.connect(cache) as con:
                    if con.execute("SELECT COUNT(*) FROM completions").fetchone()[0] >= 2:
                        return
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    raise AssertionError("the run wrote nothing to its cache in time")


def test_sigterm_marks_the_record_interrupted(tmp_path):
    proc = _start(tmp_path / "run", tmp_path / "c.sqlite")
    _wait_for_cache_rows(tmp_path / "c.sqlite", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["status"] == "interrupted" and "resume" in record["error"] and record["finished"]


def test_sigkill_then_rerun_gives_identical_outputs(tmp_path):
    cache = tmp_path / "c.sqlite"
    proc = _start(tmp_path / "run", cache)
    _wait_for_cache_rows(cache, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "running"

    for out, db in ((tmp_path / "run", cache), (tmp_path / "clean", tmp_path / "clean.sqlite")):
        done = _start(out, db)
        _, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["status"] == "finished" and record["benchmarks"]["ifeval"]["generation_stats"]["cache_hits"] >= 2
    for name in ("metrics.json", "ifeval/metrics.json", "ifeval/samples.jsonl"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
