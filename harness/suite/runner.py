"""Running suites: generate through the cache, judge where a benchmark needs it, score, write the run folder.

`spar eval` folder: record.json (what was run and how it ended), metrics.json (all benchmarks' metrics by name)
and per benchmark <name>/samples.jsonl and <name>/metrics.json. `spar score` (one benchmark, outputs made
elsewhere) writes record.json, metrics.json and samples.jsonl directly in its folder.

The suite layer: it may import the core, evaluators and training; only the commands import it.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.base import Evaluator, GenerationConfig, LoadedData
from harness.core.cache import GenerationCache, check_cache_path
from harness.core.compute import local_generation_gpus, stage_compute
from harness.suite.config import EvalConfig, JudgingConfig
from harness.core.data import data_for, parse_data
from harness.core.errors import SparError
from harness.core.generation import GenerationStats, cached_generate, counting_generate
from harness.core.options import to_dict
from harness.core.paths import cache_dir
from harness.core.progress import Reporter, SilentReporter
from harness.core.records import RecordWriter, RunRecord, check_output_dir, clean_stale_temps, write_json, write_jsonl
from harness.core.spec import ModelPool
from harness.core.types import SamplingParams


@dataclass
class RunResult:
    output: Path
    metrics: dict[str, dict] = field(default_factory=dict)
    record: dict = field(default_factory=dict)


def default_output(model: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/.~")).strip("_")[-60:] or "model"
    return Path("results") / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def cache_path(cfg: EvalConfig) -> Path:
    return Path(cfg.cache) if cfg.cache else cache_dir() / "generations.sqlite"


def prepare_output(out: Path, cfg: EvalConfig) -> None:
    """Output and cache locations are checked before any model loads; leftovers of a killed write are removed."""
    check_output_dir(out)
    check_cache_path(cache_path(cfg))
    clean_stale_temps(out)


def describe(backend) -> dict:
    """What the record says of a backend: its own description and the identity its cache keys use."""
    return {**backend.describe(), "identity": backend.identity}


def _texts(ev: Evaluator, completions) -> list:
    if getattr(ev, "completions_per_request", None):
        return [[c.text for c in comps] for comps in completions]
    return [comps[0].text for comps in completions]


def _judge_step(ev: Evaluator, data: LoadedData, responses: list, judge, cache: GenerationCache, reporter: Reporter,
                name: str) -> tuple[list | None, GenerationStats | None]:
    if not ev.needs_judge:
        return None, None
    requests = ev.judge_requests(data, responses)
    if not requests:
        return [], GenerationStats()
    with reporter.stage(f"judge {name}", len(requests)) as advance:
        completions, stats = cached_generate(judge, requests, cache, advance)
    return [[c.text for c in comps] for comps in completions], stats


def _decode(strategy: str, requests, completions, refiner, cfg: EvalConfig, cache: GenerationCache,
            reporter: Reporter, name: str) -> tuple[list[str], dict]:
    """Responses chosen or refined by the refiner role at `cfg.decode.budget` generations per prompt, and what the
    record says of them (the settings the strategy used, counts, per-sample details)."""
    from training.inference_search import decode
    from training.tree_search import SearchConfig

    d = cfg.decode
    sampling = SamplingParams(temperature=d.temperature, top_p=1.0, max_new_tokens=d.max_new_tokens)
    scfg = SearchConfig(votes=d.votes, parser=d.parser, refine_parser=d.refine_parser, judge_sampling=sampling,
                        refine_sampling=sampling, seed=cfg.seed)
    prompts = [r.messages[-1].content for r in requests]
    stats = GenerationStats()
    generate = counting_generate(refiner, cache, stats)
    with reporter.stage(f"{strategy} {name} (budget {d.budget})", 1) as advance:
        decoded = decode(strategy, prompts, completions, scfg, d.budget, generate, d.tree_growth)
        advance(1)
    settings = decoded.settings
    if strategy == "best-of-n":
        settings = {**settings, "candidates": d.budget, "candidate_temperature": d.temperature}
    counts, per_prompt = decoded.counts, max(1, len(prompts))
    info = {"strategy": strategy, "budget": d.budget, "config": settings, "refiner": describe(refiner),
            "counts": counts, "generations_per_prompt": counts["generations"] / per_prompt,
            "max_generations": max((x["generations"] for x in decoded.details), default=0),
            "judge_requests_per_prompt": counts["judge_requests"] / per_prompt,
            "generation_stats": stats.to_dict(), "details": decoded.details}
    return decoded.responses, info


def _eval_benchmark(name: str, ev: Evaluator, data: LoadedData, cfg: EvalConfig, gen_cfg: GenerationConfig,
                    pool: ModelPool, cache: GenerationCache, reporter: Reporter, out: Path,
                    writer: RecordWriter) -> dict:
    model = pool.get(cfg.model)
    t0 = time.perf_counter()
    driven = ev.run(data, cfg.model, model, gen_cfg)
    if driven is not None:  # the benchmark generated and scored itself (lm-eval tasks)
        write_jsonl(out / name / "samples.jsonl", driven.samples)
        write_json(out / name / "metrics.json", driven.metrics)
        writer.record.benchmarks[name] = {"data": data.source, "scorer": ev.describe(),
                                          "seconds": {"total": round(time.perf_counter() - t0, 3)}}
        writer.save()
        return driven.metrics
    requests = ev.requests(data, gen_cfg)
    strategy = cfg.decode.strategy if ev.searchable and not getattr(ev, "completions_per_request", None) \
        else "greedy"
    if strategy == "best-of-n":  # the budget is spent on sampled candidates
        requests = [dataclasses.replace(r, n=cfg.decode.budget, sampling=dataclasses.replace(
            r.sampling, temperature=cfg.decode.temperature)) for r in requests]
    t0 = time.perf_counter()
    with reporter.stage(f"generate {name}", len(requests)) as advance:
        completions, stats = cached_generate(model, requests, cache, advance)
    responses = _texts(ev, completions)
    search_info = None
    if strategy != "greedy":
        refiner = pool.get(cfg.role("refiner"))
        writer.record.models.setdefault("refiner", describe(refiner))
        responses, search_info = _decode(strategy, requests, completions, refiner, cfg, cache, reporter, name)
    t1 = time.perf_counter()
    judge = None
    if ev.needs_judge:
        judge = pool.get(cfg.role("judge"))
        writer.record.models.setdefault("judge", describe(judge))
    judgments, judge_stats = _judge_step(ev, data, responses, judge, cache, reporter, name)
    t2 = time.perf_counter()
    scored = ev.score(data, responses, judgments)
    t3 = time.perf_counter()
    if len(scored.samples) == len(completions):  # one sample per request: keep how each one ended
        for sample, comps in zip(scored.samples, completions):
            sample.setdefault("finish_reason", comps[0].finish_reason)
            sample.setdefault("completion_tokens", comps[0].completion_tokens)
    if search_info is not None:  # the returned answer's ending, not the first sample's
        for sample, detail in zip(scored.samples, search_info["details"]):
            sample["finish_reason"] = detail.pop("finish_reason")
            sample["completion_tokens"] = detail.pop("completion_tokens")
            sample["decode"] = detail
        spent = search_info["counts"]
        scored.metrics.setdefault("counts", {}).update(
            {f"decode_{k}": spent[k] for k in ("generations", "judge_requests", "invalid_judgments",
                                               "no_valid_judgment")})
    write_jsonl(out / name / "samples.jsonl", scored.samples)
    write_json(out / name / "metrics.json", scored.metrics)
    entry: dict[str, Any] = {"data": data.source, "scorer": ev.describe(), "generation_stats": stats.to_dict(),
                             "seconds": {"generation": round(t1 - t0, 3), "judging": round(t2 - t1, 3),
                                         "scoring": round(t3 - t2, 3)}}
    if search_info is not None:
        entry["decode"] = {k: v for k, v in search_info.items() if k != "details"}
    elif cfg.decode.strategy != "greedy":
        entry["decode"] = {"strategy": "greedy", "note": f"--decode {cfg.decode.strategy} applies to benchmarks "
                                                         "that score an actor's answers; this one was answered as is"}
    if judge_stats is not None:
        entry["judge"] = {"config": ev.judge.describe(), "generation_stats": judge_stats.to_dict()}
    entry["compute"] = stage_compute("evaluation", t3 - t0, _benchmark_generation(entry).values(),
                                     gpus=local_generation_gpus({cfg.model, cfg.role("judge"), cfg.role("refiner")}))
    writer.record.benchmarks[name] = entry
    writer.save()
    return scored.metrics


def _benchmark_generation(entry: dict) -> dict[str, dict]:
    """A benchmark entry's generation stats by part: the model's answers, the decode strategy's refiner, the judge."""
    parts = {"model": entry.get("generation_stats"), "decode": (entry.get("decode") or {}).get("generation_stats"),
             "judge": (entry.get("judge") or {}).get("generation_stats")}
    return {k: v for k, v in parts.items() if isinstance(v, dict)}


def _record_servers(record: RunRecord, pool: ModelPool) -> None:
    """Stop the run's managed servers now (all generation is done) and say in the record which ran."""
    servers = pool.close_served()
    if servers:
        record.servers = [s["managed_servers"] for s in servers]


def run_eval(cfg: EvalConfig, reporter: Reporter | None = None) -> RunResult:
    """Generate with `cfg.model` on each benchmark (judging with `cfg.judge` where needed) and score."""
    reporter = reporter or SilentReporter()
    benchmarks = cfg.benchmark_names()
    evaluators = {b: cfg.evaluator(b) for b in benchmarks}  # options checked before any model loads
    sources = parse_data(cfg.data, benchmarks)
    out = Path(cfg.output) if cfg.output else default_output(cfg.model.name)
    prepare_output(out, cfg)
    for spec in {cfg.model, cfg.role("judge"), cfg.role("refiner")}:
        spec.check_device()
    gen_cfg = GenerationConfig(SamplingParams(cfg.temperature, cfg.top_p, cfg.max_new_tokens), cfg.seed,
                               cfg.system_prompt or None)
    datasets = {b: evaluators[b].load(sources[b], cfg.limit) for b in benchmarks}
    record = RunRecord("eval", config=to_dict(cfg), cache=str(cache_path(cfg)),
                       extra={"generation": to_dict(gen_cfg)})
    writer = RecordWriter(out / "record.json", record)
    result = RunResult(out, record=record.to_dict())
    with writer.track(), ModelPool(server_logs=out / "servers") as pool:
        cache = GenerationCache(cache_path(cfg))
        try:
            record.models["model"] = describe(pool.get(cfg.model))
            for name in benchmarks:
                result.metrics[name] = _eval_benchmark(name, evaluators[name], datasets[name], cfg, gen_cfg, pool,
                                                       cache, reporter, out, writer)
        finally:
            cache.close()
            _record_servers(record, pool)  # a failed or interrupted run's record says which servers ran, too
        write_json(out / "metrics.json", result.metrics)
    result.record = record.to_dict()
    return result


def run_score(benchmark: str, outputs: str, output: str, cfg: EvalConfig | None = None,
              reporter: Reporter | None = None, fmt: str | None = None, allow_partial: bool = False,
              skip_invalid: bool = False) -> RunResult:
    """Score outputs produced elsewhere (an actor's responses, or a judge's judgments: the benchmark says which);
    same record format as `run_eval`, files directly in `output`. A benchmark that needs a judge calls the judge
    role (through the cache)."""
    reporter = reporter or SilentReporter()
    cfg = cfg or EvalConfig()
    ev = cfg.evaluator(benchmark)
    if fmt is not None and fmt not in ev.formats:
        raise SparError(f"--format {fmt!r}: {benchmark} reads {', '.join(ev.formats)}")
    out = Path(output)
    prepare_output(out, cfg)
    loaded = ev.load(cfg.data or None)
    matched, texts = ev.match_outputs(loaded, outputs, fmt, allow_partial, skip_invalid)
    record = RunRecord("score", config=to_dict(cfg), data=matched.source,
                       extra={"benchmark": benchmark, "outputs": outputs, "scorer": ev.describe(),
                              "format": fmt or "detected", "allow_partial": allow_partial,
                              "skip_invalid": skip_invalid})
    writer = RecordWriter(out / "record.json", record)
    with writer.track(), ModelPool(server_logs=out / "servers") as pool:
        judgments = None
        if ev.needs_judge:
            judge_spec = cfg.role("judge")
            if not judge_spec.name:
                raise SparError(f"spar score {benchmark}: this benchmark needs a judge model (--judge)")
            judge_spec.check_device()
            cache = GenerationCache(cache_path(cfg))
            try:
                judge = pool.get(judge_spec)
                record.models["judge"] = describe(judge)
                record.cache = str(cache_path(cfg))
                judgments, judge_stats = _judge_step(ev, matched, texts, judge, cache, reporter, benchmark)
                record.benchmarks[benchmark] = {"judge": {"config": ev.judge.describe(),
                                                          "generation_stats": judge_stats.to_dict()
                                                          if judge_stats else None}}
            finally:
                cache.close()
                _record_servers(record, pool)
        with reporter.stage(f"score {benchmark}", 1) as advance:
            scored = ev.score(matched, texts, judgments)
            advance(1)
        write_jsonl(out / "samples.jsonl", scored.samples)
        write_json(out / "metrics.json", scored.metrics)
    return RunResult(out, {benchmark: scored.metrics}, record.to_dict())


def checkpoint_evaluator(run_cfg, reporter: Reporter | None = None):
    """The `evaluate` callback of `spar run`: scores an iteration's checkpoint with the same suite as `spar eval`
    (the run's eval settings, the actor's generation spec, the iteration's refiner as judge unless one is set).
    The benchmarks' data and options are checked now, before any training."""
    e, m = run_cfg.eval, run_cfg.models

    def config(model: str, benchmarks: str, output: Path, judge: str) -> EvalConfig:
        names = [b.strip() for b in benchmarks.split(",") if b.strip()]
        data = data_for(e.data, names)
        spec = m.actor.replace(name=model, batch_size=e.batch_size)
        judge_spec = m.refiner.replace(name=judge, batch_size=e.batch_size) if judge else None
        return EvalConfig(model=spec, judge=judge_spec, benchmarks=",".join(names), data=data, limit=e.limit,
                          max_new_tokens=e.max_new_tokens, output=str(output), cache=run_cfg.cache,
                          seed=run_cfg.seed, bench={k: v for k, v in e.bench.items() if k in names},
                          judging=JudgingConfig(votes=e.judge_votes, max_new_tokens=e.judge_max_new_tokens))

    def evaluate(model: str, benchmarks: str, output: Path, judge: str = "") -> dict:
        if not benchmarks:
            return {"skipped": "no benchmarks"}
        result = run_eval(config(model, benchmarks, output, e.judge or judge), reporter)
        stats = {f"{bench} {part}": s for bench, entry in result.record.get("benchmarks", {}).items()
                 for part, s in _benchmark_generation(entry).items()}
        summary = {"model": model, "output": str(result.output), "metrics": result.metrics, "generation_stats": stats}
        if result.record.get("servers"):
            summary["servers"] = result.record["servers"]  # the eval stage's managed servers
        return summary

    for benchmarks in (e.actor_benchmarks, e.refiner_benchmarks):
        if benchmarks:
            cfg = config("unused", benchmarks, Path("unused"), "")
            names = cfg.benchmark_names()
            sources = parse_data(cfg.data, names)
            for name in names:
                cfg.evaluator(name).load(sources[name], 1)
    return evaluate


def run_evolve(cfg: EvalConfig, seeds_source: str, output: str, limit: int | None, temperature: float,
               max_new_tokens: int, reporter: Reporter | None = None) -> dict:
    """`spar prompts evolve`: generation through the harness cache (a killed run resumes), output written
    atomically with a record beside it."""
    from training.evolve import EvolveConfig, evolve
    from training.sources import load_prompts

    reporter = reporter or SilentReporter()
    check_output_dir(Path(output).parent, "--output")
    if Path(output).is_dir():
        raise SparError(f"--output {output}: is a folder; name a .jsonl file")
    check_cache_path(cache_path(cfg))
    seeds, origin = load_prompts(seeds_source)
    seeds = seeds[:limit] if limit else seeds
    ecfg = EvolveConfig(SamplingParams(temperature, 1.0, max_new_tokens), cfg.seed)
    record = RunRecord("prompts evolve", config=to_dict(cfg), cache=str(cache_path(cfg)),
                       extra={"seeds": origin, "sampling": ecfg.sampling.to_dict(), "output": output})
    writer = RecordWriter(Path(output).with_suffix(".record.json"), record)
    with writer.track(), ModelPool() as pool:
        cache = GenerationCache(cache_path(cfg))
        try:
            model = pool.get(cfg.model)
            record.models["model"] = describe(model)
            with reporter.stage("evolve prompts", len(seeds)) as advance:
                records, counts = evolve(seeds, ecfg, lambda reqs: cached_generate(model, reqs, cache, advance)[0])
        finally:
            cache.close()
        write_jsonl(output, records)
        record.extra["counts"] = counts
    return counts
