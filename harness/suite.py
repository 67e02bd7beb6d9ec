"""Running suites: generate through the cache, score, and write the run folder.

`spar eval` folder: record.json (what was run), metrics.json (all benchmarks' metrics by name) and per benchmark
<name>/samples.jsonl and <name>/metrics.json. `spar score` (one benchmark, responses made elsewhere) writes
record.json, metrics.json and samples.jsonl directly in its folder.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators import get_evaluator
from evaluators.base import GenerationConfig
from harness.backends import make_backend
from harness.cache import GenerationCache
from harness.config import EvalConfig, to_dict
from harness.errors import SparError
from harness.generation import cached_generate
from harness.models import resolve_model
from harness.paths import cache_dir
from harness.progress import Reporter, SilentReporter
from harness.records import environment, now, write_json, write_jsonl
from harness.types import SamplingParams


@dataclass
class RunResult:
    output: Path
    metrics: dict[str, dict] = field(default_factory=dict)
    record: dict = field(default_factory=dict)


def parse_benchmarks(spec: str) -> list[str]:
    names = [b.strip() for b in spec.split(",") if b.strip()]
    if not names:
        raise SparError("--benchmarks: name at least one benchmark")
    return names


def parse_data(spec: str, benchmarks: list[str]) -> dict[str, str | None]:
    if not spec:
        return {b: None for b in benchmarks}
    if "=" not in spec:
        if len(benchmarks) > 1:
            raise SparError("--data: with several benchmarks, give name=source pairs separated by commas")
        return {benchmarks[0]: spec}
    out: dict[str, str | None] = {b: None for b in benchmarks}
    for part in spec.split(","):
        name, sep, source = part.partition("=")
        if not sep or name.strip() not in out:
            raise SparError(f"--data: {part!r} does not name one of the benchmarks {benchmarks}")
        out[name.strip()] = source.strip()
    return out


def default_output(model: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/.~")).strip("_")[-60:] or "model"
    return Path("results") / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def build_backend(cfg: EvalConfig):
    if not cfg.model:
        raise SparError("--model is required")
    if cfg.backend == "openai":
        return make_backend("openai", model=cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env,
                            max_concurrency=cfg.max_concurrency, max_retries=cfg.max_retries,
                            timeout_s=cfg.timeout_s, model_revision=cfg.model_revision or None)
    if cfg.backend == "vllm":
        return make_backend("vllm", model=resolve_model(cfg.model), dtype=cfg.dtype,
                            tensor_parallel_size=cfg.tensor_parallel_size, data_parallel_size=cfg.data_parallel_size)
    return make_backend(cfg.backend, model=resolve_model(cfg.model), dtype=cfg.dtype, device=cfg.device,
                        batch_size=cfg.batch_size)


def run_eval(cfg: EvalConfig, reporter: Reporter | None = None) -> RunResult:
    reporter = reporter or SilentReporter()
    benchmarks = parse_benchmarks(cfg.benchmarks)
    evaluators = {b: get_evaluator(b) for b in benchmarks}  # unknown names fail before any model loads
    sources = parse_data(cfg.data, benchmarks)
    if cfg.limit is not None and cfg.limit < 1:
        raise SparError("--limit must be at least 1")
    out = Path(cfg.output) if cfg.output else default_output(cfg.model)
    gen_cfg = GenerationConfig(SamplingParams(cfg.temperature, cfg.top_p, cfg.max_new_tokens), cfg.seed,
                               cfg.system_prompt or None)
    datasets = {b: evaluators[b].load(sources[b], cfg.limit) for b in benchmarks}
    record: dict[str, Any] = {"command": "eval", "config": to_dict(cfg), "started": now(), "status": "running",
                              "generation": to_dict(gen_cfg), "environment": environment(), "benchmarks": {}}
    write_json(out / "record.json", record)
    started = time.perf_counter()
    backend = build_backend(cfg)
    record["backend"] = backend.describe()
    record["model_identity"] = backend.identity
    cache_path = Path(cfg.cache) if cfg.cache else cache_dir() / "generations.sqlite"
    cache = GenerationCache(cache_path)
    record["cache"] = str(cache_path)
    result = RunResult(out, record=record)
    try:
        for name in benchmarks:
            ev, data = evaluators[name], datasets[name]
            requests = ev.requests(data, gen_cfg)
            t0 = time.perf_counter()
            with reporter.stage(f"generate {name}", len(requests)) as advance:
                completions, stats = cached_generate(backend, requests, cache, advance)
            t1 = time.perf_counter()
            with reporter.stage(f"score {name}", 1) as advance:
                scored = ev.score(data, [c[0].text for c in completions])
                advance(1)
            t2 = time.perf_counter()
            for sample, comps in zip(scored.samples, completions):
                sample["finish_reason"] = comps[0].finish_reason
                sample["completion_tokens"] = comps[0].completion_tokens
            write_jsonl(out / name / "samples.jsonl", scored.samples)
            write_json(out / name / "metrics.json", scored.metrics)
            result.metrics[name] = scored.metrics
            record["benchmarks"][name] = {"data": data.source, "scorer": ev.describe(),
                                          "generation_stats": stats.to_dict(),
                                          "seconds": {"generation": round(t1 - t0, 3), "scoring": round(t2 - t1, 3)}}
            write_json(out / "record.json", record)
    finally:
        cache.close()
        backend.close()
    write_json(out / "metrics.json", result.metrics)
    record.update(status="finished", finished=now(), seconds=round(time.perf_counter() - started, 3))
    write_json(out / "record.json", record)
    return result


def run_score(benchmark: str, responses: str, output: str, data: str | None = None,
              reporter: Reporter | None = None) -> RunResult:
    """Score responses produced elsewhere; same record format as `run_eval`, files directly in `output`."""
    reporter = reporter or SilentReporter()
    ev = get_evaluator(benchmark)
    out = Path(output)
    loaded = ev.load(data or None)
    matched, texts = ev.match_responses(loaded, responses)
    started = time.perf_counter()
    with reporter.stage(f"score {benchmark}", 1) as advance:
        scored = ev.score(matched, texts)
        advance(1)
    write_jsonl(out / "samples.jsonl", scored.samples)
    write_json(out / "metrics.json", scored.metrics)
    record = {"command": "score", "benchmark": benchmark, "responses": responses, "data": matched.source,
              "scorer": ev.describe(), "environment": environment(), "finished": now(), "status": "finished",
              "seconds": {"scoring": round(time.perf_counter() - started, 3)}}
    write_json(out / "record.json", record)
    return RunResult(out, {benchmark: scored.metrics}, record)
