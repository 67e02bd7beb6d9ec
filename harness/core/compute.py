"""Compute accounting: what a stage of `spar run` (or a benchmark of `spar eval`) spent, in one shape for every stage.

A stage's `compute` entry (documented in results/README.md):

- generation (any stage that called a model): `requests`, `samples`, `prompt_tokens`, `completion_tokens` (the
  samples generated in this run, as the backend counted them), `cached_prompt_tokens`, `cached_completion_tokens`
  (samples read back from the generation cache, counted with the tokens they cost when they were made), and
  `total_completion_tokens` (both: what the stage's data cost, whatever the cache held, the figure methods are
  compared on), `uncounted` (samples whose backend gave no token counts), `generate_seconds` (wall time inside the
  backends);
- training: `trained_tokens_per_epoch` (tokens in the policy's forward passes per epoch), `epochs`,
  `trained_tokens` (per epoch x epochs);
- every stage: `kind` (`generation`: a method's data stage; `training`; `evaluation`: scoring a checkpoint),
  `seconds` (the stage's wall time), `gpus` (CUDA devices the stage held: those this process sees when
  a local backend or in-process training used them, the launcher's processes under `models.train_launcher`, else 0;
  GPUs of remote servers are not known here and not counted) and `gpu_seconds` = seconds x gpus (GPU time *held*,
  busy or not; null without GPUs).
"""

from __future__ import annotations

from typing import Iterable, Mapping

GENERATION_KEYS = ("requests", "samples", "prompt_tokens", "completion_tokens", "cached_prompt_tokens",
                   "cached_completion_tokens", "uncounted", "generate_seconds")


def generation_totals(stats: Iterable[Mapping]) -> dict:
    """The sum of several `GenerationStats.to_dict()` entries, with `total_completion_tokens` (generated now plus
    read from the cache); {} when there are none."""
    stats = [s for s in stats if isinstance(s, Mapping)]
    if not stats:
        return {}
    out: dict = {k: 0 for k in GENERATION_KEYS}
    for s in stats:
        for k in GENERATION_KEYS:
            value = s.get(k)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[k] += value
    out["generate_seconds"] = round(out["generate_seconds"], 3)
    out["total_completion_tokens"] = out["completion_tokens"] + out["cached_completion_tokens"]
    return out


def visible_gpus() -> int:
    """CUDA devices this process sees (what managed servers inherit and a training launcher spreads over), the same
    whether or not anything in this process has loaded torch yet; 0 without CUDA."""
    import torch  # a dependency; imported here so that the count does not depend on what ran before

    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # a broken CUDA setup: count nothing rather than fail the record
        return 0


def stage_compute(kind: str, seconds: float, generation: Iterable[Mapping] = (), training: Mapping | None = None,
                  gpus: int = 0) -> dict:
    """One stage's `compute` entry (see the module docstring)."""
    out: dict = {"kind": kind, **generation_totals(generation)}
    if training:
        per_epoch = training.get("per_epoch")
        epochs = training.get("epochs")
        out["trained_tokens_per_epoch"] = per_epoch
        out["epochs"] = epochs
        out["trained_tokens"] = round(per_epoch * epochs) if isinstance(per_epoch, int) and \
            isinstance(epochs, (int, float)) else None
    out["seconds"] = round(seconds, 3)
    out["gpus"] = gpus
    out["gpu_seconds"] = round(seconds * gpus, 3) if gpus else None
    return out


def local_generation_gpus(specs: Iterable) -> int:
    """GPUs the backends of these model specs hold on this machine (one at a time): hf on CUDA 1, vllm tensor x
    data parallel, managed servers (`serve.command`) the GPUs of their `serve.gpus` groups (all visible ones when
    they inherit); 0 for servers spar does not manage (their GPUs are not known here) and without CUDA."""
    visible = visible_gpus()

    def held(s) -> int:
        serve = getattr(s, "serve", None)
        if serve is not None and getattr(serve, "command", ""):
            groups = serve.gpu_groups()
            return len({d.strip() for g in groups for d in g.split(",") if d.strip()}) if groups else visible
        if not visible:
            return 0
        if s.backend == "hf":
            return 0 if str(s.device).startswith("cpu") else 1
        return s.tensor_parallel_size * s.data_parallel_size if s.backend == "vllm" else 0

    return max((held(s) for s in specs), default=0)


def iteration_compute(stages: Mapping) -> dict:
    """An iteration's compute by kind of stage: {generation, training, evaluation, all}, each a `sum_compute`."""
    entries = [s.get("compute") for s in stages.values() if isinstance(s, Mapping) and
               isinstance(s.get("compute"), Mapping)]
    out = {kind: sum_compute(e for e in entries if e.get("kind") == kind)
           for kind in ("generation", "training", "evaluation")}
    out["all"] = sum_compute(entries)
    return out


def sum_compute(entries: Iterable[Mapping]) -> dict:
    """Totals over several stages' `compute` entries: generated and trained tokens, seconds, GPU-seconds."""
    keys = ("requests", "prompt_tokens", "completion_tokens", "cached_completion_tokens", "total_completion_tokens",
            "trained_tokens", "seconds", "gpu_seconds")
    out: dict = {k: 0 for k in keys}
    for e in entries:
        for k in keys:
            value = e.get(k) if isinstance(e, Mapping) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[k] += value
    out["seconds"] = round(out["seconds"], 3)
    out["gpu_seconds"] = round(out["gpu_seconds"], 3)
    return out


def compute_columns(stages: Mapping) -> dict:
    """The run summary's compute columns of an iteration ({} when its stages hold no compute entries): tokens the
    method's data stages generated (generated now plus read from the cache: what the data cost) and their requests,
    tokens trained, tokens generated to score it, and the wall seconds and GPU-seconds of all its stages."""
    c = iteration_compute(stages)
    if not any(c["all"].values()):
        return {}
    return {"generated_tokens": c["generation"]["total_completion_tokens"],
            "generation_requests": c["generation"]["requests"],
            "trained_tokens": c["training"]["trained_tokens"],
            "eval_generated_tokens": c["evaluation"]["total_completion_tokens"],
            "seconds": c["all"]["seconds"], "gpu_seconds": c["all"]["gpu_seconds"] or None}
