"""Typed, range-checked option dataclasses (pydantic) and YAML reading with file:line errors.

Every config of the harness (eval options, model specs, benchmark options, SPaR stage configs) is declared once as
an `options` dataclass: typed fields with ranges and help text. pydantic checks types and ranges when a config is
built, so a bad value is refused when the config is read, never an hour into a run; `validate` turns pydantic's
errors into one line naming the file, line and field. The declarations also give a JSON schema
(`pydantic.TypeAdapter(cls).json_schema()`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass

from harness.core.errors import SparError

T = TypeVar("T")

#: decorator for option dataclasses: frozen, unknown keys refused, values validated on construction and `replace`
options = functools.partial(_pydantic_dataclass, frozen=True, config=ConfigDict(extra="forbid"))

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Temperature = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
TopP = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def option(default: Any, help: str, **constraints: Any) -> Any:
    """A field with help text (shown by `--help`) and optional pydantic constraints (ge, le, ...). A mutable
    default (dict, list) is copied for each instance."""
    if isinstance(default, (dict, list)):
        kind = type(default)
        return dataclasses.field(default_factory=lambda: kind(default), metadata={"help": help})
    if constraints:
        return Field(default=default, description=help, **constraints)
    return dataclasses.field(default=default, metadata={"help": help})


def help_of(cls: type, name: str) -> str:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if "help" in f.metadata:
        return f.metadata["help"]
    info = getattr(cls, "__pydantic_fields__", {}).get(name)
    return (info.description if info is not None else None) or ""


def _shown(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class FieldError(SparError):
    """A cross-field check of an option dataclass failing on one of its fields; `validate` names the field's full
    path (`rft.global_batch_size`) and the line or flag that set it."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


def key_place(where: str, lines: dict[tuple, int | str] | None, loc: tuple) -> str:
    """Where the key path `loc` was set: the flag that set it (`--set models.scrip`), else `file:line` of the deepest
    key the file spells out, else the file. A flag that set a key below `loc` counts (an unknown section)."""
    lines = lines or {}
    below = [v for k, v in lines.items() if isinstance(v, str) and k[:len(loc)] == loc and len(k) > len(loc)]
    for cut in range(len(loc), 0, -1):
        line = lines.get(loc[:cut])
        if line is not None:
            if isinstance(line, str):
                return line
            return below[0] if cut < len(loc) and below else f"{where}:{line}"
    return below[0] if below else where


def _field_types(cls: Any) -> dict[str, Any]:
    """Field name -> annotation of an option dataclass ({} for anything else)."""
    import typing

    if not dataclasses.is_dataclass(cls):
        return {}
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved: no suggestion, never a crash
        return {f.name: None for f in dataclasses.fields(cls)}


def closest_name(name: str, names: Any) -> str | None:
    """The valid name closest to a mistyped one (difflib, similarity at least 0.6), or None."""
    import difflib

    match = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return match[0] if match else None


def nearest_key(cls: Any, loc: tuple) -> str | None:
    """The valid key closest to the unknown one at `loc` (a path of field names from `cls`), as a dotted path."""
    import typing

    for part in loc[:-1]:
        cls = _field_types(cls).get(part)
        cls = next((a for a in typing.get_args(cls) if dataclasses.is_dataclass(a)), cls)  # `Spec | None`
    match = closest_name(loc[-1], _field_types(cls)) if loc else None
    return ".".join(loc[:-1] + (match,)) if match else None


def validation_message(exc: ValidationError, where: str, lines: dict[tuple, int | str] | None = None,
                       prefix: tuple = (), cls: Any = None) -> str:
    """pydantic's first error as `where:line: field.path: what (got value)`. `lines` maps key paths to the line
    that spells them out, or to a text naming the place (a flag such as `--batch-size`); an unknown key gets the
    nearest valid key of `cls` suggested."""
    err = exc.errors()[0]
    loc = prefix + tuple(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "unexpected_keyword_argument" or err["type"] == "extra_forbidden":
        near = nearest_key(cls, tuple(str(p) for p in err["loc"])) if cls is not None else None
        msg = "unknown option" + (f" (did you mean {'.'.join(prefix + (near,))}?)" if near else "")
    got = "" if err["type"] in ("unexpected_keyword_argument", "extra_forbidden", "missing") \
        else f" (got {_shown(err.get('input'))})"
    more = len(exc.errors()) - 1
    tail = f" [+{more} more error{'s' if more > 1 else ''}]" if more else ""
    return f"{key_place(where, lines, loc)}: {'.'.join(loc) or 'config'}: {msg}{got}{tail}"


def validate(cls: type[T], data: Any, where: str, lines: dict[tuple, int | str] | None = None,
             prefix: tuple = ()) -> T:
    """Build option dataclass `cls` from a mapping; any error is one SparError naming file, line and field."""
    if not isinstance(data, dict):
        raise SparError(f"{where}: {'.'.join(prefix) or 'config'}: expected a mapping of options, got {_shown(data)}")
    try:
        return cls(**data)
    except ValidationError as exc:
        raise SparError(validation_message(exc, where, lines, prefix, cls)) from None
    except FieldError as exc:  # a cross-field check in __post_init__, on one field
        loc = prefix + (exc.field,)
        raise SparError(f"{key_place(where, lines, loc)}: {'.'.join(loc)}: {exc.reason}") from None
    except SparError as exc:  # another cross-field check in __post_init__
        raise SparError(f"{where}: {exc}") from None


def read_yaml(path: str | Path, what: str = "config") -> tuple[dict, dict[tuple, int]]:
    """A YAML mapping and the line of every key path in it (for errors that name the line)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise SparError(f"{path}: {what} file not found" if not p.exists() else f"{path}: not a file")
    try:
        text = p.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise SparError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise SparError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise SparError(f"{path}: expected a mapping of {what} options, got {type(data).__name__}")
    lines: dict[tuple, int] = {}
    _key_lines(node, (), lines, str(path))
    return data, lines


def _key_lines(node: Any, prefix: tuple, out: dict[tuple, int], path: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                raise SparError(f"{path}:{key.start_mark.line + 1}: duplicate key {name!r}")
            seen.add(name)
            out[prefix + (name,)] = key.start_mark.line + 1
            _key_lines(value, prefix + (name,), out, path)


def set_dotted(base: dict, key: str, value: Any) -> None:
    """Apply a dotted override (`search.algorithm=dfs`) to a nested dict."""
    parts = [p.strip() for p in key.split(".")]
    if not all(parts):
        raise SparError(f"--set {key}: empty name in the dotted key")
    for part in parts[:-1]:
        base = base.setdefault(part, {})
        if not isinstance(base, dict):
            raise SparError(f"--set {key}: {part} is not a section")
    base[parts[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    """`key=value` with the value read as YAML (`3`, `0.7`, `true`, `[a, b]`, text)."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise SparError(f"--set {item!r}: expected key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
