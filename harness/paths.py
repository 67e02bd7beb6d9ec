"""Where the harness keeps its caches (models, NLTK data, generations) and finds local benchmark data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "SPAR_DATA_DIR"  # a folder laid out like ../shared/data (ifeval/, followbench/, llmbar/)
CACHE_DIR_ENV = "SPAR_CACHE_DIR"


def cache_dir() -> Path:
    root = os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "spar"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}
