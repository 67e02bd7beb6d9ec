"""Config dataclasses (TRL style): each field's help text drives the CLI flags, YAML configs and the Python API."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from harness.errors import SparError


def opt(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class EvalConfig:
    model: str = opt("", "model: the embedded default's short name (smollm2-135m-instruct), a local checkpoint "
                         "folder or a hub id; for --backend openai, the name the server knows the model by")
    backend: str = opt("hf", "generation backend: hf (transformers), openai (any OpenAI-compatible server), "
                             "vllm (in-process, GPU)")
    benchmarks: str = opt("ifeval", "comma-separated benchmarks to run")
    data: str = opt("", "data source for the benchmark (a local file/folder or hub id); for several benchmarks "
                        "use name=source,name=source. Default: $SPAR_DATA_DIR, else the hub")
    limit: int | None = opt(None, "score only the first N items of each benchmark")
    output: str = opt("", "run folder (default results/runs/<time>-<model>)")
    max_new_tokens: int = opt(1280, "generation budget per response (lm-eval's IFEval setting)")
    temperature: float = opt(0.0, "sampling temperature; 0 = greedy")
    top_p: float = opt(1.0, "nucleus sampling p")
    seed: int = opt(0, "seed of every request (per-sample seeds derive from it)")
    system_prompt: str = opt("", "optional system message before each prompt")
    batch_size: int = opt(8, "requests per generation batch (hf/vllm) or per cache write (openai)")
    dtype: str = opt("auto", "hf/vllm weights dtype: auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    device: str = opt("auto", "hf device: auto, cpu, cuda, cuda:1 ...")
    base_url: str = opt("http://127.0.0.1:8000/v1", "openai backend: server base URL")
    api_key_env: str = opt("OPENAI_API_KEY", "openai backend: environment variable holding the API key "
                                             "(the key is never recorded)")
    max_concurrency: int = opt(8, "openai backend: requests in flight at once")
    max_retries: int = opt(5, "openai backend: retries with exponential backoff per request")
    timeout_s: float = opt(600.0, "openai backend: per-request timeout in seconds")
    model_revision: str = opt("", "openai backend: a revision label for the served weights (part of cache keys)")
    tensor_parallel_size: int = opt(1, "vllm backend: tensor parallel degree")
    data_parallel_size: int = opt(1, "vllm backend: data parallel degree")
    cache: str = opt("", "generation cache (SQLite file); default <cache dir>/generations.sqlite")
    judge: str = opt("", "judge model for benchmarks scored by an LLM judge (FollowBench, refinement); default: "
                         "--model itself")
    judge_backend: str = opt("", "backend of the judge (default: --backend)")
    judge_base_url: str = opt("", "openai judge backend: server base URL (default: --base-url)")
    judge_votes: int = opt(1, "judgments sampled per item and majority-voted (SPaR uses 5 at temperature 0.7); "
                              "also the votes of the model under test on LLMBar pointwise")
    judge_temperature: float = opt(0.0, "judge sampling temperature (0 = greedy)")
    judge_max_new_tokens: int = opt(1024, "judge generation budget")
    judge_parser: str = opt("official", "SPaR verdict parser: official (substring rules of the SPaR code) or strict")
    llmbar_protocol: str = opt("pointwise", "LLMBar protocol: pointwise (SPaR's Yes/No per output) or pairwise "
                                            "(official LLMBar, both orders)")
    followbench_categories: str = opt("", "comma-separated FollowBench categories (default: all six)")
    tree_search: str = opt("", "inference-time tree search before scoring actor benchmarks: '' (off), bfs or dfs; "
                               "the refiner (--refiner, default the judge) judges each answer and refines rejected "
                               "ones (SPaR Figure 5)")
    refiner: str = opt("", "refiner model for --tree-search (default: --judge, else --model); same backend as the "
                           "judge")
    tree_search_votes: int = opt(5, "--tree-search: judgments per node (majority / Yes fraction)")
    tree_search_budget: int = opt(15, "--tree-search: refinements per answer at most")
    tree_search_max_new_tokens: int = opt(2048, "--tree-search: judge and refine generation budget")
    tree_search_parser: str = opt("official", "--tree-search: verdict parser (official, strict, lenient)")
    followbench_invalid_policy: str = opt("zero", "FollowBench invalid judge outputs: zero (count as not "
                                                  "satisfied) or exclude (drop from the denominator)")


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    hints = get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        base = int if kind in (int, int | None) else float if kind is float else str
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=base, default=None,
                            help=f"{f.metadata.get('help', '')} (default: {f.default!r})")


def build_config(cls: type, namespace: argparse.Namespace | None = None, yaml_path: str | None = None,
                 **overrides: Any):
    """Defaults < YAML file < CLI flags < explicit overrides."""
    values: dict[str, Any] = {}
    names = {f.name for f in fields(cls)}
    if yaml_path:
        import yaml

        path = Path(yaml_path)
        if not path.is_file():
            raise SparError(f"--config {yaml_path}: no such file")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SparError(f"{yaml_path}: invalid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise SparError(f"{yaml_path}: expected a mapping of option names to values")
        for key, value in loaded.items():
            if key not in names:
                raise SparError(f"{yaml_path}: unknown option {key!r} for {cls.__name__}")
            values[key] = value
    if namespace is not None:
        values.update({k: v for k, v in vars(namespace).items() if k in names and v is not None})
    values.update(overrides)
    cfg = cls(**values)
    _check_types(cfg, yaml_path or "flags")
    return cfg


def _check_types(cfg: Any, where: str) -> None:
    hints = get_type_hints(type(cfg))
    for f in fields(cfg):
        value, kind = getattr(cfg, f.name), hints[f.name]
        ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
              float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              str: lambda v: isinstance(v, str),
              int | None: lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))}.get(kind)
        if ok is not None and not ok(value):
            raise SparError(f"{where}: option {f.name!r} must be {getattr(kind, '__name__', str(kind))}, got {value!r}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
