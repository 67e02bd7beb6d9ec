"""The SPaR experiment config: one dataclass per stage (TRL style), read from YAML with every key checked.

Open choices of the reference (spar-paper.md §5) are fields here with the paper's / official code's reading as the
default, and the whole resolved config is written into each iteration's record.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from harness.errors import SparError
from training.build_data import DataConfig
from training.collect import CollectConfig
from training.trainers import DPOStageConfig, SFTStageConfig
from training.tree_search import SearchConfig

LINEAGE = ("previous", "base")
STAGES = ("collect", "search", "data", "train_actor", "train_refiner", "eval_actor", "eval_refiner")


@dataclass(frozen=True)
class LineageConfig:
    """Where iteration t+1's models start (the paper's reading: from iteration t, DPO reference = actor t)."""

    actor_init: str = "previous"
    dpo_reference: str = "previous"
    refiner_init: str = "previous"

    def __post_init__(self) -> None:
        for name in ("actor_init", "dpo_reference", "refiner_init"):
            if getattr(self, name) not in LINEAGE:
                raise SparError(f"lineage.{name} {getattr(self, name)!r}: choose from {', '.join(LINEAGE)}")


@dataclass(frozen=True)
class ModelsConfig:
    """The starting actor and refiner (embedded short name, local checkpoint or hub id) and how they generate."""

    actor: str = "smollm2-135m-instruct"
    refiner: str = "smollm2-135m-instruct"
    backend: str = "hf"
    base_url: str = "http://127.0.0.1:8000/v1"
    batch_size: int = 16
    dtype: str = "auto"
    device: str = "auto"
    tensor_parallel_size: int = 1
    train_launcher: str = ""  # empty: train in this process; else e.g. "accelerate launch --config_file X.yaml"


@dataclass(frozen=True)
class EvalStageConfig:
    """How each iteration's checkpoints are scored by the harness (IFEval/FollowBench on the actor, LLMBar on the
    refiner). `judge` is FollowBench's judge: empty = the iteration's refiner."""

    actor_benchmarks: str = "ifeval,followbench"
    refiner_benchmarks: str = "llmbar"
    data: str = ""
    limit: int | None = None
    max_new_tokens: int = 1280
    judge: str = ""
    judge_max_new_tokens: int = 1024
    judge_votes: int = 1
    llmbar_protocol: str = "pointwise"
    batch_size: int = 16


@dataclass(frozen=True)
class InitConfig:
    """Optional initialisation stages before iteration 1: SFT of the actor and of the refiner on released or
    teacher data (hub id or local JSON/JSONL). Empty = start from models.actor / models.refiner as they are."""

    actor_data: str = ""
    refiner_data: str = ""
    limit: int | None = None
    sft: SFTStageConfig = SFTStageConfig()


@dataclass(frozen=True)
class SparRunConfig:
    experiment: str = "spar"
    output_dir: str = ""  # default results/<experiment>
    iterations: int = 3
    prompts: str = "builtin"  # builtin, a JSONL/JSON file of {prompt} rows, or a hub id
    prompts_per_iteration: int = 10000
    seed: int = 0
    cache: str = ""
    until: str = ""  # stop each iteration after this stage (collect, search, data, train_actor, ...); "" = all
    search_driver: str = "batched"  # batched (all trees' pending calls per step) or sequential (node at a time)
    models: ModelsConfig = ModelsConfig()
    init: InitConfig = InitConfig()
    collect: CollectConfig = CollectConfig()
    search: SearchConfig = SearchConfig()
    data: DataConfig = DataConfig()
    dpo: DPOStageConfig = DPOStageConfig()
    rft: SFTStageConfig = SFTStageConfig()
    lineage: LineageConfig = LineageConfig()
    eval: EvalStageConfig = EvalStageConfig()

    def __post_init__(self) -> None:
        if self.search_driver not in ("batched", "sequential"):
            raise SparError(f"search_driver {self.search_driver!r}: choose from batched, sequential")
        if self.until and self.until not in STAGES:
            raise SparError(f"until {self.until!r}: choose from {', '.join(STAGES)}")

    @property
    def out(self) -> Path:
        return Path(self.output_dir or Path("results") / self.experiment)


def _check_type(value: Any, kind: Any, where: str) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        kind = next(k for k in options if k is not type(None))
        origin = get_origin(kind)
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SparError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool and not isinstance(value, bool) or kind is not bool and isinstance(value, bool) \
            or not isinstance(value, kind):
        raise SparError(f"{where}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass `cls` from a mapping, naming the exact key of any unknown field or wrong type."""
    if not isinstance(data, dict):
        raise SparError(f"{where}: expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SparError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    values = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise SparError(f"{where}: {exc}") from None


def merge(base: dict, key: str, value: Any) -> None:
    """Apply a dotted override (`search.algorithm=dfs`) to a nested dict."""
    parts = key.split(".")
    for part in parts[:-1]:
        base = base.setdefault(part, {})
        if not isinstance(base, dict):
            raise SparError(f"--set {key}: {part} is not a section")
    base[parts[-1]] = value


def load_run_config(path: str | None, overrides: list[str] | None = None) -> SparRunConfig:
    import yaml

    data: dict = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise SparError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise SparError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(data, dict):
            raise SparError(f"{path}: expected a mapping of config sections")
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SparError(f"--set {item!r}: expected key=value")
        merge(data, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    return from_dict(SparRunConfig, data, Path(path).name if path else "config")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)

