"""Reading benchmark and response files from a local path or a hub id, with errors that name file, line and field.

Every JSON reader here refuses what `json` alone would accept silently: bytes that are not UTF-8 (named by line and
byte offset) and a key given twice in one JSON object (`{"response": "a", "response": "b"}`; plain `json` keeps
the last one). The helpers at the end are shared by the `match_outputs` of the evaluators: counting the lines a
`--skip-invalid` run leaves out, and the coverage of the benchmark by an outputs file.
"""

from __future__ import annotations

import hashlib
import io
import json
import json.decoder
import json.scanner
from pathlib import Path
from typing import Any, Iterable

from harness.core.errors import DataError, SparError
from harness.core.paths import data_dir, hub_offline


class DuplicateKey(Exception):
    """A key given twice in one JSON object (raised by `no_duplicate_keys`)."""

    def __init__(self, key: str, pos: int | None = None):
        super().__init__(key)
        self.key, self.pos = key, pos


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """`object_pairs_hook` for json: the object, or DuplicateKey when a key is given twice."""
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey(key)
        obj[key] = value
    return obj


def _decode(path: Path, raw: bytes) -> str:
    """The file's text; a byte that is not UTF-8 is a DataError naming its line and byte offset."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw.count(b"\n", 0, start) + 1
        column = start - (raw.rfind(b"\n", 0, start) + 1) + 1
        raise DataError(path, f"not UTF-8: byte 0x{raw[start]:02x} at byte offset {start} (column {column}); "
                              "save the file as UTF-8", line=line) from None


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise SparError(f"{path}: no such file")
    return _decode(path, path.read_bytes())


def _duplicate_key_line(text: str) -> tuple[str, int] | None:
    """The key and line of the first key repeated within one object (a slow pass, run only after the fast parse
    found a repeat): the pure-Python scanner, with each object's value positions recorded."""
    decoder = json.JSONDecoder()

    def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None, *args):
        positions: list[int] = []

        def scan(s: str, idx: int):
            positions.append(idx)
            return scan_once(s, idx)

        pairs, end = json.decoder.JSONObject(s_and_end, strict, scan, None, list, memo, *args)
        seen: set[str] = set()
        for (key, _), pos in zip(pairs, positions):
            if key in seen:
                raise DuplicateKey(key, pos)
            seen.add(key)
        return dict(pairs), end

    decoder.parse_object = parse_object  # type: ignore[assignment]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        decoder.decode(text)
    except DuplicateKey as dup:
        return dup.key, text.count("\n", 0, dup.pos or 0) + 1
    except ValueError:
        return None
    return None


def iter_jsonl(path: str | Path, errors: list[DataError] | None = None) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file. A line that is not one JSON object (malformed,
    a key repeated in an object, not an object) is a DataError naming it; with `errors` given, such lines are
    appended there and skipped instead. Bytes that are not UTF-8 are always an error."""
    path = Path(path)
    text = _read_text(path)
    rows: list[tuple[int, dict]] = []
    for lineno, line in enumerate(io.StringIO(text, newline=None), 1):
        if not line.strip():
            continue
        try:
            try:
                row = json.loads(line, object_pairs_hook=no_duplicate_keys)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", line=lineno) from None
            except DuplicateKey as dup:
                raise DataError(path, "given twice in one JSON object", line=lineno, field=dup.key) from None
            if not isinstance(row, dict):
                raise DataError(path, f"expected a JSON object, got {type(row).__name__}", line=lineno)
        except DataError as err:
            if errors is None:
                raise
            errors.append(err)
            continue
        rows.append((lineno, row))
    return rows


def read_jsonl(path: str | Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path)]


def read_json_list(path: str | Path, what: str = "records") -> list:
    """A JSON file holding a list, with errors naming the file and line."""
    path = Path(path)
    text = _read_text(path)
    try:
        rows = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None
    except DuplicateKey as dup:
        found = _duplicate_key_line(text)
        raise DataError(path, "given twice in one JSON object", found[1] if found else None, dup.key) from None
    if not isinstance(rows, list):
        raise DataError(path, f"expected a JSON list of {what}")
    return rows


def require(row: dict, field: str, kind: type | tuple[type, ...], path: Any, line: int | None,
            name: str | None = None) -> Any:
    """`row[field]`, which must be there and of `kind` (a bool is not an int); errors name the field as `name`
    (for a nested field, e.g. "doc.key") or `field`."""
    if field not in row:
        raise DataError(path, "missing", line=line, field=name or field)
    value = row[field]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = "/".join(t.__name__ for t in kinds)
        raise DataError(path, f"expected {names}, got {type(value).__name__}", line=line, field=name or field)
    return value


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


LOCAL_DATA_HINT = ("to use local data, pass --data FILE_OR_FOLDER or set SPAR_DATA_DIR to a folder laid out like "
                   "../shared/data (ifeval/input_data.jsonl, followbench/, llmbar/)")


def parse_data(spec: str, benchmarks: list[str]) -> dict[str, str | None]:
    """Each benchmark's data source from a `--data` value (`spar eval`, and each eval stage of `spar run`): nothing
    (None: the default location), one source for a single benchmark, or `name=source` pairs separated by commas."""
    if not spec:
        return {b: None for b in benchmarks}
    if "=" not in spec:
        if len(benchmarks) > 1:
            raise SparError("--data: with several benchmarks, give name=source pairs separated by commas")
        return {benchmarks[0]: spec}
    out: dict[str, str | None] = {b: None for b in benchmarks}
    for part in spec.split(","):
        name, sep, source = part.partition("=")
        if not sep or name.strip() not in out:
            raise SparError(f"--data: {part!r} does not name one of the benchmarks {benchmarks}")
        out[name.strip()] = source.strip()
    return out


def data_for(spec: str, benchmarks: list[str]) -> str:
    """A `--data` value restricted to `benchmarks` (its `name=source` pairs for them; a single source as it is):
    what each eval stage of `spar run` passes on from `eval.data`, which names the benchmarks of every stage."""
    if "=" not in spec:
        return spec
    return ",".join(part for part in spec.split(",") if part.partition("=")[0].strip() in benchmarks)


def locate(source: str | None, default_hub_id: str, local_relpath: str) -> str:
    """A data source: the explicit one, else the local data folder ($SPAR_DATA_DIR) when it has the file, else
    the hub id."""
    if source:
        return source
    root = data_dir()
    if root is not None and (root / local_relpath).exists():
        return str(root / local_relpath)
    return default_hub_id


def load_hub_rows(hub_id: str, split: str = "train", name: str | None = None,
                  hint: str = LOCAL_DATA_HINT) -> tuple[list[dict], dict]:
    """Rows of a hub dataset, plus provenance (id, split, fingerprint); a failure is one line ending in `hint` (how to
    use local data instead)."""
    try:
        import datasets

        ds = datasets.load_dataset(hub_id, name, split=split)
    except Exception as exc:
        why = "the hub is offline (HF_HUB_OFFLINE=1)" if hub_offline() else (str(exc).splitlines() or [repr(exc)])[0]
        raise SparError(f"data {hub_id!r}: cannot load from the hub: {why}; {hint}") from None
    return [dict(r) for r in ds], {"hub_id": hub_id, "split": split, "fingerprint": ds._fingerprint}


# -- outputs files: skipped lines and coverage ------------------------------------------------------------------

class LineFilter:
    """A bad line of an outputs file: an error (the default) or, with `skip` (`--skip-invalid`), counted by reason
    and left out. `counts` is what `source["excluded"]` records."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}  # reason -> the first such error, for the record

    def bad(self, reason: str, error: DataError) -> None:
        """Raise `error`, or count it under `reason` when skipping."""
        if not self.skip:
            raise error
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first.setdefault(reason, str(error))

    def take(self, errors: Iterable[DataError], reason: str = "malformed") -> None:
        for err in errors:
            self.bad(reason, err)


def coverage(scored: int, total: int, per_category: dict[str, dict[str, int]] | None = None,
             outside_selection: int = 0) -> dict:
    """What `source["coverage"]` (and `metrics["coverage"]`) holds: items scored of those loaded, whether that is
    partial, a per-category breakdown ({name: {"scored", "total"}}), and how many lines answered items the run left
    out (`--limit`, a category subset; ignored, not errors)."""
    return {"scored": scored, "total": total, "partial": scored < total, "per_category": per_category or {},
            "outside_selection": outside_selection}


def check_coverage(path: Any, cov: dict, what: str, allow_partial: bool, first_missing: str | None = None) -> None:
    """A file that answers only part of the loaded benchmark is an error unless `allow_partial`."""
    if cov["scored"] == 0:
        raise SparError(f"{path}: no {what} in the file match the benchmark data")
    if cov["partial"] and not allow_partial:
        missing = f" (first missing: {first_missing})" if first_missing else ""
        raise SparError(f"{path}: answers {cov['scored']} of the {cov['total']} {what} loaded{missing}; "
                        "score them anyway with --allow-partial")


def attach_coverage(metrics: dict, source: dict) -> dict:
    """Copy the coverage of a matched outputs file into `metrics` (`coverage`, `partial`) and the lines
    `--skip-invalid` left out: their number in `metrics["counts"]["excluded_lines"]` and the count per reason in
    `metrics["excluded"]`."""
    if "coverage" in source:
        metrics["coverage"] = source["coverage"]
        metrics["partial"] = bool(source["coverage"]["partial"])
    if "excluded" in source:
        metrics.setdefault("counts", {})["excluded_lines"] = sum(source["excluded"].values())
        metrics["excluded"] = dict(source["excluded"])
    return metrics
