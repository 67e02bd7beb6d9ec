"""Training stages on TRL: actor DPO + weighted SFT on the chosen response, and SFT for refiner RFT and the
initialisation stages. One config dataclass per stage (defaults from the official LLaMA-Factory configs).

The SFT term of SPaR's DPO is LLaMA-Factory's `pref_ftx`: per pair, the chosen response's summed NLL divided by its
token count, then averaged over pairs (`sft_normalization="sequence"`, the default). TRL's own `"sft"` loss term is
a token mean over the micro-batch (`"token"`); the two agree only when chosen lengths are equal.

Precision: the trained model is always loaded in float32 (master weights), whatever dtype the checkpoint is stored
in, and computes under bf16 autocast where the hardware has it (or DeepSpeed's bf16 mixed precision under a
launcher); the saved checkpoint is cast back to the input's stored dtype. Training a bf16 copy in bf16 loses the
updates: at lr 2e-6 most of them are below half a bf16 ulp and round to zero.

Batch: a stage names its global batch; gradient accumulation = global / (per-device batch x processes).

Logs: `<output>/log_history.jsonl` (one line per logged step: step, epoch, loss, learning rate, and for DPO the
reward and loss terms TRL logs), `<output>/train.log` (library warnings, progress and raw per-step dicts, never the
terminal), `<output>/training.json` (the summary returned by `train_dpo` / `train_sft`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

from harness.core.errors import SparError
from harness.core.options import (FieldError, Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, option, options)
from harness.core.records import write_json

SFT_NORMALIZATIONS = ("sequence", "token")
TRAIN_ON = ("all_assistant_turns", "last_turn")
Scheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                    "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay"]
Progress = Callable[[dict], None]
LOG_HISTORY, TRAIN_LOG, SUMMARY = "log_history.jsonl", "train.log", "training.json"
_LIBRARY_LOGGERS = ("transformers", "trl", "accelerate", "datasets", "torch", "deepspeed", "huggingface_hub",
                    "py.warnings", "spar.training")
log = logging.getLogger("spar.training")


REPORT_TO = ("none", "all", "azure_ml", "clearml", "codecarbon", "comet_ml", "dagshub", "dvclive", "flyte", "kubeflow",
             "mlflow", "neptune", "swanlab", "tensorboard", "trackio", "wandb")  # transformers' integrations


def _check_stage(cfg) -> None:
    """Cross-field checks at config time (a world size is only known at launch: see `batch_plan`)."""
    if cfg.global_batch_size % cfg.per_device_train_batch_size:
        raise FieldError("global_batch_size", f"{cfg.global_batch_size} is not a multiple of "
                                              f"per_device_train_batch_size {cfg.per_device_train_batch_size}")
    unknown = [r for r in _report_to(cfg.report_to) if r not in REPORT_TO]
    if unknown:
        raise SparError(f"report_to {unknown[0]!r}: choose from {', '.join(REPORT_TO)} (comma-separated)")


def _report_to(value: str) -> list[str]:
    return [r.strip() for r in value.split(",") if r.strip() and r.strip() != "none"]


@options
class DPOStageConfig:
    """Actor DPO (official `src/configs/dpo.yaml`: beta 0.1, pref_ftx 0.1, lr 2e-7, 1 epoch, linear, warmup 0.1,
    batch 2 x accum 2 on 8 GPUs = 32, cutoff 2048, bf16)."""

    beta: PositiveFloat = option(0.1, "DPO beta (pref_beta)")
    sft_weight: NonNegativeFloat = option(0.1, "weight of the SFT term on the chosen response (pref_ftx)")
    sft_normalization: Literal["sequence", "token"] = option(
        "sequence", "sequence: per-pair mean NLL averaged over pairs (LLaMA-Factory); token: TRL's token mean")
    learning_rate: PositiveFloat = option(2e-7, "peak learning rate")
    num_train_epochs: PositiveFloat = option(1.0, "epochs over the pairs")
    lr_scheduler_type: Scheduler = option("linear", "learning-rate schedule (transformers SchedulerType)")
    warmup_ratio: Fraction = option(0.1, "fraction of the steps spent warming up")
    global_batch_size: PositiveInt = option(32, "pairs per optimizer step over all processes (paper: 2 x 2 x 8 GPUs)")
    per_device_train_batch_size: PositiveInt = option(2, "pairs per forward pass per process; gradient "
                                                         "accumulation = global / (per-device x processes)")
    max_length: PositiveInt = option(2048, "token cutoff of prompt + response (cutoff_len)")
    bf16: bool | None = option(None, "bf16 autocast over float32 master weights; null: where CUDA has bf16")
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass (saves memory)")
    logging_steps: PositiveInt = option(1, "log loss and learning rate every N optimizer steps")
    report_to: str = option("none", "TRL/transformers report_to: none, or e.g. tensorboard, wandb (comma-separated)")
    seed: int = option(0, "training seed (data order, dropout)")

    def __post_init__(self) -> None:
        _check_stage(self)


@options
class SFTStageConfig:
    """SFT / RFT (official `src/configs/sft.yaml`: lr 2e-6, 5 epochs, constant_with_warmup 0.1, batch 2 x accum 4 on
    8 GPUs = 64, cutoff 4096, bf16). Targets: every assistant turn (LLaMA-Factory's default) or the last only."""

    learning_rate: PositiveFloat = option(2e-6, "peak learning rate")
    num_train_epochs: PositiveFloat = option(5.0, "epochs over the records")
    lr_scheduler_type: Scheduler = option("constant_with_warmup", "learning-rate schedule (transformers SchedulerType)")
    warmup_ratio: Fraction = option(0.1, "fraction of the steps spent warming up")
    global_batch_size: PositiveInt = option(64, "records per optimizer step over all processes (paper: 2 x 4 x 8)")
    per_device_train_batch_size: PositiveInt = option(2, "records per forward pass per process; gradient "
                                                         "accumulation = global / (per-device x processes)")
    max_length: PositiveInt = option(4096, "token cutoff of a record (cutoff_len)")
    train_on: Literal["all_assistant_turns", "last_turn"] = option(
        "all_assistant_turns", "loss targets: every assistant turn of a record (the official LLaMA-Factory setup, "
                               "e.g. critique and refinement of an RFT record) or only the last turn")
    bf16: bool | None = option(None, "bf16 autocast over float32 master weights; null: where CUDA has bf16")
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass (saves memory)")
    logging_steps: PositiveInt = option(1, "log loss and learning rate every N optimizer steps")
    report_to: str = option("none", "TRL/transformers report_to: none, or e.g. tensorboard, wandb (comma-separated)")
    seed: int = option(0, "training seed (data order, dropout)")

    def __post_init__(self) -> None:
        _check_stage(self)


# -- batch, precision -----------------------------------------------------------------------------------------------
def world_size() -> int:
    """Training processes: WORLD_SIZE as set by accelerate / torchrun, else 1."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def batch_plan(cfg, where: str, processes: int | None = None) -> dict:
    """The global batch as per-device batch x processes x accumulation, or a one-line SparError."""
    world = processes or world_size()
    g, p = cfg.global_batch_size, cfg.per_device_train_batch_size
    if g % (p * world):
        raise SparError(f"{where}.global_batch_size {g} is not a multiple of per_device_train_batch_size {p} x "
                        f"{world} process{'es' if world != 1 else ''}")
    return {"global_batch_size": g, "per_device_train_batch_size": p, "gradient_accumulation_steps": g // (p * world),
            "world_size": world}


def _where(stage: str) -> str:
    return "init.sft" if stage.startswith("init") else stage


_SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64",
                       "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def _safetensors_dtypes(path: Path) -> dict[str, int]:
    """Floating dtype -> element count, read from a safetensors header (no tensor data is loaded)."""
    counts: dict[str, int] = {}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    for name, info in header.items():
        if name != "__metadata__" and info.get("dtype") in _SAFETENSORS_DTYPES:
            n = 1
            for d in info.get("shape", []):
                n *= d
            key = _SAFETENSORS_DTYPES[info["dtype"]]
            counts[key] = counts.get(key, 0) + n
    return counts


def stored_dtype(model_path: str | Path) -> str:
    """The dtype a checkpoint's floating weights are stored in (the safetensors headers; else config.json's dtype;
    else float32)."""
    path = Path(model_path)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    counts: dict[str, int] = {}
    for file in files:
        for dtype, n in _safetensors_dtypes(file).items():
            counts[dtype] = counts.get(dtype, 0) + n
    if counts:
        return max(counts, key=counts.get)
    config = path / "config.json"
    if config.is_file():
        data = json.loads(config.read_text(encoding="utf-8"))
        dtype = data.get("dtype") or data.get("torch_dtype")
    elif not path.exists():  # a hub id: its config (from the local cache when offline)
        from transformers import AutoConfig

        try:
            dtype = str(getattr(AutoConfig.from_pretrained(str(model_path)), "dtype", None) or "")
        except (OSError, ValueError):
            dtype = None
    else:
        dtype = None
    dtype = dtype.replace("torch.", "") if isinstance(dtype, str) else None
    return dtype if dtype and dtype != "auto" else "float32"


def _use_bf16(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _load_float32(path: str):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _checkpointing_arg() -> str:
    """transformers 5.24 renamed TrainingArguments.gradient_checkpointing (5.20, what the [vllm] extra resolves to)
    to activation_checkpointing; use the name this version has."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def _common_args(cfg, output: Path, plan: dict) -> dict:
    import torch

    report = _report_to(cfg.report_to)
    # use_cpu lets accelerate form a gloo process group when several CPU processes are launched (tests, CI)
    return dict(use_cpu=not torch.cuda.is_available(), output_dir=str(output / "trainer"),
                learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
                lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio,
                per_device_train_batch_size=cfg.per_device_train_batch_size,
                gradient_accumulation_steps=plan["gradient_accumulation_steps"], max_length=cfg.max_length,
                bf16=_use_bf16(cfg.bf16), **{_checkpointing_arg(): cfg.gradient_checkpointing},
                logging_steps=cfg.logging_steps, seed=cfg.seed, save_strategy="no", report_to=report,
                disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False,
                ddp_find_unused_parameters=False)  # LLaMA-Factory's default for dense models


# -- DPO ------------------------------------------------------------------------------------------------------------
def _trl_dpo_trainer_class():
    from trl import DPOTrainer

    class SparDPOTrainer(DPOTrainer):
        """DPOTrainer plus the per-sequence normalised SFT term on the chosen half (LLaMA-Factory's `pref_ftx`).

        The policy's per-token log-probs come from TRL's own forward (captured by a hook), so the term costs no
        extra forward pass."""

        def __init__(self, *args, sequence_sft_weight: float = 0.0, **kwargs):
            super().__init__(*args, **kwargs)
            self.sequence_sft_weight = sequence_sft_weight

        def _compute_loss(self, model, inputs, return_outputs):
            if not self.sequence_sft_weight:
                return super()._compute_loss(model, inputs, return_outputs)
            captured = []
            module = self.accelerator.unwrap_model(model)
            handle = module.register_forward_hook(lambda _m, _a, out: captured.append(out) if not captured else None)
            try:
                result = super()._compute_loss(model, inputs, return_outputs)
            finally:
                handle.remove()
            loss = result[0] if return_outputs else result
            nll = sequence_nll(captured[0].log_probs, inputs["completion_mask"])
            mode = "train" if self.model.training else "eval"
            gathered = self.accelerator.gather_for_metrics(nll.detach().mean())
            self._metrics[mode]["sft_loss"].append(gathered.mean().item())
            loss = loss + self.sequence_sft_weight * nll.mean()
            return (loss, result[1]) if return_outputs else loss

    return SparDPOTrainer


def sequence_nll(log_probs, completion_mask):
    """Per chosen sequence: -(sum of completion-token log-probs) / (completion tokens). The batch is
    [chosen..., rejected...] as TRL collates it; `log_probs` are shifted (length seq-1)."""
    mask = completion_mask[..., 1:]
    lp = log_probs[:, -mask.size(1):]
    chosen_lp, _ = lp.chunk(2, dim=0)
    chosen_mask, _ = mask.chunk(2, dim=0)
    return -(chosen_lp * chosen_mask).sum(dim=1) / chosen_mask.sum(dim=1).clamp(min=1)


def dpo_trainer(model_path: str, ref_path: str | None, records: Sequence[dict], output: Path, cfg: DPOStageConfig,
                stage: str = "dpo"):
    """A configured trainer (exposed for tests that check the loss on a toy batch). The policy (and a distinct
    reference) are loaded in float32."""
    from datasets import Dataset
    from trl import DPOConfig

    plan = batch_plan(cfg, _where(stage))
    token_sft = cfg.sft_normalization == "token" and cfg.sft_weight > 0
    # the arguments come first: under DeepSpeed ZeRO-3 they make from_pretrained load the weights partitioned
    args = DPOConfig(beta=cfg.beta, loss_type=["sigmoid", "sft"] if token_sft else ["sigmoid"],
                     loss_weights=[1.0, cfg.sft_weight] if token_sft else [1.0],
                     **_common_args(cfg, Path(output), plan))
    tokenizer = _tokenizer(model_path)
    model = _load_float32(model_path)
    ref = _load_float32(ref_path) if ref_path and ref_path != model_path else None
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in records])
    cls = _trl_dpo_trainer_class()
    trainer = cls(model=model, ref_model=ref, args=args, train_dataset=dataset, processing_class=tokenizer,
                  sequence_sft_weight=cfg.sft_weight if cfg.sft_normalization == "sequence" else 0.0)
    trainer.spar_batch = plan
    return trainer


# -- SFT ------------------------------------------------------------------------------------------------------------
def _chat_ids(tokenizer, messages: Sequence[dict], generation_prompt: bool) -> list[int]:
    if not messages:
        return []
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def sft_example(tokenizer, record: dict, train_on: str = "all_assistant_turns") -> dict:
    """Token ids and labels of one chat record (`prompt` + `completion` turns, or `messages`): each token of a
    target assistant turn, as the chat template renders it (its content and end-of-turn tokens), is a label once;
    everything else (system, user turns, the `<assistant>` header) is -100. The span of turn k is what the template
    adds between `turns[:k]` + generation prompt and `turns[:k+1]`, located in the full conversation's ids."""
    messages = list(record["messages"]) if "messages" in record else list(record["prompt"]) + list(record["completion"])
    full = _chat_ids(tokenizer, messages, False)
    assistant = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
    targets = assistant if train_on == "all_assistant_turns" else assistant[-1:]
    labels = [-100] * len(full)
    for k in targets:
        start = _common_prefix(_chat_ids(tokenizer, messages[:k], True), full)
        end = _common_prefix(_chat_ids(tokenizer, messages[:k + 1], False), full)
        labels[start:end] = full[start:end]
    return {"input_ids": full, "labels": labels}


def sft_trainer(model_path: str, records: Sequence[dict], output: Path, cfg: SFTStageConfig, stage: str = "sft"):
    """A configured SFT trainer on pre-tokenised records whose labels follow `cfg.train_on`."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    plan = batch_plan(cfg, _where(stage))
    args = SFTConfig(**_common_args(cfg, Path(output), plan))
    tokenizer = _tokenizer(model_path)
    model = _load_float32(model_path)
    rows = [sft_example(tokenizer, r, cfg.train_on) for r in records]
    targets = sum(sum(t != -100 for t in r["labels"][: cfg.max_length]) for r in rows)
    if rows and not targets:
        raise SparError(f"{_where(stage)}.max_length {cfg.max_length}: every one of the {len(rows)} records has its "
                        f"target turns past the cutoff, so nothing would be trained; raise {_where(stage)}.max_length")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.spar_batch = plan
    trainer.spar_targets = {"train_on": cfg.train_on,
                            "target_tokens": targets,
                            "truncated_records": sum(len(r["input_ids"]) > cfg.max_length for r in rows)}
    return trainer


# -- running a stage ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def library_output(path: Path) -> Iterator[None]:
    """Route library logging, warnings and progress bars of a training stage to `path` instead of the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rank = os.environ.get("RANK", "0")
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(f"%(asctime)s [rank {rank}] %(name)s %(levelname)s: %(message)s"))
    saved = {}
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate, logger.level)
        logger.handlers, logger.propagate = [handler], False
    log.setLevel(logging.INFO)
    logging.captureWarnings(True)
    old_tqdm = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        with quiet_progress_bars():
            yield
    finally:
        if old_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old_tqdm
        logging.captureWarnings(False)
        for name, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        handler.close()


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """The progress bars of transformers and datasets off for the block, then back as they were."""
    import datasets
    import transformers

    libs = (transformers.utils.logging, datasets.utils.logging)
    was = [lib.is_progress_bar_enabled() for lib in libs]
    for lib in libs:
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, on in zip(libs, was):
            if on:
                lib.enable_progress_bar()


def _log_callback(output: Path, stage: str, progress: Progress | None):
    from transformers import TrainerCallback

    class StageLog(TrainerCallback):
        """Writes every logged step to log_history.jsonl (main process) and the raw dict to train.log."""

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                (output / LOG_HISTORY).write_text("", encoding="utf-8")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            logs = dict(logs or {})
            log.info("step %s/%s %s", state.global_step, state.max_steps, json.dumps(logs))
            if "loss" not in logs:
                return  # the end-of-training summary (train_runtime, train_loss)
            line = {"step": state.global_step, "epoch": logs.pop("epoch", state.epoch), "loss": logs.pop("loss"),
                    "learning_rate": logs.pop("learning_rate", None), **logs}
            with open(output / LOG_HISTORY, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            if progress is not None:
                progress({"stage": stage, "step": state.global_step, "total": state.max_steps, "loss": line["loss"],
                          "learning_rate": line["learning_rate"]})

    return StageLog()


def _compute(trainer) -> str:
    mixed = str(trainer.accelerator.mixed_precision)
    if mixed in ("bf16", "fp16"):
        return f"{mixed}-deepspeed" if trainer.is_deepspeed_enabled else f"{mixed}-autocast"
    return "float32"


def _save(trainer, output: Path, dtype: str) -> None:
    """Save the weights in the input's stored dtype (DeepSpeed gathers its own 16-bit copy, zero3_save_16bit_model)."""
    import torch

    if not trainer.is_deepspeed_enabled and dtype in ("bfloat16", "float16"):  # else the float32 master weights
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.to(getattr(torch, dtype))
    trainer.save_model(str(output))


def _run(trainer, output: Path, stage: str, cfg, model_path: str, progress: Progress | None, extra: dict) -> dict:
    plan = trainer.spar_batch
    if trainer.accelerator.num_processes != plan["world_size"]:
        raise SparError(f"{_where(stage)}: {trainer.accelerator.num_processes} training processes but WORLD_SIZE "
                        f"gave {plan['world_size']}")
    for cb in list(trainer.callback_handler.callbacks):  # raw per-step dicts go to train.log, not stdout
        if type(cb).__name__ in ("PrinterCallback", "ProgressCallback", "NotebookProgressCallback"):
            trainer.remove_callback(cb)
    trainer.add_callback(_log_callback(output, stage, progress))
    stored = stored_dtype(model_path)
    master = str(next(trainer.model.parameters()).dtype).replace("torch.", "")
    compute = _compute(trainer)
    log.info("%s: %s", stage, json.dumps({"batch": plan, "master_weights": master, "compute": compute}))
    tokens = trained_tokens(trainer.train_dataset, cfg.max_length, cfg.num_train_epochs)
    result = trainer.train()
    _save(trainer, output, stored)
    history = [h for h in trainer.state.log_history if "loss" in h]
    summary = {"stage": stage, "config": asdict(cfg), "train_loss": result.training_loss,
               "steps": trainer.state.global_step, "history": history,
               "processes": trainer.accelerator.num_processes,
               "distributed_type": str(trainer.accelerator.distributed_type).split(".")[-1],
               "batch": plan, "precision": {"master_weights": master, "compute": compute, "stored_dtype": stored},
               "tokens": tokens,
               "logs": {"log_history": str(output / LOG_HISTORY), "train_log": str(output / TRAIN_LOG),
                        "report_to": list(trainer.args.report_to or [])}, **extra}
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(output))
        summary["precision"]["saved_dtype"] = stored_dtype(output)
        write_json(output / SUMMARY, summary)
    else:
        summary["precision"]["saved_dtype"] = stored
    return summary


def trained_tokens(dataset, max_length: int | None, epochs: float) -> dict:
    """Tokens in the policy's forward passes per epoch, from the trainer's tokenised dataset: DPO, prompt + chosen
    and prompt + rejected (each cut at `max_length`); SFT, the input ids (cut at `max_length`). The DPO reference
    model's forwards (the same tokens again, without gradients) are not included."""
    cap = max_length or 1 << 62
    columns = set(dataset.column_names)
    if {"prompt_ids", "chosen_ids", "rejected_ids"} <= columns:
        per_epoch = sum(min(len(p) + len(c), cap) + min(len(p) + len(r), cap) for p, c, r in
                        zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"]))
        counted = "prompt+chosen and prompt+rejected per pair"
    elif "input_ids" in columns:
        per_epoch = sum(min(len(ids), cap) for ids in dataset["input_ids"])
        counted = "input ids per record"
    else:
        return {"per_epoch": None, "epochs": epochs, "counted": f"unknown columns {sorted(columns)}"}
    return {"per_epoch": per_epoch, "epochs": epochs, "counted": f"{counted}, cut at max_length {max_length}"}


def train_dpo(model_path: str, ref_path: str | None, records: Sequence[dict], output: Path, cfg: DPOStageConfig,
              progress: Progress | None = None) -> dict:
    """DPO of the actor; returns the stage summary (also written to `<output>/training.json`). `progress` is called
    with {stage, step, total, loss, learning_rate} at every logged step (main process)."""
    if not records:
        raise SparError("DPO: no preference pairs to train on")
    output = Path(output)
    batch_plan(cfg, "dpo")  # a global batch the processes cannot meet fails before any loading
    with library_output(output / TRAIN_LOG):
        trainer = dpo_trainer(model_path, ref_path, records, output, cfg)
        return _run(trainer, output, "dpo", cfg, model_path, progress,
                    {"pairs": len(records), "model": model_path, "reference": ref_path or model_path,
                     "loss_terms": _dpo_terms(cfg)})


def train_sft(model_path: str, records: Sequence[dict], output: Path, cfg: SFTStageConfig, stage: str = "sft",
              progress: Progress | None = None) -> dict:
    """SFT (refiner RFT, initialisation); same summary and logs as `train_dpo`, plus the loss targets."""
    if not records:
        raise SparError(f"{stage}: no records to train on")
    output = Path(output)
    batch_plan(cfg, _where(stage))
    with library_output(output / TRAIN_LOG):
        trainer = sft_trainer(model_path, records, output, cfg, stage=stage)
        return _run(trainer, output, stage, cfg, model_path, progress,
                    {"records": len(records), "model": model_path, "targets": trainer.spar_targets})


def _dpo_terms(cfg: DPOStageConfig) -> list[dict]:
    terms = [{"term": "dpo_sigmoid", "weight": 1.0, "beta": cfg.beta, "logps": "summed over completion tokens"}]
    if cfg.sft_weight:
        terms.append({"term": "sft_chosen", "weight": cfg.sft_weight,
                      "normalization": "per-sequence mean NLL, averaged over pairs (LLaMA-Factory pref_ftx)"
                      if cfg.sft_normalization == "sequence" else "token mean over the micro-batch (TRL 'sft')"})
    return terms

