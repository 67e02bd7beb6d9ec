"""Content-addressed generation cache on SQLite.

A key is the sha256 of (model identity, rendered prompt, sampling parameters, seed, sample index). Each batch is
written in one transaction, so a process killed with SIGKILL leaves either the whole batch or none of it; a restart
reads back everything that finished and generates only the rest.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Iterable

from harness.core.errors import SparError
from harness.core.types import Completion, SamplingParams

SQLITE_HEADER = b"SQLite format 3\x00"


def cache_key(identity: str, rendered: str, sampling: SamplingParams, seed: int, sample_index: int) -> str:
    payload = json.dumps([identity, rendered, sampling.to_dict(), seed, sample_index], ensure_ascii=False,
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class GenerationCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_cache_path(self.path)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=120, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("SELECT key, value FROM completions LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise SparError(f"--cache {self.path}: the generation cache is corrupt ({exc}); delete that file (its "
                            "generations will be made again)") from None

    def _corrupt(self, exc: Exception) -> SparError:
        return SparError(f"--cache {self.path}: the generation cache is corrupt ({exc}); delete that file (its "
                         "generations will be made again)")

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys = list(keys)
        found: dict[str, Completion] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            try:
                rows = self._db.execute(
                    f"SELECT key, value FROM completions WHERE key IN ({','.join('?' * len(part))})", part).fetchall()
                found.update((k, Completion.from_dict(json.loads(v))) for k, v in rows)
            except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
                raise self._corrupt(exc) from None
        return found

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        rows = [(k, json.dumps(c.to_dict(), ensure_ascii=False)) for k, c in items]
        with self._db:  # one transaction: all or nothing
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO completions (key, value) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def check_cache_path(path: Path) -> None:
    """The cache must be an SQLite file (or not exist yet) in a folder that can be made: one-line errors before any
    model loads."""
    if path.is_dir():
        raise SparError(f"--cache {path}: is a folder; name a file (e.g. {path / 'generations.sqlite'})")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise SparError(f"--cache {path}: cannot be read ({exc.strerror or exc})") from None
        if head and head != SQLITE_HEADER:
            raise SparError(f"--cache {path}: not an SQLite file; name another file or delete this one")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise SparError(f"--cache {path}: {parent} is a file, so the cache cannot be made under it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SparError(f"--cache {path}: cannot make its folder ({exc.strerror or exc})") from None
