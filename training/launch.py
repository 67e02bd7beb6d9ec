"""One training stage from a spec file, for multi-process launchers:
`accelerate launch [--config_file configs/accelerate/zero3.yaml] -m training.launch SPEC.json`.

SPEC.json: {"kind": "dpo" | "sft", "stage": name (sft: "rft", "init_actor", "init_refiner", ...; dpo: "dpo"),
"model", "ref" (dpo; null = the model itself), "output", "records" (JSONL), "config" (the stage's fields)}.
The stage writes `<output>/training.json` (its summary), `log_history.jsonl` and `train.log`; the exit status is 0,
or 2 with a one-line error on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.data import read_jsonl
from harness.errors import SparError
from harness.options import validate
from training.trainers import DPOStageConfig, SFTStageConfig, _where, train_dpo, train_sft

KINDS = ("dpo", "sft")


def run_spec(path: str | Path) -> dict:
    """Run the stage a spec file describes; returns its summary."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SparError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(spec, dict):
        raise SparError(f"{path}: expected a JSON object")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SparError(f"{path}: kind {kind!r}: expected dpo or sft")
    missing = [k for k in ("model", "output", "records") if not spec.get(k)]
    if missing:
        raise SparError(f"{path}: missing {', '.join(missing)}")
    stage = str(spec.get("stage") or ("dpo" if kind == "dpo" else "sft"))
    cls = DPOStageConfig if kind == "dpo" else SFTStageConfig
    cfg = validate(cls, spec.get("config", {}), str(path), prefix=tuple(_where(stage).split(".")))
    records = read_jsonl(spec["records"])
    output = Path(spec["output"])
    if kind == "dpo":
        return train_dpo(spec["model"], spec.get("ref"), records, output, cfg)
    return train_sft(spec["model"], records, output, cfg, stage=stage)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m training.launch SPEC.json", file=sys.stderr)
        return 2
    try:
        run_spec(args[0])
    except (SparError, OSError) as exc:
        print(f"training.launch: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
