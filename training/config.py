"""The experiment config of `spar run`: one options dataclass per stage (TRL style), read from YAML with every key,
type and range checked before any work (errors name the file, line and key).

`method:` picks the training method (training/methods: spar by default, self_rewarding, meta_rewarding,
spar_no_tree_search, or one registered by the user). What every method shares is here (`RunConfig`: iterations and
prompts, models, init SFT, the actor's DPO, the refiner's SFT, lineage, eval, ablation); a method's own options are
its `Config`, set in a section named after the method or `method_config:`, or at the top level (how SPaR configs
spell `collect:`, `search:`, `data:`), and recorded as `method_config`.

Open choices of the references are fields with the paper's / official code's reading as the default, and the whole
resolved config is written into each iteration's record.

Models are roles with one spec each (harness.core.spec.ModelSpec): `models.actor` and `models.refiner` are a name or a
mapping of spec fields; spec fields given directly under `models:` (backend, base_url, api_key_env, batch_size,
dtype, device, ...) are shared by both roles unless a role sets its own. Methods whose actor judges itself
(self_rewarding, meta_rewarding) use the actor's spec for the judge role.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from harness.core.errors import SparError
from harness.core.options import (NonNegativeInt, PositiveInt, closest_name, key_place, option, options, parse_override,
                                  read_yaml, set_dotted, validate)
from harness.core.spec import BatchSize, ModelSpec, spec_from
from training.contamination import ContaminationConfig
from training.trainers import DPOStageConfig, SFTStageConfig

LINEAGE = ("previous", "base")
#: SPaR's stages (its method stages, then the driver's); other methods: training.loop.iteration_stages
STAGES = ("collect", "search", "data", "train_actor", "train_refiner", "eval_actor", "eval_refiner")
ABLATIONS = {"no_iterative_training": "w/o iterative training", "no_refiner_training": "w/o refiner training"}
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
    bench: dict[str, dict[str, Any]] = option({}, "per-benchmark options, as spar eval's `bench:` (a method may set "
                                                  "defaults under them, e.g. LLMBar's score5 judge prompt)")
    batch_size: BatchSize = option(16, "generation batch size of the eval stages (auto: as models.batch_size auto, "
                                       "from free GPU memory on CUDA)")
    iteration0: bool = option(True, "also score the starting actor and refiner with the same eval stages (iteration 0 "
                                    "of the summary; once, skipped on resume)")


@options
class InitConfig:
    """Optional initialisation stages before iteration 1: SFT of the actor and of the refiner on released or
    teacher data (hub id or local JSON/JSONL). Empty = start from models.actor / models.refiner as they are."""

    actor_data: str = option("", "SFT data for the starting actor (empty: none)")
    refiner_data: str = option("", "SFT data for the starting refiner (empty: none)")
    limit: PositiveInt | None = option(None, "use only the first N records of each")
    sft: SFTStageConfig = option(SFTStageConfig(), "the initialisation SFT settings")


@options
class RunConfig:
    """An experiment of `spar run`: what every method shares; the method's own options are `method_config`."""

    experiment: str = option("spar", "experiment name (default folder results/<experiment>)")
    output_dir: str = option("", "experiment folder (default results/<experiment>)")
    method: str = option("spar", "training method (training/methods): spar, self_rewarding, meta_rewarding, "
                                 "spar_no_tree_search, or one registered with training.methods.register")
    ablation: Literal["", "no_iterative_training", "no_refiner_training"] = option(
        "", "paper Table 4 ablations on the driver: no_iterative_training (one iteration over the prompts all "
            "`iterations` would use), no_refiner_training (the refiner stays the starting one); '' = none")
    iterations: PositiveInt = option(3, "self-play iterations")
    prompts: str = option("builtin", "builtin, a JSONL/JSON file of {prompt} rows, or a hub id")
    prompts_per_iteration: PositiveInt = option(10000, "prompts taken from the pool per iteration")
    reuse_prompts: bool = option(False, "wrap round the prompt pool when iterations need more prompts than it "
                                        "holds (default: an error)")
    seed: NonNegativeInt = option(0, "seed of every request and shuffle")
    cache: str = option("", "generation cache (SQLite file); default <cache dir>/generations.sqlite")
    until: str = option("", "stop each iteration after this stage; '' = all. Stages: the method's (spar: collect, "
                            "search, data; self_rewarding: sample, judge, data; meta_rewarding: sample, judge, "
                            "meta_judge, data), then train_actor, train_refiner (methods with a refiner), "
                            "eval_actor, eval_refiner")
    models: ModelsConfig = option(ModelsConfig(), "the actor and refiner specs")
    init: InitConfig = option(InitConfig(), "optional initialisation SFT")
    dpo: DPOStageConfig = option(DPOStageConfig(), "actor DPO (+ SFT term)")
    rft: SFTStageConfig = option(SFTStageConfig(), "refiner RFT (methods that train a separate refiner: spar)")
    lineage: LineageConfig = option(LineageConfig(), "model lineage across iterations")
    eval: EvalStageConfig = option(EvalStageConfig(), "scoring after each iteration")
    contamination: ContaminationConfig = option(ContaminationConfig(), "overlap of the run's prompts with the "
                                                                       "evaluated benchmarks' prompts, checked at start")
    method_config: Any = option(None, "the method's options (its Config; set from the YAML section named after the "
                                      "method, `method_config:`, or top-level keys)")

    @property
    def out(self) -> Path:
        return Path(self.output_dir or Path("results") / self.experiment)


SparRunConfig = RunConfig  # the name before methods existed
GENERIC_KEYS = frozenset(f.name for f in dataclasses.fields(RunConfig))


_SPEC_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}


def _check_models_keys(data: dict, where: str, lines: dict) -> None:
    """An unknown key under `models:` (neither a role, `train_launcher`, nor a shared spec field) is one error naming
    the flag or line that set it and the nearest valid key (`models.scrip` -> `models.script`)."""
    models = data.get("models")
    if not isinstance(models, dict):
        return
    valid = [f.name for f in dataclasses.fields(ModelsConfig)] + sorted(_SPEC_FIELDS)
    for key in models:
        if key not in valid:
            near = closest_name(str(key), valid)
            raise SparError(f"{key_place(where, lines, ('models', str(key)))}: models.{key}: unknown option"
                            + (f" (did you mean models.{near}?)" if near else ""))


def _normalise_models(data: dict, where: str, self_judging: bool = False) -> dict:
    """`models:` shorthands: role names or mappings, with shared spec fields given under `models:` itself. A method
    whose actor judges itself gets the actor's spec as its refiner (judge) role."""
    models = data.get("models")
    if models is None:
        models = {}
    if not isinstance(models, dict):
        raise SparError(f"{where}: models: expected a mapping with actor, refiner and shared model settings")
    shared = {**DEFAULT_MODEL, **{k: v for k, v in models.items() if k in _SPEC_FIELDS}}
    out = {k: v for k, v in models.items() if k not in _SPEC_FIELDS}
    for role in ("actor", "refiner"):
        out[role] = spec_from(models.get(role), shared)
    if self_judging:
        if models.get("refiner") is not None and out["refiner"] != out["actor"]:
            raise SparError(f"{where}: models.refiner: method {data.get('method')} judges with the actor itself; "
                            "leave models.refiner unset")
        out["refiner"] = dict(out["actor"])
    if "models" not in data and not self_judging:
        return data
    return {**data, "models": out}


def _place(where: str, lines: dict, key: tuple) -> str:
    line = lines.get(key)
    return line if isinstance(line, str) else f"{where}:{line}" if line else where


def _method_options(data: dict, lines: dict, method, where: str) -> tuple[dict, dict, dict, tuple]:
    """Split the method's options off the run config: from `method_config:`, the section named after the method, and
    top-level keys that are the method's fields. Returns (run data, method data, key lines, key prefix for errors)."""
    fields = {f.name for f in dataclasses.fields(method.Config)}
    data = dict(data)
    merged: dict = {}
    mlines: dict = {}
    sections = [s for s in dict.fromkeys(("method_config", method.name)) if s in data]
    for section in sections:
        value = data.pop(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise SparError(f"{_place(where, lines, (section,))}: {section}: expected a mapping of {method.name} "
                            "options")
        for key, val in value.items():
            if key in merged:
                raise SparError(f"{_place(where, lines, (section, key))}: {section}.{key}: given twice")
            merged[key] = val
        mlines.update({k[1:]: v for k, v in lines.items() if k[:1] == (section,) and len(k) > 1})
    flat = [k for k in data if k in fields and k not in GENERIC_KEYS]
    for key in flat:
        if key in merged:
            raise SparError(f"{_place(where, lines, (key,))}: {key}: given twice (also in the {method.name} section)")
        merged[key] = data.pop(key)
        mlines.update({k: v for k, v in lines.items() if k[:1] == (key,)})
    if len(sections) == 1 and not flat:  # errors name the key as written: self_rewarding.candidates
        return data, merged, lines, (sections[0],)
    return data, merged, mlines, ()


def _foreign_options(data: dict, lines: dict, method, where: str) -> None:
    """A top-level key that is another method's option is an error that says so."""
    from training.methods import BUILTIN, get_method

    for key in data:
        if key in GENERIC_KEYS:
            continue
        owners = [name for name in BUILTIN if name != method.name and
                  key in {f.name for f in dataclasses.fields(get_method(name).Config)}]
        if owners or key in BUILTIN:
            what = f"options of method {key}" if key in BUILTIN else f"an option of method {', '.join(owners)}"
            raise SparError(f"{_place(where, lines, (key,))}: {key}: {what}, but this config's method is "
                            f"{method.name} (set `method:`)")


def load_run_config(path: str | None, overrides: list[str] | None = None) -> RunConfig:
    """The experiment config from YAML and `--set key=value` overrides; any bad key, type or range is one error
    naming the file, line and key."""
    from training.methods import get_method

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
    name = data.get("method", "spar")
    if not isinstance(name, str):
        raise SparError(f"{_place(where, lines, ('method',))}: method: expected a method name, got {name!r}")
    try:
        method = get_method(name)
        _check_method_names(method)
    except SparError as exc:
        raise SparError(f"{_place(where, lines, ('method',))}: {exc}") from None
    _check_stage_sections(data, lines, where)
    data, method_data, method_lines, prefix = _method_options(data, lines, method, where)
    method_cfg = validate(method.Config, method_data, where, method_lines, prefix=prefix)
    _foreign_options(data, lines, method, where)
    _check_models_keys(data, where, lines)
    data = _normalise_models(data, where, self_judging=method.judge == "actor")
    cfg = validate(RunConfig, {**data, "method_config": method_cfg}, where, lines)
    _check_method(cfg, method, where, lines)
    cfg = with_method_eval_defaults(cfg, method)
    _check_eval_bench(cfg, where, lines)
    _check_batch_plans(cfg, method, where, lines)
    return cfg


_STAGE_SECTIONS = ((("dpo",), DPOStageConfig), (("rft",), SFTStageConfig), (("init", "sft"), SFTStageConfig))


def _check_stage_sections(data: dict, lines: dict, where: str) -> None:
    """Each training stage's section alone first, so a cross-field error names its full path (`rft.global_batch_size`)
    and the line or flag that set it."""
    for path, cls in _STAGE_SECTIONS:
        section: Any = data
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict):
            validate(cls, section, where, lines, prefix=path)


def _check_batch_plans(cfg: RunConfig, method, where: str, lines: dict) -> None:
    """Refuse at start a global batch the launcher's processes cannot meet (read from `models.train_launcher` and
    its accelerate config file), for every training stage this run will launch."""
    from training.launch import launcher_processes
    from training.trainers import batch_plan

    launched = launcher_processes(cfg.models.train_launcher)
    if launched is None:
        return  # the launcher does not say: checked when each stage launches
    stages = [(("dpo",), cfg.dpo)]
    if method.trains_refiner and cfg.ablation != "no_refiner_training":
        stages.append((("rft",), cfg.rft))
    if cfg.init.actor_data or cfg.init.refiner_data:
        stages.append((("init", "sft"), cfg.init.sft))
    for path, stage in stages:
        try:
            batch_plan(stage, ".".join(path), launched.processes)
        except SparError as exc:
            raise SparError(f"{_place(where, lines, path + ('global_batch_size',))}: {exc} ({launched.source}: "
                            f"models.train_launcher, {_place(where, lines, ('models', 'train_launcher'))})") from None


def _check_method_names(method) -> None:
    """A method's name and option names must not be run config keys (they share the YAML's top level)."""
    if method.name in GENERIC_KEYS:
        raise SparError(f"method name {method.name!r}: a run config key; choose another name")
    shadow = [f.name for f in dataclasses.fields(method.Config) if f.name in GENERIC_KEYS]
    if shadow:
        raise SparError(f"method {method.name}: option names {', '.join(shadow)} clash with the run config's")


def _check_method(cfg: RunConfig, method, where: str, lines: dict) -> None:
    from training.methods import iteration_stages

    stages = iteration_stages(method)
    if cfg.until and cfg.until not in stages:
        raise SparError(f"{_place(where, lines, ('until',))}: until: {cfg.until!r} is not a stage of method "
                        f"{method.name} (choose from {', '.join(stages)})")
    if cfg.ablation == "no_refiner_training" and not method.trains_refiner:
        raise SparError(f"{_place(where, lines, ('ablation',))}: ablation: no_refiner_training needs a method that "
                        f"trains a refiner; {method.name} does not")
    if method.judge == "actor" and cfg.init.refiner_data:
        raise SparError(f"{_place(where, lines, ('init', 'refiner_data'))}: init.refiner_data: method "
                        f"{method.name} judges with the actor; put judge (EFT) data in init.actor_data")


def with_method_eval_defaults(cfg: RunConfig, method) -> RunConfig:
    """The method's default benchmark options (e.g. LLMBar's score5 judge prompt for a score judge) under the ones
    the config sets."""
    if not method.eval_bench:
        return cfg
    bench = dict(cfg.eval.bench)
    for name, defaults in method.eval_bench.items():
        bench[name] = {**defaults, **bench.get(name, {})}
    return dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, bench=bench))


def _check_eval_bench(cfg: RunConfig, where: str, lines: dict) -> None:
    from evaluators import evaluator_class

    names = [b.strip() for spec in (cfg.eval.actor_benchmarks, cfg.eval.refiner_benchmarks)
             for b in spec.split(",") if b.strip()]
    for name in names:
        evaluator_class(name)
    for name, opts in cfg.eval.bench.items():
        validate(evaluator_class(name).Options, opts, where, lines, prefix=("eval", "bench", name))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
