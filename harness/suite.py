"""Running suites: generate through the cache, judge where a benchmark needs it, score, write the run folder.

`spar eval` folder: record.json (what was run), metrics.json (all benchmarks' metrics by name) and per benchmark
<name>/samples.jsonl and <name>/metrics.json. `spar score` (one benchmark, outputs made elsewhere) writes
record.json, metrics.json and samples.jsonl directly in its folder.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators import get_evaluator
from evaluators.base import Evaluator, GenerationConfig, LoadedData
from evaluators.judging import JudgeConfig
from harness.backends import Backend, make_backend
from harness.cache import GenerationCache
from harness.config import EvalConfig, to_dict
from harness.errors import SparError
from harness.generation import GenerationStats, cached_generate, counting_generate
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


def make_model_backend(cfg: EvalConfig, model: str, backend: str, base_url: str) -> Backend:
    if not model:
        raise SparError("--model is required")
    if backend == "openai":
        return make_backend("openai", model=model, base_url=base_url, api_key_env=cfg.api_key_env,
                            max_concurrency=cfg.max_concurrency, max_retries=cfg.max_retries,
                            timeout_s=cfg.timeout_s, model_revision=cfg.model_revision or None)
    if backend == "vllm":
        return make_backend("vllm", model=resolve_model(model), dtype=cfg.dtype,
                            tensor_parallel_size=cfg.tensor_parallel_size, data_parallel_size=cfg.data_parallel_size)
    return make_backend(backend, model=resolve_model(model), dtype=cfg.dtype, device=cfg.device,
                        batch_size=cfg.batch_size)


def judge_config(cfg: EvalConfig) -> JudgeConfig:
    return JudgeConfig(votes=cfg.judge_votes, parser=cfg.judge_parser, seed=cfg.seed,
                       sampling=SamplingParams(temperature=cfg.judge_temperature, top_p=cfg.top_p,
                                               max_new_tokens=cfg.judge_max_new_tokens))


def evaluator_options(name: str, cfg: EvalConfig) -> dict:
    if name == "followbench":
        return {"categories": cfg.followbench_categories, "invalid_policy": cfg.followbench_invalid_policy}
    if name == "llmbar":
        return {"protocol": cfg.llmbar_protocol, "judge": judge_config(cfg)}
    if name == "refinement":
        return {"judge": judge_config(cfg)}
    return {}


class Models:
    """The model under test and, when a benchmark needs one, the judge; the judge reuses the model's backend when
    both are the same model on the same backend (one copy of the weights in memory)."""

    def __init__(self, cfg: EvalConfig):
        self.cfg = cfg
        self._model: Backend | None = None
        self._judge: Backend | None = None
        self._refiner: Backend | None = None

    def judge_spec(self) -> tuple[str, str, str]:
        c = self.cfg
        return (c.judge or c.model, c.judge_backend or c.backend, c.judge_base_url or c.base_url)

    @property
    def model(self) -> Backend:
        if self._model is None:
            self._model = make_model_backend(self.cfg, self.cfg.model, self.cfg.backend, self.cfg.base_url)
        return self._model

    @property
    def refiner(self) -> Backend:
        """The inference-time tree-search refiner: --refiner, else the judge."""
        if not self.cfg.refiner:
            return self.judge
        if self._refiner is None:
            c = self.cfg
            self._refiner = make_model_backend(c, c.refiner, c.judge_backend or c.backend, c.judge_base_url or c.base_url)
        return self._refiner

    @property
    def judge(self) -> Backend:
        if self._judge is None:
            spec = self.judge_spec()
            same = spec == (self.cfg.model, self.cfg.backend, self.cfg.base_url)
            self._judge = self.model if same and self.cfg.model else make_model_backend(self.cfg, *spec)
        return self._judge

    def close(self) -> None:
        for backend in {id(b): b for b in (self._model, self._judge, self._refiner) if b is not None}.values():
            backend.close()


def _texts(ev: Evaluator, completions) -> list:
    if getattr(ev, "completions_per_request", None):
        return [[c.text for c in comps] for comps in completions]
    return [comps[0].text for comps in completions]


def _judge_step(ev: Evaluator, data: LoadedData, responses: list, models: Models, cfg: EvalConfig,
                cache: GenerationCache, reporter: Reporter, name: str) -> tuple[list | None, GenerationStats | None]:
    if not ev.needs_judge:
        return None, None
    requests = ev.judge_requests(data, responses, judge_config(cfg))
    if not requests:
        return [], GenerationStats()
    with reporter.stage(f"judge {name}", len(requests)) as advance:
        completions, stats = cached_generate(models.judge, requests, cache, advance)
    return [[c.text for c in comps] for comps in completions], stats


def _inference_search(requests, responses, models: Models, cfg: EvalConfig, cache: GenerationCache,
                      reporter: Reporter, name: str) -> tuple[list[str], dict]:
    from training.inference_search import refine_answers
    from training.tree_search import SearchConfig

    sampling = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=cfg.tree_search_max_new_tokens)
    scfg = SearchConfig(algorithm=cfg.tree_search, votes=cfg.tree_search_votes, budget=cfg.tree_search_budget,
                        parser=cfg.tree_search_parser, judge_sampling=sampling, refine_sampling=sampling, seed=cfg.seed)
    prompts = [r.messages[-1].content for r in requests]
    stats = GenerationStats()

    generate = counting_generate(models.refiner, cache, stats)

    with reporter.stage(f"tree search {name}", 1) as advance:
        new, details, counts = refine_answers(prompts, responses, scfg, generate)
        advance(1)
    info = {"config": to_dict(scfg), "refiner": models.refiner.describe(), "refiner_identity": models.refiner.identity,
            "counts": counts, "generation_stats": stats.to_dict(), "details": details}
    return new, info


def open_cache(cfg: EvalConfig) -> tuple[GenerationCache, Path]:
    path = Path(cfg.cache) if cfg.cache else cache_dir() / "generations.sqlite"
    return GenerationCache(path), path


def run_eval(cfg: EvalConfig, reporter: Reporter | None = None) -> RunResult:
    reporter = reporter or SilentReporter()
    benchmarks = parse_benchmarks(cfg.benchmarks)
    evaluators = {b: get_evaluator(b, evaluator_options(b, cfg)) for b in benchmarks}  # fail before any model loads
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
    models = Models(cfg)
    cache, cache_path = open_cache(cfg)
    record["cache"] = str(cache_path)
    result = RunResult(out, record=record)
    try:
        record["backend"] = models.model.describe()
        record["model_identity"] = models.model.identity
        for name in benchmarks:
            ev, data = evaluators[name], datasets[name]
            requests = ev.requests(data, gen_cfg)
            t0 = time.perf_counter()
            with reporter.stage(f"generate {name}", len(requests)) as advance:
                completions, stats = cached_generate(models.model, requests, cache, advance)
            responses = _texts(ev, completions)
            search_info = None
            if cfg.tree_search and not getattr(ev, "completions_per_request", None) and ev.searchable:
                responses, search_info = _inference_search(requests, responses, models, cfg, cache, reporter, name)
            t1 = time.perf_counter()
            judgments, judge_stats = _judge_step(ev, data, responses, models, cfg, cache, reporter, name)
            t2 = time.perf_counter()
            scored = ev.score(data, responses, judgments)
            t3 = time.perf_counter()
            if len(scored.samples) == len(completions):  # one sample per request: keep how each one ended
                for sample, comps in zip(scored.samples, completions):
                    sample.setdefault("finish_reason", comps[0].finish_reason)
                    sample.setdefault("completion_tokens", comps[0].completion_tokens)
            if search_info is not None:
                for sample, detail in zip(scored.samples, search_info["details"]):
                    sample["tree_search"] = detail
            write_jsonl(out / name / "samples.jsonl", scored.samples)
            write_json(out / name / "metrics.json", scored.metrics)
            result.metrics[name] = scored.metrics
            entry = {"data": data.source, "scorer": ev.describe(), "generation_stats": stats.to_dict(),
                     "seconds": {"generation": round(t1 - t0, 3), "judging": round(t2 - t1, 3),
                                 "scoring": round(t3 - t2, 3)}}
            if search_info is not None:
                entry["tree_search"] = {k: v for k, v in search_info.items() if k != "details"}
            if judge_stats is not None:
                entry["judge"] = {"backend": models.judge.describe(), "identity": models.judge.identity,
                                  "config": judge_config(cfg).describe(), "generation_stats": judge_stats.to_dict()}
            record["benchmarks"][name] = entry
            write_json(out / "record.json", record)
    finally:
        cache.close()
        models.close()
    write_json(out / "metrics.json", result.metrics)
    record.update(status="finished", finished=now(), seconds=round(time.perf_counter() - started, 3))
    write_json(out / "record.json", record)
    return result


def run_score(benchmark: str, outputs: str, output: str, cfg: EvalConfig | None = None,
              reporter: Reporter | None = None) -> RunResult:
    """Score outputs produced elsewhere (responses, or for LLMBar the judge's judgments); same record format as
    `run_eval`, files directly in `output`. A benchmark that needs a judge calls `cfg.judge` (through the cache)."""
    reporter = reporter or SilentReporter()
    cfg = cfg or EvalConfig()
    ev = get_evaluator(benchmark, evaluator_options(benchmark, cfg))
    out = Path(output)
    loaded = ev.load(cfg.data or None)
    started = time.perf_counter()
    record: dict[str, Any] = {"command": "score", "benchmark": benchmark, "outputs": outputs, "scorer": ev.describe(),
                              "environment": environment(), "status": "running"}
    judgments, judge_stats, models = None, None, None
    if benchmark == "llmbar":
        matched, texts = ev.match_judgments(loaded, outputs)  # type: ignore[attr-defined]
    else:
        matched, texts = ev.match_responses(loaded, outputs)
        if ev.needs_judge:
            if not (cfg.judge or cfg.model):
                raise SparError(f"spar score {benchmark}: this benchmark needs a judge model (--judge)")
            models = Models(EvalConfig(**{**to_dict(cfg), "model": cfg.judge or cfg.model}))
            cache, cache_path = open_cache(cfg)
            try:
                judgments, judge_stats = _judge_step(ev, matched, texts, models, cfg, cache, reporter, benchmark)
                record["judge"] = {"backend": models.judge.describe(), "identity": models.judge.identity,
                                   "config": judge_config(cfg).describe(), "cache": str(cache_path),
                                   "generation_stats": judge_stats.to_dict() if judge_stats else None}
            finally:
                cache.close()
                models.close()
    with reporter.stage(f"score {benchmark}", 1) as advance:
        scored = ev.score(matched, texts, judgments)
        advance(1)
    write_jsonl(out / "samples.jsonl", scored.samples)
    write_json(out / "metrics.json", scored.metrics)
    record.update(data=matched.source, finished=now(), status="finished",
                  seconds={"total": round(time.perf_counter() - started, 3)})
    write_json(out / "record.json", record)
    return RunResult(out, {benchmark: scored.metrics}, record)
