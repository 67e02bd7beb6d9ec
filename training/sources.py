"""Loading training inputs: the self-play prompt pool and SFT data for the initialisation stages (the released SPaR
data or any chat data), from the built-in set, a local JSON/JSONL file or a hub dataset id."""

from __future__ import annotations

from pathlib import Path

from harness.core.data import load_hub_rows, read_json_list, read_jsonl
from harness.core.errors import DataError, SparError

BUILTIN_PROMPTS = Path(__file__).parent / "data" / "selfplay_prompts.jsonl"
#: where a row's prompt text is read from (first one present), on training rows and benchmark items alike
PROMPT_FIELDS = ("prompt", "instruction", "input")


def read_rows(source: str) -> tuple[list[dict], str]:
    """The rows of a JSON list or JSONL file, or of a hub dataset, and where they came from."""
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix == ".json":
            return read_json_list(path), str(path)
        return read_jsonl(path), str(path)
    if path.exists():
        raise SparError(f"{source}: not a JSON or JSONL file")
    if source.startswith((".", "/", "~")) or path.suffix in (".json", ".jsonl"):
        raise SparError(f"{source}: no such file (relative paths are taken from {Path.cwd()})")
    rows, _ = load_hub_rows(source, hint="name a local JSON or JSONL file instead")
    return rows, source


def load_prompts(source: str) -> tuple[list[tuple[str, str]], str]:
    """(key, prompt) pairs; a row gives its text in `prompt`, `instruction` or `input`, and optionally a `key`."""
    if source == "builtin":
        source = str(BUILTIN_PROMPTS)
    rows, origin = read_rows(source)
    out = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(origin, "expected an object", i)
        text = next((row[f] for f in PROMPT_FIELDS if isinstance(row.get(f), str) and row[f].strip()), None)
        if text is None:
            raise DataError(origin, f"no prompt text (one of {', '.join(PROMPT_FIELDS)})", i, PROMPT_FIELDS[0])
        out.append((str(row.get("key", row.get("id", f"p{i:06d}"))), text))
    if not out:
        raise SparError(f"{origin}: no prompts")
    return out, origin


def _turns(row: dict, origin: str, line: int) -> list[dict]:
    if isinstance(row.get("messages"), list):
        turns = row["messages"]
    elif isinstance(row.get("conversations"), list):  # ShareGPT
        roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
        turns = [{"role": roles.get(t.get("from", ""), ""), "content": t.get("value")} for t in row["conversations"]]
    else:
        prompt = next((row[f] for f in PROMPT_FIELDS if isinstance(row.get(f), str)), None)
        response = next((row[f] for f in ("response", "output", "chosen", "completion") if isinstance(row.get(f), str)),
                        None)
        if prompt is None or response is None:
            raise DataError(origin, "expected `messages`, `conversations`, or a prompt/instruction with a "
                                    "response/output", line, "messages")
        turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    for t in turns:
        if t.get("role") not in ("system", "user", "assistant") or not isinstance(t.get("content"), str):
            raise DataError(origin, f"bad turn {t!r}", line, "messages")
    if not turns or turns[-1]["role"] != "assistant":
        raise DataError(origin, "the last turn must be the assistant's", line, "messages")
    return turns


def load_sft_records(source: str, limit: int | None = None) -> tuple[list[dict], str]:
    """Prompt-completion chat records (the completion = the last assistant turn) from released SPaR data or any
    chat data: `messages` lists, ShareGPT `conversations`, or instruction/output pairs."""
    rows, origin = read_rows(source)
    records = []
    for i, row in enumerate(rows[:limit] if limit else rows, 1):
        if not isinstance(row, dict):
            raise DataError(origin, "expected an object", i)
        turns = _turns(row, origin, i)
        records.append({"prompt": turns[:-1], "completion": turns[-1:]})
    return records, origin
