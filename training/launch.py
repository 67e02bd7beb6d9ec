"""One training stage from a spec file, for multi-process launchers:
`accelerate launch [--config_file configs/accelerate/zero3.yaml] -m training.launch SPEC.json`.

SPEC.json: {"kind": "dpo" | "sft", "stage": name (sft: "rft", "init_actor", "init_refiner", ...; dpo: "dpo"),
"model", "ref" (dpo; null = the model itself), "output", "records" (JSONL), "config" (the stage's fields)}.
The stage writes `<output>/training.json` (its summary), `log_history.jsonl` and `train.log`; the exit status is 0,
or 2 with a one-line error on stderr.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.core.data import read_jsonl
from harness.core.errors import SparError
from harness.core.options import validate
from training.trainers import DPOStageConfig, SFTStageConfig, _where, train_dpo, train_sft

KINDS = ("dpo", "sft")
_ACCELERATE_PROCS = ("--num_processes", "--num-processes")
_ACCELERATE_CONFIG = ("--config_file", "--config-file")
_TORCHRUN_PROCS = ("--nproc_per_node", "--nproc-per-node")
_TORCHRUN_NODES = ("--nnodes",)


@dataclass(frozen=True)
class LauncherProcesses:
    """How many training processes a launcher command starts, and what said so (for errors and the record)."""

    processes: int
    source: str


def _flag(args: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the last `--name V` / `--name=V` among `args` (None when absent)."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


def _count(value: str, what: str, launcher: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SparError(f"models.train_launcher: {what} {value!r} is not a whole number ({launcher!r})") from None
    if number < 1:
        raise SparError(f"models.train_launcher: {what} must be at least 1, got {number} ({launcher!r})")
    return number


def _accelerate_config_processes(path: str, launcher: str) -> LauncherProcesses | None:
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise SparError(f"models.train_launcher: accelerate config file {path} not found ({launcher!r})")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) if p.suffix != ".json" else json.loads(p.read_text())
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SparError(f"{path}: not a valid accelerate config ({type(exc).__name__})") from None
    value = data.get("num_processes") if isinstance(data, dict) else None
    if value is None:
        return None
    return LauncherProcesses(_count(str(value), f"num_processes in {path}", launcher), f"num_processes in {path}")


def _default_accelerate_config() -> Path:
    """accelerate's default config file (`accelerate config` writes it): $HF_HOME/accelerate/default_config.yaml."""
    home = os.environ.get("HF_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"))
    return Path(home).expanduser() / "accelerate" / "default_config.yaml"


def launcher_processes(launcher: str) -> LauncherProcesses | None:
    """The process count of a training launcher command, read as the launcher reads it: `accelerate launch`
    (`--num_processes`, else `num_processes` of `--config_file` or of accelerate's default config file) or torchrun
    (`--nproc_per_node` x `--nnodes`). None when the command does not say (the count is then known only at launch)."""
    try:
        args = shlex.split(launcher)
    except ValueError as exc:
        raise SparError(f"models.train_launcher: cannot split {launcher!r} ({exc})") from None
    if not args:
        return LauncherProcesses(1, "no launcher: this process")
    names = {Path(a).name for a in args[:3]}
    if "torchrun" in names or "torch.distributed.run" in args[:3]:
        per_node = _flag(args, _TORCHRUN_PROCS)
        nodes = _flag(args, _TORCHRUN_NODES) or "1"
        if per_node is None or not per_node.isdigit() or not nodes.isdigit():
            return None  # auto/gpu counts or elastic node ranges: known at launch only
        total = _count(per_node, "--nproc_per_node", launcher) * _count(nodes, "--nnodes", launcher)
        return LauncherProcesses(total, f"--nproc_per_node {per_node} x --nnodes {nodes}")
    if "accelerate" in names:
        value = _flag(args, _ACCELERATE_PROCS)
        if value is not None:
            return LauncherProcesses(_count(value, "--num_processes", launcher), f"--num_processes {value}")
        config = _flag(args, _ACCELERATE_CONFIG)
        if config is not None:
            return _accelerate_config_processes(config, launcher)
        default = _default_accelerate_config()
        return _accelerate_config_processes(str(default), launcher) if default.is_file() else None
    return None


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
