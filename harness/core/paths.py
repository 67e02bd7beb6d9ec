"""Where the harness keeps its caches (models, NLTK data, generations) and finds local benchmark data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "SPAR_DATA_DIR"  # a folder laid out like ../shared/data (ifeval/, followbench/, llmbar/)
CACHE_DIR_ENV = "SPAR_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder ($SPAR_CACHE_DIR, else $XDG_CACHE_HOME/spar, else ~/.cache/spar), created when missing; a
    location that is a file or cannot be created is a one-line SparError naming the variable."""
    from harness.core.errors import SparError

    given = os.environ.get(CACHE_DIR_ENV)
    source = CACHE_DIR_ENV if given else "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "~/.cache"
    root = given or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "spar")
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise SparError(f"cache folder {root} (from {source}) is a file, not a folder; set {CACHE_DIR_ENV} to a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SparError(f"cache folder {root} (from {source}) cannot be created: {exc.strerror or exc}; set "
                        f"{CACHE_DIR_ENV} to a writable folder") from None
    return path


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def import_user_module(name: str):
    """Import a module named by the user (`module:function` scripts, `module:Factory` backends). Like `python -m`,
    the current directory is searched too (after the installed packages), so `tests.rewarding_fake:reply` works
    from the project folder with the `spar` console script as well."""
    import importlib
    import sys

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing, cwd = exc.name or "", os.getcwd()
        named = missing == name or name.startswith(missing + ".")  # the module itself, not one it imports
        if not named or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(name)
