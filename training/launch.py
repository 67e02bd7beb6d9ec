"""One training stage from a spec file, for multi-process launchers:
`accelerate launch [--config_file configs/accelerate/zero3.yaml] -m training.launch SPEC.json`.

SPEC.json: {"kind": "dpo" | "sft", "model", "ref" (dpo), "output", "records" (JSONL), "config" (stage fields)}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.data import read_jsonl
from harness.errors import SparError
from training.config import from_dict
from training.trainers import DPOStageConfig, SFTStageConfig, train_dpo, train_sft


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m training.launch SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        records = read_jsonl(spec["records"])
        output = Path(spec["output"])
        if spec["kind"] == "dpo":
            train_dpo(spec["model"], spec.get("ref"), records, output,
                      from_dict(DPOStageConfig, spec.get("config", {}), "dpo"))
        elif spec["kind"] == "sft":
            train_sft(spec["model"], records, output, from_dict(SFTStageConfig, spec.get("config", {}), "sft"),
                      stage=spec.get("stage", "sft"))
        else:
            raise SparError(f"{args[0]}: kind {spec['kind']!r}: expected dpo or sft")
    except (SparError, KeyError, OSError, json.JSONDecodeError) as exc:
        print(f"training.launch: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
