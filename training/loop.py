"""`spar run`: SPaR iterations as a resumable pipeline of stages.

results/<experiment>/iter_<t>/ holds each stage's output and `state.json` (finished stages with their summaries);
a restarted run skips finished stages, and inside generation-heavy stages every model call goes through the
content-addressed cache, so a stage killed halfway replays its finished calls from disk. `record.json` is the
iteration record: config, models, and what every stage found, trained and scored.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from harness.cache import GenerationCache
from harness.config import EvalConfig
from harness.data import read_jsonl
from harness.errors import SparError
from harness.generation import GenerationStats, cached_generate, counting_generate
from harness.models import resolve_model
from harness.paths import cache_dir
from harness.progress import Reporter, SilentReporter
from harness.records import dumps, environment, now, write_json, write_jsonl
from harness.suite import make_model_backend, run_eval
from training.build_data import dpo_pairs, rft_records
from training.collect import CollectedPrompt, collect
from training.config import STAGES, SparRunConfig, to_dict
from training.sources import load_prompts, load_sft_records
from training.trainers import train_dpo, train_sft
from training.tree_search import Root, SearchResult, run_batched, run_sequential, search



class Backends:
    """Generation backends for the actor and the refiner, shared when they are the same checkpoint."""

    def __init__(self, cfg: SparRunConfig):
        self.cfg = cfg
        self._open: dict[str, object] = {}

    def get(self, spec: str):
        if spec not in self._open and self.cfg.models.backend != "openai":
            self.close()  # one set of local weights in memory at a time (vLLM engines would not fit side by side)
        if spec not in self._open:
            m = self.cfg.models
            ecfg = EvalConfig(model=spec, backend=m.backend, base_url=m.base_url, batch_size=m.batch_size,
                              dtype=m.dtype, device=m.device, tensor_parallel_size=m.tensor_parallel_size)
            self._open[spec] = make_model_backend(ecfg, spec, m.backend, m.base_url)
        return self._open[spec]

    def close(self) -> None:
        for backend in self._open.values():
            backend.close()
        self._open.clear()


class IterationRun:
    def __init__(self, cfg: SparRunConfig, t: int, actor: str, refiner: str, base_actor: str, base_refiner: str,
                 prompts: list[tuple[str, str]], reporter: Reporter):
        self.cfg, self.t, self.reporter = cfg, t, reporter
        self.actor, self.refiner, self.base_actor, self.base_refiner = actor, refiner, base_actor, base_refiner
        self.prompts = prompts
        self.dir = cfg.out / f"iter_{t}"
        self.state_path = self.dir / "state.json"
        self.state: dict = json.loads(self.state_path.read_text()) if self.state_path.exists() else {"stages": {}}
        self.backends = Backends(cfg)
        self.cache = GenerationCache(Path(cfg.cache) if cfg.cache else cache_dir() / "generations.sqlite")
        self.gen_stats: dict[str, GenerationStats] = {}  # per stage: generation counts by label

    # -- plumbing -------------------------------------------------------------------------------------------------
    def generate(self, spec: str, label: str) -> Callable:
        def call(requests):
            with self.reporter.stage(f"iter {self.t} {label}", len(requests)) as advance:
                comps, stats = cached_generate(self.backends.get(spec), requests, self.cache, advance)
            total = self.gen_stats.setdefault(label, GenerationStats())
            total += stats  # in place: the entry in gen_stats grows
            return comps
        return call

    def run(self) -> dict:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            for stage in STAGES[: STAGES.index(self.cfg.until) + 1] if self.cfg.until else STAGES:
                done = self.state["stages"].get(stage)
                if done:
                    self.reporter.note(f"iter {self.t}: {stage} already finished, skipped")
                    continue
                self.gen_stats: dict[str, GenerationStats] = {}
                started = time.perf_counter()
                summary = getattr(self, "stage_" + stage)()
                if self.gen_stats:
                    summary["generation_stats"] = {k: v.to_dict() for k, v in self.gen_stats.items()}
                summary.update(finished=now(), seconds=round(time.perf_counter() - started, 3))
                self.state["stages"][stage] = summary
                write_json(self.state_path, self.state)
                self.write_record()
            if self.cfg.until and self.cfg.until in STAGES[:-1]:
                self.reporter.note(f"iter {self.t}: stopped after {self.cfg.until} (until={self.cfg.until})")
        finally:
            self.backends.close()
            self.cache.close()
        return self.write_record()

    def write_record(self) -> dict:
        stages = self.state["stages"]
        record = {"experiment": self.cfg.experiment, "iteration": self.t, "config": to_dict(self.cfg),
                  "models": {"actor_in": self.actor, "refiner_in": self.refiner,
                             "actor_out": stages.get("train_actor", {}).get("checkpoint"),
                             "refiner_out": stages.get("train_refiner", {}).get("checkpoint"),
                             "dpo_reference": stages.get("train_actor", {}).get("reference")},
                  "stages": stages, "status": "finished" if all(s in stages for s in STAGES) else "running",
                  "environment": environment(), "written": now()}
        write_json(self.dir / "record.json", record)
        return record

    # -- stages ---------------------------------------------------------------------------------------------------
    def stage_collect(self) -> dict:
        cfg = self.cfg
        collected, stats = collect(self.prompts, replace(cfg.collect, seed=cfg.seed * 1000 + self.t),
                                   self.generate(self.actor, "actor samples"),
                                   self.generate(self.refiner, "refiner judgments"))
        write_jsonl(self.dir / "collected.jsonl", [c.to_dict() for c in collected])
        return asdict(stats)

    def _collected(self) -> list[CollectedPrompt]:
        return [CollectedPrompt.from_dict(d) for d in read_jsonl(self.dir / "collected.jsonl")]

    @staticmethod
    def _roots(collected: list[CollectedPrompt]) -> list[Root]:
        return [Root(f"{c.key}#{i}", c.prompt, c.responses[i].response, c.responses[i].critique or "")
                for c in collected for i in c.negatives]

    def stage_search(self) -> dict:
        cfg = self.cfg
        roots = self._roots(self._collected())
        scfg = replace(cfg.search, seed=cfg.seed * 1000 + self.t)
        driver = run_batched if cfg.search_driver == "batched" else run_sequential
        stats = self.gen_stats.setdefault("tree search", GenerationStats())

        generate = counting_generate(self.backends.get(self.refiner), self.cache, stats)

        with self.reporter.stage(f"iter {self.t} tree search ({len(roots)} trees)", len(roots)) as advance:
            done = [0]

            def on_step(_requests: int, finished: int) -> None:
                advance(finished - done[0])
                done[0] = finished

            results = driver([search(root, scfg) for root in roots], generate, on_step)
        write_jsonl(self.dir / "searches.jsonl", [r.to_dict() for r in results])
        passed = sum(r.passed for r in results)
        return {"searches": len(results), "passed": passed, "failed": len(results) - passed,
                "refinements": sum(r.refinements for r in results),
                "refine_failures": sum(r.refine_failures for r in results),
                "dropped_ties": sum(r.dropped_ties for r in results),
                "unparseable_judgments": sum(r.invalid_judgments for r in results),
                "driver": cfg.search_driver}

    def stage_data(self) -> dict:
        from datasets import Dataset

        collected = self._collected()
        results = [SearchResult.from_dict(d) for d in read_jsonl(self.dir / "searches.jsonl")]
        roots = {r.key: r.response for r in self._roots(collected)}
        pairs = dpo_pairs(results, roots)
        records, counts = rft_records(collected, results, replace(self.cfg.data, seed=self.cfg.seed * 1000 + self.t))
        write_jsonl(self.dir / "data" / "dpo.jsonl", pairs)
        write_jsonl(self.dir / "data" / "rft.jsonl", records)
        for name, rows in (("dpo", pairs), ("rft", records)):
            if rows:
                Dataset.from_list(rows).save_to_disk(str(self.dir / "data" / f"{name}_dataset"))
        return {"dpo_pairs": len(pairs), "rft_records": len(records), "rft_by_source": counts}

    def _train(self, kind: str, model: str, records: list[dict], output: Path, ref: str | None = None) -> dict:
        """In process, or through `models.train_launcher` (e.g. `accelerate launch --config_file ...`)."""
        launcher = self.cfg.models.train_launcher
        if not launcher:
            if kind == "dpo":
                return train_dpo(model, ref, records, output, self.cfg.dpo)
            return train_sft(model, records, output, self.cfg.rft, stage="rft")
        spec = output.parent / f"{output.name}.launch.json"
        stage_cfg = self.cfg.dpo if kind == "dpo" else self.cfg.rft
        write_jsonl(spec.with_suffix(".records.jsonl"), records)
        write_json(spec, {"kind": kind, "model": model, "ref": ref, "output": str(output),
                          "records": str(spec.with_suffix(".records.jsonl")), "config": asdict(stage_cfg)})
        cmd = [*shlex.split(launcher), "-m", "training.launch", str(spec)]
        self.reporter.note(f"iter {self.t}: {' '.join(cmd)}")
        if subprocess.run(cmd).returncode != 0:
            raise SparError(f"training launcher failed: {' '.join(cmd)}")
        return json.loads((output / "training.json").read_text())

    def stage_train_actor(self) -> dict:
        pairs = read_jsonl(self.dir / "data" / "dpo.jsonl")
        ref_spec = self.actor if self.cfg.lineage.dpo_reference == "previous" else self.base_actor
        if not pairs:
            self.reporter.note(f"iter {self.t}: no preference pairs; the actor is carried over unchanged")
            return {"skipped": "no preference pairs", "checkpoint": self.actor, "reference": None}
        model, ref = resolve_model(self.actor).path, resolve_model(ref_spec).path
        self.backends.close()  # free generation weights before training
        self.reporter.note(f"iter {self.t}: DPO on {len(pairs)} pairs")
        summary = self._train("dpo", str(model), pairs, self.dir / "actor", str(ref))
        return {"checkpoint": str(self.dir / "actor"), "reference": ref_spec, **_brief(summary)}

    def stage_train_refiner(self) -> dict:
        records = read_jsonl(self.dir / "data" / "rft.jsonl")
        if not records:
            self.reporter.note(f"iter {self.t}: no RFT records; the refiner is carried over unchanged")
            return {"skipped": "no RFT records", "checkpoint": self.refiner}
        model = resolve_model(self.refiner).path
        self.backends.close()
        self.reporter.note(f"iter {self.t}: RFT on {len(records)} records")
        summary = self._train("sft", str(model), records, self.dir / "refiner")
        return {"checkpoint": str(self.dir / "refiner"), **_brief(summary)}

    def _eval(self, model: str, benchmarks: str, name: str, judge: str = "") -> dict:
        e = self.cfg.eval
        m = self.cfg.models
        names = [b.strip() for b in benchmarks.split(",") if b.strip()]
        data = ",".join(part for part in e.data.split(",") if part.partition("=")[0].strip() in names) \
            if "=" in e.data else e.data
        ecfg = EvalConfig(model=model, backend=m.backend, base_url=m.base_url, benchmarks=",".join(names), data=data,
                          limit=e.limit, max_new_tokens=e.max_new_tokens, batch_size=e.batch_size, dtype=m.dtype,
                          device=m.device, output=str(self.dir / "eval" / name), cache=self.cfg.cache,
                          tensor_parallel_size=m.tensor_parallel_size,
                          judge=judge, judge_max_new_tokens=e.judge_max_new_tokens, judge_votes=e.judge_votes,
                          llmbar_protocol=e.llmbar_protocol, seed=self.cfg.seed)
        result = run_eval(ecfg, self.reporter)
        return {"model": model, "output": str(result.output), "metrics": result.metrics}

    def stage_eval_actor(self) -> dict:
        if not self.cfg.eval.actor_benchmarks:
            return {"skipped": "no actor benchmarks"}
        stages = self.state["stages"]
        refiner = stages["train_refiner"]["checkpoint"]
        return self._eval(stages["train_actor"]["checkpoint"], self.cfg.eval.actor_benchmarks, "actor",
                          judge=self.cfg.eval.judge or refiner)

    def stage_eval_refiner(self) -> dict:
        if not self.cfg.eval.refiner_benchmarks:
            return {"skipped": "no refiner benchmarks"}
        return self._eval(self.state["stages"]["train_refiner"]["checkpoint"], self.cfg.eval.refiner_benchmarks,
                          "refiner")


def _brief(summary: dict) -> dict:
    keep = ("train_loss", "steps", "pairs", "records", "loss_terms", "history")
    return {k: summary[k] for k in keep if k in summary}


def check_eval_data(cfg: SparRunConfig) -> None:
    """Fail before any training when a benchmark that scores the checkpoints has no data."""
    from evaluators import get_evaluator
    from harness.suite import parse_data

    e = cfg.eval
    names = [b for spec in (e.actor_benchmarks, e.refiner_benchmarks) for b in spec.split(",") if b.strip()]
    sources = parse_data(e.data, names) if names else {}
    for name in names:
        get_evaluator(name.strip()).load(sources.get(name), 1)


def init_stage(cfg: SparRunConfig, reporter: Reporter) -> tuple[str, str]:
    """Optional SFT of the starting actor and refiner (iteration 0); returns the checkpoints iteration 1 starts from."""
    actor, refiner = cfg.models.actor, cfg.models.refiner
    out = cfg.out / "iter_0"
    for role, source in (("actor", cfg.init.actor_data), ("refiner", cfg.init.refiner_data)):
        if not source:
            continue
        ckpt = out / role
        if not (ckpt / "training.json").exists():
            records, origin = load_sft_records(source, cfg.init.limit)
            reporter.note(f"init: SFT of the {role} on {len(records)} records from {origin}")
            train_sft(str(resolve_model(actor if role == "actor" else refiner).path), records, ckpt, cfg.init.sft,
                      stage=f"init_{role}")
        if role == "actor":
            actor = str(ckpt)
        else:
            refiner = str(ckpt)
    return actor, refiner


def run_experiment(cfg: SparRunConfig, reporter: Reporter | None = None) -> list[dict]:
    reporter = reporter or SilentReporter()
    if cfg.iterations < 1:
        raise SparError("iterations must be at least 1")
    pool, origin = load_prompts(cfg.prompts)
    check_eval_data(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    previous = cfg.out / "config.json"
    if previous.exists():
        old = json.loads(previous.read_text()).get("config", {})
        current = json.loads(dumps(to_dict(cfg)))
        changed = sorted(k for k, v in current.items() if old.get(k) != v)
        if changed:
            reporter.note(f"config changed since this experiment started ({', '.join(changed)}): finished stages "
                          "are kept as they are; use a new output folder to redo them")
    write_json(previous, {"config": to_dict(cfg), "prompts": origin, "written": now()})
    actor, refiner = init_stage(cfg, reporter)
    base_actor, base_refiner = actor, refiner
    records = []
    n = cfg.prompts_per_iteration
    for t in range(1, cfg.iterations + 1):
        # each iteration takes a fresh slice of the pool (wrapping round when it is exhausted)
        start = ((t - 1) * n) % len(pool)
        prompts = (pool[start:] + pool[:start])[: min(n, len(pool))]
        run = IterationRun(cfg, t, actor, refiner, base_actor, base_refiner, prompts, reporter)
        record = run.run()
        records.append(record)
        if record["status"] != "finished":
            break  # stopped early (until=...)
        stages = record["stages"]
        next_actor, next_refiner = stages["train_actor"]["checkpoint"], stages["train_refiner"]["checkpoint"]
        actor = next_actor if cfg.lineage.actor_init == "previous" else base_actor
        refiner = next_refiner if cfg.lineage.refiner_init == "previous" else base_refiner
    write_json(cfg.out / "summary.json", [summary_row(r) for r in records if r["status"] == "finished"])
    return records


def summary_row(record: dict) -> dict:
    from evaluators import get_evaluator

    s = record["stages"]
    row = {"iteration": record["iteration"], "negatives": s["collect"]["negatives"],
           "searches_passed": s["search"]["passed"], "searches_failed": s["search"]["failed"],
           "dpo_pairs": s["data"]["dpo_pairs"], "rft_records": s["data"]["rft_records"],
           "dpo_loss": s["train_actor"].get("train_loss"), "rft_loss": s["train_refiner"].get("train_loss")}
    for role in ("eval_actor", "eval_refiner"):
        for bench, metrics in s[role].get("metrics", {}).items():
            for key in get_evaluator(bench).headline:
                if key in metrics:
                    row[f"{bench}.{key}"] = metrics[key]
    return row

