"""A stat-keyed index of file sha256s, so a model's identity does not reread its weights on every run.

Each entry maps a file's resolved absolute path to its sha256, valid only while the file's size, mtime_ns, ctime_ns
and inode are those recorded (the same key git's index uses). A file rewritten in place changes its mtime/ctime; one
replaced by another (rename, copy, checkout) changes its inode or ctime; either way its entry no longer matches and
the file is hashed again.

Racy entries (git's "racily clean" problem): a file written within `RACY_WINDOW_NS` of the moment it was hashed
might be written again within the filesystem's timestamp granularity and keep the same key. Such entries are never
trusted; the file is hashed again on its next lookup, by which time the fresh entry is old enough to be trusted.

The index is an sqlite database (WAL, one short transaction per update; hashing happens outside any transaction)
so several processes can use it at once. It is only a cache: an unreadable or corrupt index is set aside and
rebuilt, and if even that fails every file is hashed as if there were no index.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

INDEX_NAME = "identity-index.sqlite"
SCHEMA_VERSION = 1
RACY_WINDOW_NS = 2_000_000_000  # 2 s: covers 1 s (ext3, HFS+) and 2 s (FAT) timestamps and the kernel's coarse clock
BUSY_TIMEOUT_S = 30.0
OPEN_ATTEMPTS = 5  # opens retried on an immediate "locked" (0.05 + 0.1 + 0.2 + 0.4 s of pauses at most)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL
)
"""


def _now_ns() -> int:
    return time.time_ns()


@dataclass(frozen=True)
class StatKey:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, path: str) -> "StatKey":
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass(frozen=True)
class Digests:
    """The sha256 of each file asked for (same order), and which of them had to be read."""

    sha256: list[str]
    hashed: list[str]  # resolved paths whose contents were read this time

    @property
    def all_from_index(self) -> bool:
        return not self.hashed


class IdentityIndex:
    """`IdentityIndex(path).sha256_many(files, hasher)`: each file's sha256, from the index where its stat key
    matches an entry that is not racy, else from `hasher(path)` (and then recorded)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- storage -----------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have just done it
                if version != SCHEMA_VERSION:
                    conn.execute("DROP TABLE IF EXISTS files")
                    conn.execute(_SCHEMA)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> sqlite3.Connection | None:
        """A connection, or None when the index cannot be used at all (then everything is hashed)."""
        first: BaseException | None = None
        for attempt in range(OPEN_ATTEMPTS):
            started = time.monotonic()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                return self._connect()
            except (sqlite3.Error, OSError) as exc:
                first = exc
            # SQLite answers "locked" at once, without waiting out the busy timeout, when two processes switch a
            # fresh index to WAL together (deadlock avoidance): a short pause settles it. A lock that outlasted
            # the busy timeout is not retried.
            if not _busy(first) or time.monotonic() - started > 1.0 or attempt == OPEN_ATTEMPTS - 1:
                break
            time.sleep(0.05 * 2 ** attempt)
        assert first is not None
        if _busy(first):  # another process holds it for longer than the timeout: leave it be, hash this time
            _note(f"model identity index {self.path} is busy ({first}); hashing every weight file")
            return None
        _note(f"model identity index {self.path} is unreadable ({first}); rebuilding it")
        self._set_aside()
        try:
            return self._connect()
        except (sqlite3.Error, OSError) as exc:
            _note(f"model identity index {self.path} cannot be rebuilt ({exc}); hashing every weight file")
            return None

    def _set_aside(self) -> None:
        """Move a broken index out of the way (a rename, so a process still reading it is not disturbed)."""
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            try:
                os.replace(src, Path(str(self.path) + ".corrupt" + suffix))
            except FileNotFoundError:
                pass
            except OSError:
                try:
                    src.unlink()
                except OSError:
                    pass

    # -- lookups -----------------------------------------------------------------------------------------------

    def sha256_many(self, files: Iterable[str | os.PathLike], hasher: Callable[[str], str]) -> Digests:
        resolved = [os.path.realpath(f) for f in files]
        keys = [StatKey.of(p) for p in resolved]
        conn = self._open()
        try:
            known = self._lookup(conn, resolved) if conn is not None else {}
        except sqlite3.Error as exc:  # corrupt pages can surface only on a read
            conn.close()
            if _corrupt(exc):
                _note(f"model identity index {self.path} is unreadable ({exc}); rebuilding it")
                self._set_aside()
                conn, known = self._open(), {}
            else:  # busy, locked or read-only: hash, and record nothing this time
                _note(f"model identity index {self.path}: cannot read it ({exc}); hashing every weight file")
                conn, known = None, {}
        out: list[str] = []
        hashed: list[str] = []
        fresh: list[tuple] = []
        for path, key in zip(resolved, keys):
            row = known.get(path)
            if row is not None and _trusted(row, key):
                out.append(row[4])
                continue
            started = _now_ns()
            sha = hasher(path)
            hashed.append(path)
            out.append(sha)
            after = StatKey.of(path)
            if after == key:  # not being written while we read it; else leave it out of the index
                fresh.append((path, key.size, key.mtime_ns, key.ctime_ns, key.inode, sha, started))
        if conn is not None:
            try:
                if fresh:
                    self._store(conn, fresh)
            except sqlite3.Error as exc:
                _note(f"model identity index {self.path}: cannot record hashes ({exc})")
                if _corrupt(exc):
                    conn.close()
                    self._set_aside()  # the next run starts a fresh one
            finally:
                conn.close()
        return Digests(out, hashed)

    @staticmethod
    def _lookup(conn: sqlite3.Connection, paths: list[str]) -> dict[str, tuple]:
        """path -> (size, mtime_ns, ctime_ns, inode, sha256, hashed_at_ns) of the entries there are."""
        if not paths:
            return {}
        marks = ",".join("?" * len(paths))
        rows = conn.execute(f"SELECT path, size, mtime_ns, ctime_ns, inode, sha256, hashed_at_ns FROM files "
                            f"WHERE path IN ({marks})", paths).fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}

    @staticmethod
    def _store(conn: sqlite3.Connection, rows: list[tuple]) -> None:
        """One transaction: record the new hashes, and prune entries whose file is gone."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO files (path, size, mtime_ns, ctime_ns, inode, sha256, "
                             "hashed_at_ns) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            gone = [(p,) for (p,) in conn.execute("SELECT path FROM files") if not os.path.exists(p)]
            if gone:
                conn.executemany("DELETE FROM files WHERE path = ?", gone)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def entries(self) -> dict[str, str]:
        """path -> sha256 of every entry (for tests and inspection)."""
        conn = self._open()
        if conn is None:
            return {}
        try:
            return dict(conn.execute("SELECT path, sha256 FROM files").fetchall())
        finally:
            conn.close()


def _trusted(row: tuple, key: StatKey) -> bool:
    size, mtime_ns, ctime_ns, inode, _sha, hashed_at_ns = row
    if (size, mtime_ns, ctime_ns, inode) != (key.size, key.mtime_ns, key.ctime_ns, key.inode):
        return False
    return max(mtime_ns, ctime_ns) + RACY_WINDOW_NS < hashed_at_ns


def _corrupt(exc: sqlite3.Error) -> bool:
    """Not a database, or a malformed one (as opposed to busy, locked or read-only: OperationalError)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _busy(exc: BaseException) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


def _note(message: str) -> None:
    print(f"spar: note: {message}", file=sys.stderr)


def default_index() -> IdentityIndex:
    from harness.core.paths import cache_dir

    return IdentityIndex(cache_dir() / INDEX_NAME)
