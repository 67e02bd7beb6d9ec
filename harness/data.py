"""Reading benchmark and response files from a local path or a hub id, with errors that name file, line and field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import DataError, SparError
from harness.paths import data_dir, hub_offline


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise SparError(f"{path}: no such file")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", line=lineno) from None
            if not isinstance(row, dict):
                raise DataError(path, f"expected a JSON object, got {type(row).__name__}", line=lineno)
            rows.append(row)
    return rows


def read_json_list(path: str | Path, what: str = "records") -> list:
    """A JSON file holding a list, with errors naming the file and line."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None
    if not isinstance(rows, list):
        raise DataError(path, f"expected a JSON list of {what}")
    return rows


def require(row: dict, field: str, kind: type | tuple[type, ...], path: Any, line: int | None) -> Any:
    if field not in row:
        raise DataError(path, "missing", line=line, field=field)
    value = row[field]
    if not isinstance(value, kind):
        names = "/".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(path, f"expected {names}, got {type(value).__name__}", line=line, field=field)
    return value


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def locate(source: str | None, default_hub_id: str, local_relpath: str) -> str:
    """A data source: the explicit one, else the local data folder ($SPAR_DATA_DIR) when it has the file, else
    the hub id."""
    if source:
        return source
    root = data_dir()
    if root is not None and (root / local_relpath).exists():
        return str(root / local_relpath)
    return default_hub_id


def load_hub_rows(hub_id: str, split: str = "train", name: str | None = None) -> tuple[list[dict], dict]:
    """Rows of a hub dataset, plus provenance (id, split, fingerprint)."""
    try:
        import datasets

        ds = datasets.load_dataset(hub_id, name, split=split)
    except Exception as exc:
        why = ("the hub is offline (HF_HUB_OFFLINE=1); point --data or $SPAR_DATA_DIR at a local copy"
               if hub_offline() else str(exc).splitlines()[0])
        raise SparError(f"data {hub_id!r}: cannot load from the hub: {why}") from None
    return [dict(r) for r in ds], {"hub_id": hub_id, "split": split, "fingerprint": ds._fingerprint}
