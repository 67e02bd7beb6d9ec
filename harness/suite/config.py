"""`spar eval` / `spar score` configuration: one typed declaration read from YAML, `--set`, `--bench` and flags.

Models are roles with one spec each (`model`, `judge`, `refiner`; harness.core.spec.ModelSpec): a role that is not
given is the role it inherits from (judge <- model, refiner <- judge), and a role given in part inherits the rest.
Benchmark options live with their benchmark (`bench: {name: {key: value}}`, `--bench name.key=value`) and are
checked against that benchmark's `Options` here, before any model loads. Precedence: defaults < YAML < flags <
`--set` / `--bench`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from harness.core.errors import SparError
from harness.core.options import (NonNegativeInt, PositiveInt, Temperature, TopP, key_place, nearest_key, option,
                                  options, parse_override, read_yaml, set_dotted, validate)
from harness.core.spec import ModelSpec, spec_from

ROLES = ("model", "judge", "refiner")
ROLE_PARENT = {"judge": "model", "refiner": "judge"}


@options
class JudgingConfig:
    """How judge models are asked (FollowBench's and refinement's judge; the model under test on LLMBar)."""

    votes: PositiveInt = option(1, "judgments sampled per item and majority-voted (SPaR uses 5 at temperature 0.7)")
    temperature: Temperature = option(0.0, "judge sampling temperature (0 = greedy)")
    max_new_tokens: PositiveInt = option(1024, "judge generation budget")
    parser: Literal["official", "strict", "lenient"] = option(
        "official", "SPaR verdict parser: official (substring rules of the SPaR code), strict (the word right after "
                    "'Final Judgement ...:'), lenient (small models; not the paper's)")


@options
class DecodeConfig:
    """How actor benchmarks are answered at a budget of generated responses (SPaR Figure 5 / Table 10): the refiner
    role judges (and refines) the actor's responses before scoring."""

    strategy: Literal["greedy", "best-of-n", "iterative", "bfs", "dfs"] = option(
        "greedy", "greedy: one answer as generated (1 generation); best-of-n: `budget` samples, the refiner's "
                  "highest Yes fraction wins; iterative: judge and refine one response until Yes or the budget; "
                  "bfs/dfs: SPaR's tree search from the answer, grown with the budget (decode.tree_growth)")
    budget: PositiveInt = option(15, "candidate responses a strategy may generate per prompt: the actor's samples "
                                     "plus every refine request, failed ones included (judge calls are counted "
                                     "apart); the x axis of the inference-scaling curve")
    votes: PositiveInt = option(5, "refiner judgments per response (majority / Yes fraction)")
    temperature: Temperature = option(0.7, "sampling temperature of best-of-n candidates, judgments and refinements")
    max_new_tokens: PositiveInt = option(2048, "judge and refine generation budget")
    parser: Literal["official", "strict", "lenient"] = option("official", "verdict parser")
    refine_parser: Literal["official", "lenient"] = option("official", "refinement parser ([[start]] ... [[end]])")
    tree_growth: Literal["depth", "none"] = option(
        "depth", "bfs/dfs above the 3/2/3 tree: depth = deepen it (branch 3, keep 2) until it can ask budget - 1 "
                 "refinements; none = keep it and record the point as capped")


@options
class EvalConfig:
    """Everything `spar eval` / `spar score` runs with; the resolved config is written to the run record."""

    model: ModelSpec = option(ModelSpec(), "the model under test")
    judge: ModelSpec | None = option(None, "the judge of judged benchmarks (default: the model)")
    refiner: ModelSpec | None = option(None, "the refiner of --decode best-of-n/iterative/bfs/dfs (default: the judge)")
    benchmarks: str = option("", "comma-separated benchmarks to run (default: the registry's default)")
    bench: dict[str, dict[str, Any]] = option({}, "per-benchmark options: {name: {key: value}}")
    data: str = option("", "data source (a local file/folder or hub id); for several benchmarks name=source,... "
                           "Default: $SPAR_DATA_DIR, else the hub")
    limit: PositiveInt | None = option(None, "score only the first N items of each benchmark (LLMBar: N pairs per "
                                             "subset; FollowBench: N items per category)")
    output: str = option("", "run folder (default results/runs/<time>-<model>)")
    max_new_tokens: PositiveInt = option(1280, "generation budget per response (lm-eval's IFEval setting)")
    temperature: Temperature = option(0.0, "sampling temperature; 0 = greedy")
    top_p: TopP = option(1.0, "nucleus sampling p")
    seed: NonNegativeInt = option(0, "seed of every request (per-sample seeds derive from it)")
    system_prompt: str = option("", "optional system message before each prompt")
    cache: str = option("", "generation cache (SQLite file); default <cache dir>/generations.sqlite")
    judging: JudgingConfig = option(JudgingConfig(), "how judges are asked")
    decode: DecodeConfig = option(DecodeConfig(), "decoding strategy of actor benchmarks")

    def role(self, name: str) -> ModelSpec:
        """The spec of a role, following inheritance (judge <- model, refiner <- judge)."""
        spec = getattr(self, name)
        return spec if spec is not None else self.role(ROLE_PARENT[name])

    def benchmark_names(self) -> list[str]:
        from evaluators import DEFAULT_BENCHMARKS

        names = [b.strip() for b in (self.benchmarks or DEFAULT_BENCHMARKS).split(",") if b.strip()]
        if not names:
            raise SparError("--benchmarks: name at least one benchmark")
        return names

    def judge_config(self):
        from evaluators.judging import JudgeConfig
        from harness.core.types import SamplingParams

        j = self.judging
        return JudgeConfig(votes=j.votes, parser=j.parser, seed=self.seed,
                           sampling=SamplingParams(temperature=j.temperature, top_p=self.top_p,
                                                   max_new_tokens=j.max_new_tokens))

    def evaluator(self, name: str):
        """The benchmark's evaluator with its options (from `bench`) and the run's judge settings."""
        from evaluators import get_evaluator

        return get_evaluator(name, self.bench.get(name, {}), self.judge_config())


# Flags: each sets one dotted key of the config. (flag, key, type); help comes from the declarations.
MODEL_FLAGS = [("model", "model.name"), ("backend", "model.backend"), ("base-url", "model.base_url"),
               ("api-key-env", "model.api_key_env"), ("model-revision", "model.revision"),
               ("dtype", "model.dtype"), ("device", "model.device"), ("batch-size", "model.batch_size"),
               ("max-concurrency", "model.max_concurrency"), ("max-retries", "model.max_retries"),
               ("timeout-s", "model.timeout_s"), ("tensor-parallel-size", "model.tensor_parallel_size"),
               ("data-parallel-size", "model.data_parallel_size")]
ROLE_FLAGS = [("judge", "judge.name"), ("judge-backend", "judge.backend"), ("judge-base-url", "judge.base_url"),
              ("judge-api-key-env", "judge.api_key_env"), ("refiner", "refiner.name")]
RUN_FLAGS = [("benchmarks", "benchmarks"), ("data", "data"), ("limit", "limit"), ("output", "output"),
             ("max-new-tokens", "max_new_tokens"), ("temperature", "temperature"), ("top-p", "top_p"),
             ("seed", "seed"), ("system-prompt", "system_prompt"), ("cache", "cache")]
JUDGE_FLAGS = [("judge-votes", "judging.votes"), ("judge-temperature", "judging.temperature"),
               ("judge-max-new-tokens", "judging.max_new_tokens"), ("judge-parser", "judging.parser")]
SEARCH_FLAGS = [("decode", "decode.strategy"), ("budget", "decode.budget"), ("decode-votes", "decode.votes"),
                ("decode-temperature", "decode.temperature"), ("decode-max-new-tokens", "decode.max_new_tokens"),
                ("decode-parser", "decode.parser"), ("decode-refine-parser", "decode.refine_parser"),
                # earlier names of the tree-search flags
                ("tree-search", "decode.strategy"), ("tree-search-votes", "decode.votes"),
                ("tree-search-budget", "decode.budget"), ("tree-search-max-new-tokens", "decode.max_new_tokens"),
                ("tree-search-parser", "decode.parser")]
ALL_FLAGS = MODEL_FLAGS + ROLE_FLAGS + RUN_FLAGS + JUDGE_FLAGS + SEARCH_FLAGS


def _normalise_roles(data: dict) -> dict:
    """Role shorthands (`model: NAME`) become mappings, and given roles inherit the unset fields of their parent."""
    out = dict(data)
    out["model"] = spec_from(out.get("model"), {})
    for role in ("judge", "refiner"):
        if out.get(role) is not None:
            parent = out.get(ROLE_PARENT[role]) or out["model"]
            out[role] = spec_from(out[role], parent)
    return out


def load_eval_config(yaml_path: str | None = None, flags: dict[str, Any] | None = None,
                     overrides: list[str] | None = None, bench: list[str] | None = None,
                     **values: Any) -> EvalConfig:
    """Build and check an EvalConfig: YAML file < flags (dotted key -> raw value) < `--set` < `--bench` < values."""
    data: dict = {}
    lines: dict[tuple, int] = {}
    where = yaml_path or "flags"
    if yaml_path:
        data, lines = read_yaml(yaml_path, "eval config")
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for key, raw in (flags or {}).items():
        if raw is not None:  # text; pydantic parses numbers and checks ranges, and errors name the flag
            set_dotted(data, key, raw)
            lines[tuple(key.split("."))] = "--" + next(f for f, k in ALL_FLAGS if k == key)
    for item in overrides or []:
        key, value = parse_override(item)
        set_dotted(data, key, value)
        lines[tuple(key.split("."))] = f"--set {key}"
    for item in bench or []:
        key, value = parse_override(item)
        if "." not in key:
            raise SparError(f"--bench {item!r}: expected NAME.KEY=VALUE, e.g. followbench.categories=content")
        set_dotted(data, "bench." + key, value)
        lines[("bench", *key.split("."))] = f"--bench {key}"
    for key, value in values.items():
        set_dotted(data, key, value)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(EvalConfig)})
    if unknown:
        near = nearest_key(EvalConfig, (unknown[0],))
        raise SparError(f"{key_place(where, lines, (unknown[0],))}: {unknown[0]}: unknown option"
                        + (f" (did you mean {near}?)" if near else _layout_hint(unknown[0])))
    _check_benchmarks_named(data, where, lines)
    cfg = validate(EvalConfig, _normalise_roles(data), where, lines)
    _check_bench(cfg, where, lines)
    return cfg


def _layout_hint(key: str) -> str:
    """For a model field given at the top level (the old flat layout): where it goes now."""
    return f" (a model field: write model: {{{key}: ...}} or --set model.{key}=...)" \
        if key in {f.name for f in dataclasses.fields(ModelSpec)} else ""


def _check_benchmarks_named(data: dict, where: str, lines: dict[tuple, int]) -> None:
    """`benchmarks` given but naming none (`--benchmarks ''`) is an error, never the default set."""
    value = data.get("benchmarks")
    if "benchmarks" in data and isinstance(value, str) and not [b for b in value.split(",") if b.strip()]:
        from evaluators import DEFAULT_BENCHMARKS

        raise SparError(f"{key_place(where, lines, ('benchmarks',))}: benchmarks: empty; name at least one benchmark "
                        f"(leave it out for the default, {DEFAULT_BENCHMARKS}; `spar benchmarks` lists them)")


def _check_bench(cfg: EvalConfig, where: str, lines: dict[tuple, int]) -> None:
    """Each benchmark's options are checked against its own declaration (unknown benchmark, key or value)."""
    from evaluators import evaluator_class

    for name, opts in cfg.bench.items():
        cls = evaluator_class(name)
        validate(cls.Options, opts, where, lines, prefix=("bench", name))
    for name in cfg.benchmark_names():
        evaluator_class(name)
