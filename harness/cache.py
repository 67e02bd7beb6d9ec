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

from harness.types import Completion, SamplingParams


def cache_key(identity: str, rendered: str, sampling: SamplingParams, seed: int, sample_index: int) -> str:
    payload = json.dumps([identity, rendered, sampling.to_dict(), seed, sample_index], ensure_ascii=False,
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class GenerationCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=120, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys = list(keys)
        found: dict[str, Completion] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, value FROM completions WHERE key IN ({','.join('?' * len(part))})", part)
            found.update((k, Completion.from_dict(json.loads(v))) for k, v in rows)
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
