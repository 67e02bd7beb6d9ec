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
from harness.data import read_jsonl
from harness.errors import SparError
from harness.generation import GenerationStats, cached_generate, counting_generate
from harness.models import resolve_model
from harness.paths import cache_dir
from harness.progress import Reporter, SilentReporter
from harness.records import RecordWriter, RunRecord, clean_stale_temps, dumps, now, write_json, write_jsonl
from harness.spec import ModelPool, ModelSpec
from training.build_data import dpo_pairs, rft_records
from training.collect import CollectedPrompt, collect
from training.config import STAGES, SparRunConfig, to_dict
from training.sources import load_prompts, load_sft_records
from training.trainers import train_dpo, train_sft
from training.tree_search import Root, SearchResult, run_batched, run_sequential, search

#: scores a checkpoint: (model path or name, comma-separated benchmarks, output folder, judge) -> stage summary
Evaluate = Callable[[str, str, Path, str], dict]


class IterationRun:
    def __init__(self, cfg: SparRunConfig, t: int, actor: str, refiner: str, base_actor: str, base_refiner: str,
                 prompts: list[tuple[str, str]], reporter: Reporter, evaluate: Evaluate | None = None):
        self.cfg, self.t, self.reporter, self.evaluate = cfg, t, reporter, evaluate
        self.actor, self.refiner, self.base_actor, self.base_refiner = actor, refiner, base_actor, base_refiner
        self.prompts = prompts
        self.dir = cfg.out / f"iter_{t}"
        self.state_path = self.dir / "state.json"
        self.state: dict = json.loads(self.state_path.read_text()) if self.state_path.exists() else {"stages": {}}
        self.pool = ModelPool(one_local=True)  # one set of local weights in memory at a time
        self.cache = GenerationCache(Path(cfg.cache) if cfg.cache else cache_dir() / "generations.sqlite")
        self.gen_stats: dict[str, GenerationStats] = {}  # per stage: generation counts by label
        self.record = RunRecord("run", config=to_dict(cfg), experiment=cfg.experiment, iteration=t,
                                stages=self.state["stages"], cache=str(self.cache.path))
        self.writer = RecordWriter(self.dir / "record.json", self.record)

    def spec(self, name: str) -> ModelSpec:
        """The generation spec of a checkpoint: the actor's settings for actors, the refiner's for refiners."""
        role = self.cfg.models.refiner if name in (self.refiner, self.base_refiner) and \
            name not in (self.actor, self.base_actor) else self.cfg.models.actor
        return role.replace(name=name)

    # -- plumbing -------------------------------------------------------------------------------------------------
    def generate(self, spec: str, label: str) -> Callable:
        def call(requests):
            with self.reporter.stage(f"iter {self.t} {label}", len(requests)) as advance:
                comps, stats = cached_generate(self.pool.get(self.spec(spec)), requests, self.cache, advance)
            total = self.gen_stats.setdefault(label, GenerationStats())
            total += stats  # in place: the entry in gen_stats grows
            return comps
        return call

    def run(self) -> dict:
        self.dir.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.dir)
        self._update_record()
        try:
            with self.writer.track():
                self._run_stages()
        finally:
            self.pool.close()
            self.cache.close()
        return self.record.to_dict()

    def _run_stages(self) -> None:
        if True:
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
                self._update_record()
                self.writer.save()
            if self.cfg.until and self.cfg.until in STAGES[:-1]:
                self.reporter.note(f"iter {self.t}: stopped after {self.cfg.until} (until={self.cfg.until})")

    def _update_record(self) -> None:
        stages = self.state["stages"]
        self.record.stages = stages
        self.record.extra = {"complete": all(s in stages for s in STAGES), "until": self.cfg.until or None}
        self.record.models = {"actor_in": self.actor, "refiner_in": self.refiner,
                              "actor_out": stages.get("train_actor", {}).get("checkpoint"),
                              "refiner_out": stages.get("train_refiner", {}).get("checkpoint"),
                              "dpo_reference": stages.get("train_actor", {}).get("reference"),
                              "actor_spec": to_dict(self.cfg.models.actor),
                              "refiner_spec": to_dict(self.cfg.models.refiner)}

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

        generate = counting_generate(self.pool.get(self.spec(self.refiner)), self.cache, stats)

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
        self.pool.close()  # free generation weights before training
        self.reporter.note(f"iter {self.t}: DPO on {len(pairs)} pairs")
        summary = self._train("dpo", str(model), pairs, self.dir / "actor", str(ref))
        return {"checkpoint": str(self.dir / "actor"), "reference": ref_spec, **_brief(summary)}

    def stage_train_refiner(self) -> dict:
        records = read_jsonl(self.dir / "data" / "rft.jsonl")
        if not records:
            self.reporter.note(f"iter {self.t}: no RFT records; the refiner is carried over unchanged")
            return {"skipped": "no RFT records", "checkpoint": self.refiner}
        model = resolve_model(self.refiner).path
        self.pool.close()
        self.reporter.note(f"iter {self.t}: RFT on {len(records)} records")
        summary = self._train("sft", str(model), records, self.dir / "refiner")
        return {"checkpoint": str(self.dir / "refiner"), **_brief(summary)}

    def _eval(self, model: str, benchmarks: str, name: str, judge: str = "") -> dict:
        if self.evaluate is None:
            raise SparError("spar run: no evaluator was given for the eval stages (set until=train_refiner)")
        self.pool.close()
        return self.evaluate(model, benchmarks, self.dir / "eval" / name, judge)

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


def iteration_prompts(pool: list, t: int, cfg: SparRunConfig) -> list:
    """Iteration t's slice of the prompt pool: fresh prompts each iteration; running out is an error unless
    `reuse_prompts` (then the pool wraps round)."""
    n = cfg.prompts_per_iteration
    start = (t - 1) * n
    if cfg.iterations * n <= len(pool):
        return pool[start:start + n]
    if not cfg.reuse_prompts:
        raise SparError(f"prompts: the pool has {len(pool)} prompts but {cfg.iterations} iterations x "
                        f"{n} prompts_per_iteration need {cfg.iterations * n}; lower prompts_per_iteration, add "
                        "prompts, or set reuse_prompts: true")
    start %= len(pool)
    return (pool[start:] + pool[:start])[: min(n, len(pool))]


def check_prompts(cfg: SparRunConfig) -> list:
    """The prompt pool, checked to hold what the run needs (before any work)."""
    pool, _ = load_prompts(cfg.prompts)
    iteration_prompts(pool, cfg.iterations, cfg)
    return pool


def run_experiment(cfg: SparRunConfig, reporter: Reporter | None = None, evaluate: Evaluate | None = None
                   ) -> list[dict]:
    """Run (or resume) the iterations; `evaluate` scores each iteration's checkpoints (the harness's suite)."""
    reporter = reporter or SilentReporter()
    pool, origin = load_prompts(cfg.prompts)
    iteration_prompts(pool, cfg.iterations, cfg)  # a pool too small for the run fails before any work
    if not (cfg.init.actor_data or cfg.init.refiner_data):
        reporter.note("init: no initialisation data (init.actor_data / init.refiner_data): iteration 1 starts from "
                      "the models as given")
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
    for t in range(1, cfg.iterations + 1):
        prompts = iteration_prompts(pool, t, cfg)
        run = IterationRun(cfg, t, actor, refiner, base_actor, base_refiner, prompts, reporter, evaluate)
        record = run.run()
        records.append(record)
        if not record["extra"]["complete"]:
            break  # stopped early (until=...)
        stages = record["stages"]
        next_actor, next_refiner = stages["train_actor"]["checkpoint"], stages["train_refiner"]["checkpoint"]
        actor = next_actor if cfg.lineage.actor_init == "previous" else base_actor
        refiner = next_refiner if cfg.lineage.refiner_init == "previous" else base_refiner
    write_json(cfg.out / "summary.json", [summary_row(r) for r in records if r["extra"]["complete"]])
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

