"""`spar eval` killed with SIGKILL halfway resumes without regenerating finished samples, and its metrics equal an
uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import REPO, run_spar
from evaluators.ifeval import QUICKSTART_FILE

TOTAL = sum(1 for line in QUICKSTART_FILE.read_text().splitlines() if line.strip())


def _count(db) -> int:
    try:
        with sqlite3.connect(str(db), timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume(tiny_model_dir, tmp_path):
    args = ["eval", "--model", str(tiny_model_dir), "--benchmarks", "ifeval", "--data", str(QUICKSTART_FILE),
            "--batch-size", "2", "--max-new-tokens", "160"]
    cache = tmp_path / "gen.sqlite"
    cmd = [sys.executable, "-m", "harness.commands", *args, "--output", str(tmp_path / "run"), "--cache", str(cache)]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while _count(cache) < 6 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _count(cache)
    assert 6 <= done < TOTAL, f"kill landed at {done}/{TOTAL} samples; the test needs it mid-run"
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "running"

    resumed = run_spar(*args, "--output", str(tmp_path / "run"), "--cache", str(cache))
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    stats = record["benchmarks"]["ifeval"]["generation_stats"]
    assert record["status"] == "finished"
    assert stats["cache_hits"] == done and stats["generated"] == TOTAL - done

    clean = run_spar(*args, "--output", str(tmp_path / "clean"), "--cache", str(tmp_path / "clean.sqlite"))
    assert clean.returncode == 0, clean.stderr
    for name in ("ifeval/metrics.json", "ifeval/samples.jsonl", "metrics.json"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
