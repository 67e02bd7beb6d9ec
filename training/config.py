"""The SPaR experiment config: one options dataclass per stage (TRL style), read from YAML with every key, type and
range checked before any work (errors name the file, line and key).

Open choices of the reference (spar-paper.md §5) are fields here with the paper's / official code's reading as the
default, and the whole resolved config is written into each iteration's record.

Models are roles with one spec each (harness.spec.ModelSpec): `models.actor` and `models.refiner` are a name or a
mapping of spec fields; spec fields given directly under `models:` (backend, base_url, api_key_env, batch_size,
dtype, device, ...) are shared by both roles unless a role sets its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from harness.errors import SparError
from harness.options import (NonNegativeInt, PositiveInt, option, options, parse_override, read_yaml, set_dotted,
                             validate)
from harness.spec import ModelSpec, spec_from
from training.build_data import DataConfig
from training.collect import CollectConfig
from training.trainers import DPOStageConfig, SFTStageConfig
from training.tree_search import SearchConfig

LINEAGE = ("previous", "base")
STAGES = ("collect", "search", "data", "train_actor", "train_refiner", "eval_actor", "eval_refiner")
Lineage = Literal["previous", "base"]
DEFAULT_MODEL = {"name": "smollm2-135m-instruct", "batch_size": 16}


@options
class LineageConfig:
    """Where iteration t+1's models start (the paper's reading: from iteration t, DPO reference = actor t)."""

    actor_init: Lineage = option("previous", "the actor of iteration t+1 starts from: previous (actor t) or base")
    dpo_reference: Lineage = option("previous", "DPO reference model: previous (actor t) or base")
    refiner_init: Lineage = option("previous", "the refiner of iteration t+1 starts from: previous or base")


@options
class ModelsConfig:
    """The starting actor and refiner (each a model spec) and how training stages are launched."""

    actor: ModelSpec = option(ModelSpec(**DEFAULT_MODEL), "the starting actor")
    refiner: ModelSpec = option(ModelSpec(**DEFAULT_MODEL), "the starting refiner")
    train_launcher: str = option("", "empty: train in this process; else e.g. "
                                     "'accelerate launch --config_file configs/accelerate/zero3.yaml'")


@options
class EvalStageConfig:
    """How each iteration's checkpoints are scored by the harness (IFEval/FollowBench on the actor, LLMBar on the
    refiner). `judge` is the judge of judged actor benchmarks: empty = the iteration's refiner."""

    actor_benchmarks: str = option("ifeval,followbench", "benchmarks that score the actor (comma-separated)")
    refiner_benchmarks: str = option("llmbar", "benchmarks that score the refiner (comma-separated)")
    data: str = option("", "data sources, as spar eval --data")
    limit: PositiveInt | None = option(None, "score only the first N items of each benchmark")
    max_new_tokens: PositiveInt = option(1280, "generation budget of the scored model")
    judge: str = option("", "judge of judged actor benchmarks (default: the iteration's refiner)")
    judge_max_new_tokens: PositiveInt = option(1024, "judge generation budget")
    judge_votes: PositiveInt = option(1, "judgments per item (majority vote)")
    bench: dict[str, dict[str, Any]] = option({}, "per-benchmark options, as spar eval's `bench:`")
    batch_size: PositiveInt = option(16, "generation batch size of the eval stages")


@options
class InitConfig:
    """Optional initialisation stages before iteration 1: SFT of the actor and of the refiner on released or
    teacher data (hub id or local JSON/JSONL). Empty = start from models.actor / models.refiner as they are."""

    actor_data: str = option("", "SFT data for the starting actor (empty: none)")
    refiner_data: str = option("", "SFT data for the starting refiner (empty: none)")
    limit: PositiveInt | None = option(None, "use only the first N records of each")
    sft: SFTStageConfig = option(SFTStageConfig(), "the initialisation SFT settings")


@options
class SparRunConfig:
    experiment: str = option("spar", "experiment name (default folder results/<experiment>)")
    output_dir: str = option("", "experiment folder (default results/<experiment>)")
    iterations: PositiveInt = option(3, "self-play iterations")
    prompts: str = option("builtin", "builtin, a JSONL/JSON file of {prompt} rows, or a hub id")
    prompts_per_iteration: PositiveInt = option(10000, "prompts taken from the pool per iteration")
    reuse_prompts: bool = option(False, "wrap round the prompt pool when iterations need more prompts than it "
                                        "holds (default: an error)")
    seed: NonNegativeInt = option(0, "seed of every request and shuffle")
    cache: str = option("", "generation cache (SQLite file); default <cache dir>/generations.sqlite")
    until: Literal["", "collect", "search", "data", "train_actor", "train_refiner", "eval_actor",
                   "eval_refiner"] = option("", "stop each iteration after this stage; '' = all")
    search_driver: Literal["batched", "sequential"] = option(
        "batched", "batched (all trees' pending calls per step) or sequential (node at a time)")
    models: ModelsConfig = option(ModelsConfig(), "the actor and refiner specs")
    init: InitConfig = option(InitConfig(), "optional initialisation SFT")
    collect: CollectConfig = option(CollectConfig(), "negative collection")
    search: SearchConfig = option(SearchConfig(), "tree-search refinement")
    data: DataConfig = option(DataConfig(), "training data building")
    dpo: DPOStageConfig = option(DPOStageConfig(), "actor DPO (+ SFT term)")
    rft: SFTStageConfig = option(SFTStageConfig(), "refiner RFT")
    lineage: LineageConfig = option(LineageConfig(), "model lineage across iterations")
    eval: EvalStageConfig = option(EvalStageConfig(), "scoring after each iteration")

    @property
    def out(self) -> Path:
        return Path(self.output_dir or Path("results") / self.experiment)


_SPEC_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}


def _normalise_models(data: dict, where: str) -> dict:
    """`models:` shorthands: role names or mappings, with shared spec fields given under `models:` itself."""
    models = data.get("models")
    if models is None:
        return data
    if not isinstance(models, dict):
        raise SparError(f"{where}: models: expected a mapping with actor, refiner and shared model settings")
    shared = {**DEFAULT_MODEL, **{k: v for k, v in models.items() if k in _SPEC_FIELDS}}
    out = {k: v for k, v in models.items() if k not in _SPEC_FIELDS}
    for role in ("actor", "refiner"):
        out[role] = spec_from(models.get(role), shared)
    return {**data, "models": out}


def load_run_config(path: str | None, overrides: list[str] | None = None) -> SparRunConfig:
    """The experiment config from YAML and `--set key=value` overrides; any bad key, type or range is one error
    naming the file, line and key."""
    data: dict = {}
    lines: dict[tuple, Any] = {}
    where = Path(path).name if path else "config"
    if path:
        data, lines = read_yaml(path, "experiment config")
        where = path
    for item in overrides or []:
        key, value = parse_override(item)
        set_dotted(data, key, value)
        lines[tuple(key.split("."))] = f"--set {key}"
    cfg = validate(SparRunConfig, _normalise_models(data, where), where, lines)
    _check_eval_bench(cfg, where, lines)
    return cfg


def _check_eval_bench(cfg: SparRunConfig, where: str, lines: dict) -> None:
    from evaluators import evaluator_class

    names = [b.strip() for spec in (cfg.eval.actor_benchmarks, cfg.eval.refiner_benchmarks)
             for b in spec.split(",") if b.strip()]
    for name in names:
        evaluator_class(name)
    for name, opts in cfg.eval.bench.items():
        validate(evaluator_class(name).Options, opts, where, lines, prefix=("eval", "bench", name))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
