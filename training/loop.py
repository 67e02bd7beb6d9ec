"""`spar run`: a training method's iterations as a resumable pipeline of stages (the method-agnostic driver).

A method (training/methods: SPaR, Self-Rewarding, Meta-Rewarding, ...) supplies its data-building stages; this
driver owns what every method shares: the lineage of the models across iterations, stage state and resume, the
generation cache, the run record, the DPO/SFT trainers and their launcher, and the eval stages. An iteration runs
the method's stages, then `train_actor` (DPO on data/dpo.jsonl), `train_refiner` (methods with a separate refiner:
SFT on data/rft.jsonl), `eval_actor` and `eval_refiner`. Iteration 0 scores the starting actor and refiner with the
same eval stages (once).

results/<experiment>/iter_<t>/ holds each stage's output and `state.json` (finished stages with their summaries);
a restarted run skips finished stages, and inside generation-heavy stages every model call goes through the
content-addressed cache, so a stage killed halfway replays its finished calls from disk. `record.json` is the
iteration record: config, method, models, and what every stage found, trained and scored.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from harness.core.cache import GenerationCache
from harness.core.concurrent import CompletionStream, server_backend, stream_generate
from harness.core.compute import compute_columns, local_generation_gpus, stage_compute, visible_gpus
from harness.core.data import data_for, parse_data, read_jsonl
from harness.core.errors import SparError
from harness.core.generation import GenerationStats, cached_generate, counting_generate
from harness.core.models import resolve_model
from harness.core.paths import cache_dir
from harness.core.progress import Reporter, SilentReporter
from harness.core.records import RecordWriter, RunRecord, clean_stale_temps, dumps, now, write_json, write_jsonl
from harness.core.spec import ModelPool, ModelSpec
from training.config import ABLATIONS, RunConfig, to_dict
from training.methods import EVAL_STAGES, Method, get_method, iteration_stages
from training.sources import load_prompts, load_sft_records
from training.trainers import quiet_progress_bars, train_dpo, train_sft

#: scores a checkpoint: (model path or name, comma-separated benchmarks, output folder, judge) -> stage summary
Evaluate = Callable[[str, str, Path, str], dict]


def run_label(cfg: RunConfig, method: Method) -> str:
    """The row label of tables: the method, with the ablation if any ("SPaR w/o iterative training")."""
    return f"{method.label} {ABLATIONS[cfg.ablation]}" if cfg.ablation else method.label


class IterationRun:
    """One iteration. Method stages receive this object and use: `cfg`, `options` (the method's config), `t`, `dir`
    (iter_<t>/), `prompts` ((key, text) pairs), `actor` / `refiner` / `judge` (the checkpoints going in),
    `iteration_seed`, `reporter`, `generate(model, label)` (a cached `requests -> completions` function with a
    progress line; for a server backend it keeps the servers full through harness.core.concurrent), `counting(model,
    label)` (the same without progress, for callers issuing many calls), `backend(model)`, `stream(model, label)` (a
    harness.core.concurrent.CompletionStream, for callers that submit requests as they go), `write_jsonl(name, rows)`
    and `write_training_data(name, rows)` (data/<name>.jsonl plus a `datasets` folder)."""

    #: the contamination figures of the run's prompts (set by run_experiment; recorded in extra.contamination)
    contamination: dict | None = None
    #: called with ("start" | "end", stage, this run) around each stage that runs, e.g. to read the GPU memory in
    #: use between stages (benchmarks/gpu_serving_check.py); None = nothing
    stage_observer: Callable[[str, str, "IterationRun"], None] | None = None

    def __init__(self, cfg: RunConfig, t: int, actor: str, refiner: str, base_actor: str, base_refiner: str,
                 prompts: list[tuple[str, str]], reporter: Reporter, evaluate: Evaluate | None = None,
                 method: Method | None = None, stages: tuple[str, ...] | None = None):
        self.cfg, self.t, self.reporter, self.evaluate = cfg, t, reporter, evaluate
        self.method = method or get_method(cfg.method)
        self.options = cfg.method_config
        self.actor, self.refiner, self.base_actor, self.base_refiner = actor, refiner, base_actor, base_refiner
        self.prompts = prompts
        self.all_stages = stages or iteration_stages(self.method)
        self.dir = cfg.out / f"iter_{t}"
        self.state_path = self.dir / "state.json"
        self.state: dict = json.loads(self.state_path.read_text()) if self.state_path.exists() else {"stages": {}}
        # one set of local weights in memory at a time; managed servers log to iter_<t>/servers/
        self.pool = ModelPool(one_local=True, server_logs=self.dir / "servers")
        self.cache = GenerationCache(Path(cfg.cache) if cfg.cache else cache_dir() / "generations.sqlite")
        self.gen_stats: dict[str, GenerationStats] = {}  # per stage: generation counts by label
        self.record = RunRecord("run", config=to_dict(cfg), experiment=cfg.experiment, iteration=t,
                                stages=self.state["stages"], cache=str(self.cache.path))
        self.writer = RecordWriter(self.dir / "record.json", self.record)

    @property
    def iteration_seed(self) -> int:
        """The base seed of this iteration's requests and draws."""
        return self.cfg.seed * 1000 + self.t

    @property
    def judge(self) -> str:
        """The model that judges in this iteration: the refiner, or the actor for self-judging methods."""
        return self.actor if self.method.judge == "actor" else self.refiner

    def spec(self, name: str) -> ModelSpec:
        """The generation spec of a checkpoint: the actor's settings for actors, the refiner's for refiners."""
        role = self.cfg.models.refiner if name in (self.refiner, self.base_refiner) and \
            name not in (self.actor, self.base_actor) else self.cfg.models.actor
        return role.replace(name=name)

    # -- plumbing for stages --------------------------------------------------------------------------------------
    def generate(self, spec: str, label: str) -> Callable:
        def call(requests):
            backend = self.pool.get(self.spec(spec))
            # a server is kept full by the concurrent path (answers cached as they arrive); local engines batch
            run_calls = stream_generate if server_backend(backend) else cached_generate
            with self.reporter.stage(f"iter {self.t} {label}", len(requests)) as advance:
                comps, stats = run_calls(backend, requests, self.cache, advance)
            total = self.gen_stats.setdefault(label, GenerationStats())
            total += stats  # in place: the entry in gen_stats grows
            return comps
        return call

    def counting(self, spec: str, label: str) -> Callable:
        return counting_generate(self.pool.get(self.spec(spec)), self.cache,
                                 self.gen_stats.setdefault(label, GenerationStats()))

    def backend(self, spec: str):
        """The open backend of a checkpoint (opened on first use)."""
        return self.pool.get(self.spec(spec))

    def stream(self, spec: str, label: str) -> CompletionStream:
        """A `CompletionStream` on the checkpoint's backend and the cache, counted under `label` (for drivers that
        submit requests as they go, such as the asynchronous tree search); use it in a `with` block."""
        return CompletionStream(self.backend(spec), self.cache, self.gen_stats.setdefault(label, GenerationStats()))

    def write_jsonl(self, name: str, rows) -> None:
        write_jsonl(self.dir / name, rows)

    def write_training_data(self, name: str, rows: list[dict]) -> None:
        """data/<name>.jsonl (what the trainers read) and, when there are rows, a `datasets` copy."""
        from datasets import Dataset

        write_jsonl(self.dir / "data" / f"{name}.jsonl", rows)
        if rows:
            with quiet_progress_bars():  # its "Saving the dataset" bar would break the run's progress lines
                Dataset.from_list(rows).save_to_disk(str(self.dir / "data" / f"{name}_dataset"))

    # -- the pipeline ---------------------------------------------------------------------------------------------
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

    def stages_to_run(self) -> tuple[str, ...]:
        until = self.cfg.until
        if until and until in self.all_stages:
            return self.all_stages[: self.all_stages.index(until) + 1]
        return self.all_stages

    def _run_stages(self) -> None:
        for stage in self.stages_to_run():
            done = self.state["stages"].get(stage)
            if done:
                self.reporter.note(f"iter {self.t}: {stage} already finished, skipped")
                continue
            self.gen_stats = {}
            if self.stage_observer:
                self.stage_observer("start", stage, self)
            started = time.perf_counter()
            fn = self.method.stage(stage) if stage in self.method.stage_names else getattr(self, "stage_" + stage)
            summary = fn(self) if stage in self.method.stage_names else fn()
            servers = self.pool.close_served()  # a stage's managed servers stop with it: no GPU memory held on
            if servers:
                summary.setdefault("servers", []).extend(s["managed_servers"] for s in servers)
            if self.gen_stats:
                summary["generation_stats"] = {k: v.to_dict() for k, v in self.gen_stats.items()}
            summary.update(finished=now(), seconds=round(time.perf_counter() - started, 3))
            summary["compute"] = self._compute(stage, summary)
            self.state["stages"][stage] = summary
            write_json(self.state_path, self.state)
            self._update_record()
            self.writer.save()
            if self.stage_observer:
                self.stage_observer("end", stage, self)
        if self.cfg.until and self.cfg.until in self.all_stages[:-1]:
            self.reporter.note(f"iter {self.t}: stopped after {self.cfg.until} (until={self.cfg.until})")

    def _compute(self, stage: str, summary: dict) -> dict:
        """The stage's `compute` entry (harness/core/compute.py): its generation (this stage's calls, or its evaluation
        run's), its trained tokens, seconds and the GPUs it held."""
        training = summary.get("tokens")
        if training:  # in-process training uses one GPU; under a launcher, one per process
            gpus = (summary.get("processes") or 1) if visible_gpus() else 0
        else:
            gpus = local_generation_gpus((self.cfg.models.actor, self.cfg.models.refiner))
        kind = "evaluation" if stage in EVAL_STAGES else "training" if stage.startswith("train_") else "generation"
        entry = stage_compute(kind, summary["seconds"], (summary.get("generation_stats") or {}).values(), training,
                              gpus)
        batches = [{"model": b.identity, **b.batch.to_dict()} for b in self.pool.backends() if hasattr(b, "batch")]
        if batches:  # the in-process hf backends' batch sizes and how they were chosen (auto: from free memory)
            entry["batch"] = batches
        return entry

    def _checkpoint(self, role: str) -> str | None:
        """The model this iteration hands on for `role` (None while its training stage has not run)."""
        stages = self.state["stages"]
        if role == "actor":
            if "train_actor" not in self.all_stages:
                return self.actor
            return stages.get("train_actor", {}).get("checkpoint")
        if self.method.judge == "actor":
            return self._checkpoint("actor")
        if self.method.trains_refiner and "train_refiner" in self.all_stages:
            return stages.get("train_refiner", {}).get("checkpoint")
        return self.refiner

    def _update_record(self) -> None:
        stages = self.state["stages"]
        complete = all(s in stages for s in self.all_stages)
        self.record.stages = stages
        self.record.extra = {"complete": complete, "until": self.cfg.until or None, "method": self.method.name,
                             "ablation": self.cfg.ablation or None, "label": run_label(self.cfg, self.method),
                             "stages": list(self.all_stages)}
        if self.contamination is not None:
            self.record.extra["contamination"] = self.contamination
        if complete:
            self.record.extra["summary"] = summary_row(self.record.to_dict())
        self.record.models = {"actor_in": self.actor, "refiner_in": self.refiner,
                              "actor_out": self._checkpoint("actor"), "refiner_out": self._checkpoint("refiner"),
                              "dpo_reference": stages.get("train_actor", {}).get("reference"),
                              "judge": self.method.judge,
                              "actor_spec": to_dict(self.cfg.models.actor),
                              "refiner_spec": to_dict(self.cfg.models.refiner)}

    # -- the driver's stages --------------------------------------------------------------------------------------
    def _train(self, kind: str, model: str, records: list[dict], output: Path, ref: str | None = None) -> dict:
        stage_cfg = self.cfg.dpo if kind == "dpo" else self.cfg.rft
        return train_stage(self.cfg.models.train_launcher, kind, "dpo" if kind == "dpo" else "rft", model, records,
                           output, stage_cfg, self.reporter, ref, label=f"iter {self.t} ")

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
        if self.cfg.ablation == "no_refiner_training":
            self.reporter.note(f"iter {self.t}: ablation no_refiner_training: the refiner stays fixed")
            return {"skipped": "ablation no_refiner_training (a fixed refiner)", "checkpoint": self.refiner}
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
            raise SparError("spar run: no evaluator was given for the eval stages (set until to the last training "
                            "stage)")
        self.pool.close()
        return self.evaluate(model, benchmarks, self.dir / "eval" / name, judge)

    def stage_eval_actor(self) -> dict:
        if not self.cfg.eval.actor_benchmarks:
            return {"skipped": "no actor benchmarks"}
        return self._eval(self._checkpoint("actor"), self.cfg.eval.actor_benchmarks, "actor",  # type: ignore[arg-type]
                          judge=self.cfg.eval.judge or self._checkpoint("refiner"))  # type: ignore[arg-type]

    def stage_eval_refiner(self) -> dict:
        if not self.cfg.eval.refiner_benchmarks:
            return {"skipped": "no refiner benchmarks"}
        return self._eval(self._checkpoint("refiner"), self.cfg.eval.refiner_benchmarks,  # type: ignore[arg-type]
                          "refiner")


def train_stage(launcher: str, kind: str, stage: str, model: str, records: list[dict], output: Path, stage_cfg,
                reporter: Reporter, ref: str | None = None, label: str = "") -> dict:
    """One training stage (DPO, or SFT/RFT), in this process or through `models.train_launcher` (e.g. `accelerate
    launch --config_file ...`): every stage, the initial SFT included, goes the same way. Shows one progress line
    with the loss; library output goes to the stage's train.log."""
    if not launcher:
        with reporter.stage(f"{label}train {stage}", 0) as advance:
            def progress(info: dict) -> None:
                loss = info.get("loss")
                advance(0, total=info.get("total"), completed=info.get("step"),
                        status=f"step loss {loss:.4f}" if isinstance(loss, (int, float)) else "")

            if kind == "dpo":
                return train_dpo(model, ref, records, output, stage_cfg, progress=progress)
            return train_sft(model, records, output, stage_cfg, stage=stage, progress=progress)
    spec = output.parent / f"{output.name}.launch.json"
    write_jsonl(spec.with_suffix(".records.jsonl"), records)
    write_json(spec, {"kind": kind, "stage": stage, "model": model, "ref": ref, "output": str(output),
                      "records": str(spec.with_suffix(".records.jsonl")), "config": asdict(stage_cfg)})
    cmd = [*shlex.split(launcher), "-m", "training.launch", str(spec)]
    reporter.note(f"{label}{stage}: {' '.join(cmd)} (log: {output / 'train.log'})")
    if subprocess.run(cmd).returncode != 0:
        raise SparError(f"training launcher failed ({stage}): {' '.join(cmd)}")
    return json.loads((output / "training.json").read_text())


def _brief(summary: dict) -> dict:
    keep = ("train_loss", "steps", "pairs", "records", "loss_terms", "history", "batch", "precision", "logs",
            "targets", "tokens", "processes")
    return {k: summary[k] for k in keep if k in summary}


def init_stage(cfg: RunConfig, reporter: Reporter) -> tuple[str, str]:
    """Optional SFT of the starting actor and refiner (iteration 0); returns the checkpoints iteration 1 starts from."""
    actor, refiner = cfg.models.actor.name, cfg.models.refiner.name
    out = cfg.out / "iter_0"
    for role, source in (("actor", cfg.init.actor_data), ("refiner", cfg.init.refiner_data)):
        if not source:
            continue
        ckpt = out / role
        if not (ckpt / "training.json").exists():
            records, origin = load_sft_records(source, cfg.init.limit)
            reporter.note(f"init: SFT of the {role} on {len(records)} records from {origin}")
            model = str(resolve_model(actor if role == "actor" else refiner).path)
            train_stage(cfg.models.train_launcher, "sft", f"init_{role}", model, records, ckpt, cfg.init.sft,
                        reporter, label="init ")
        if role == "actor":
            actor = str(ckpt)
        else:
            refiner = str(ckpt)
    return actor, refiner


def iteration_prompts(pool: list, t: int, cfg: RunConfig) -> list:
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


def schedule(cfg: RunConfig) -> RunConfig:
    """The iterations actually run: `ablation: no_iterative_training` is one iteration over the prompts that
    `iterations` x `prompts_per_iteration` would use (the training settings stay as they are)."""
    if cfg.ablation != "no_iterative_training":
        return cfg
    return replace(cfg, iterations=1, prompts_per_iteration=cfg.iterations * cfg.prompts_per_iteration)


def check_prompts(cfg: RunConfig) -> list:
    """The prompt pool, checked to hold what the run needs (before any work)."""
    pool, _ = load_prompts(cfg.prompts)
    plan = schedule(cfg)
    iteration_prompts(pool, plan.iterations, plan)
    return pool


def check_contamination(cfg: RunConfig, pool: list, origin: str, reporter: Reporter) -> dict | None:
    """The prompts the run trains on against the prompts of the benchmarks it evaluates (training.contamination,
    `contamination:` in the config): a note when they overlap, every pair in <out>/contamination.jsonl; returns the
    figures for the records (None when the check is off or nothing is evaluated)."""
    from training.contamination import check_prompt_pool, note

    groups = [[b.strip() for b in group.split(",") if b.strip()]
              for group in (cfg.eval.actor_benchmarks, cfg.eval.refiner_benchmarks)]
    names = [b for group in groups for b in group]
    if not cfg.contamination.check or not names:
        return None
    sources = {}  # as each eval stage reads its data
    for group in filter(None, groups):
        sources.update(parse_data(data_for(cfg.eval.data, group), group))
    plan = schedule(cfg)
    used = list(dict.fromkeys(p for t in range(1, plan.iterations + 1) for p in iteration_prompts(pool, t, plan)))
    report = check_prompt_pool(used, names, sources, cfg.contamination, origin, cfg.eval.bench)
    write_jsonl(cfg.out / "contamination.jsonl", [asdict(p) for p in report.pairs])
    line = note(report)
    if line:
        reporter.note(f"{line}; pairs in {cfg.out / 'contamination.jsonl'}")
    for name, why in report.skipped.items():
        reporter.note(f"contamination: {name} not compared ({why})")
    return report.figures()


def iteration_zero(cfg: RunConfig, method: Method, actor: str, refiner: str, reporter: Reporter,
                   evaluate: Evaluate | None) -> dict | None:
    """The starting actor and refiner scored by the iterations' eval stages (iter_0/, once: finished stages are
    skipped on resume); None when `eval.iteration0` is off or `until` stops before the eval stages."""
    stages = iteration_stages(method)
    wanted = stages[: stages.index(cfg.until) + 1] if cfg.until else stages
    evals = tuple(s for s in EVAL_STAGES if s in wanted)
    if not cfg.eval.iteration0 or not evals:
        return None
    if method.judge == "actor":
        refiner = actor
    return IterationRun(cfg, 0, actor, refiner, actor, refiner, [], reporter, evaluate, method, stages=evals).run()


def run_experiment(cfg: RunConfig, reporter: Reporter | None = None, evaluate: Evaluate | None = None
                   ) -> list[dict]:
    """Run (or resume) the iterations; `evaluate` scores each iteration's checkpoints (the harness's suite).
    Returns the iteration records, iteration 0 (the starting models' scores) first when it ran."""
    reporter = reporter or SilentReporter()
    method = get_method(cfg.method)
    plan = schedule(cfg)
    pool, origin = load_prompts(cfg.prompts)
    iteration_prompts(pool, plan.iterations, plan)  # a pool too small for the run fails before any work
    reporter.note(f"method: {run_label(cfg, method)} ({method.name}); stages per iteration: "
                  f"{', '.join(iteration_stages(method))}")
    if cfg.ablation == "no_iterative_training":
        reporter.note(f"ablation no_iterative_training: one iteration over {plan.prompts_per_iteration} prompts "
                      f"(= {cfg.iterations} iterations x {cfg.prompts_per_iteration})")
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
    contamination = check_contamination(cfg, pool, origin, reporter) if evaluate is not None else None
    write_json(previous, {"config": to_dict(cfg), "prompts": origin, "method": method.name,
                          "label": run_label(cfg, method), "written": now(), "contamination": contamination})
    actor, refiner = init_stage(cfg, reporter)
    if method.judge == "actor":
        refiner = actor
    base_actor, base_refiner = actor, refiner
    records = []
    zero = iteration_zero(cfg, method, actor, refiner, reporter, evaluate)
    if zero is not None:
        records.append(zero)
    for t in range(1, plan.iterations + 1):
        prompts = iteration_prompts(pool, t, plan)
        run = IterationRun(cfg, t, actor, refiner, base_actor, base_refiner, prompts, reporter, evaluate, method)
        run.contamination = contamination
        record = run.run()
        records.append(record)
        if not record["extra"]["complete"]:
            break  # stopped early (until=...)
        models = record["models"]
        actor = models["actor_out"] if cfg.lineage.actor_init == "previous" else base_actor
        refiner = models["refiner_out"] if cfg.lineage.refiner_init == "previous" else base_refiner
        if method.judge == "actor":
            refiner = actor
    write_json(cfg.out / "summary.json", [summary_row(r) for r in records if r["extra"]["complete"]])
    return records


def summary_row(record: dict) -> dict:
    """One column of the per-iteration table: the method, its own counts, the losses and the headline scores."""
    from evaluators import get_evaluator

    extra = record.get("extra", {})
    method = get_method(extra.get("method", "spar"))
    s = record["stages"]
    row = {"iteration": record["iteration"], "method": extra.get("label") or method.label}
    if record["iteration"]:
        if method.summary is not None:
            row.update(method.summary(s))
        row["dpo_loss"] = s["train_actor"].get("train_loss")
        if "train_refiner" in s:
            row["rft_loss"] = s["train_refiner"].get("train_loss")
    row.update(compute_columns(s))
    for role in EVAL_STAGES:
        for bench, metrics in s.get(role, {}).get("metrics", {}).items():
            for key in get_evaluator(bench).headline:
                if key in metrics:
                    row[f"{bench}.{key}"] = metrics[key]
            counts = metrics.get("counts") or {}
            if counts.get("no_verdict") and counts.get("judgments"):  # a 0 score made of unreadable judgments
                row[f"{bench}.no_verdict_rate"] = counts["no_verdict"] / counts["judgments"]
    return row
