"""Training stages on TRL: actor DPO + weighted SFT on the chosen response, and SFT for refiner RFT and the
initialisation stages. One config dataclass per stage (defaults from the official LLaMA-Factory configs).

The SFT term of SPaR's DPO is LLaMA-Factory's `pref_ftx`: per pair, the chosen response's summed NLL divided by its
token count, then averaged over pairs (`sft_normalization="sequence"`, the default). TRL's own `"sft"` loss term is
a token mean over the micro-batch (`"token"`); the two agree only when chosen lengths are equal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from harness.errors import SparError
from harness.records import write_json

SFT_NORMALIZATIONS = ("sequence", "token")


@dataclass(frozen=True)
class DPOStageConfig:
    """Actor DPO (official `src/configs/dpo.yaml`: beta 0.1, pref_ftx 0.1, lr 2e-7, 1 epoch, linear, warmup 0.1,
    batch 2 x accum 2, cutoff 2048)."""

    beta: float = 0.1
    sft_weight: float = 0.1
    sft_normalization: str = "sequence"
    learning_rate: float = 2e-7
    num_train_epochs: float = 1.0
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.1
    per_device_train_batch_size: int = 2
    gradient_accumulation_steps: int = 2
    max_length: int = 2048
    bf16: bool | None = None  # None: bf16 on CUDA, fp32 elsewhere
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sft_normalization not in SFT_NORMALIZATIONS:
            raise SparError(f"dpo.sft_normalization {self.sft_normalization!r}: choose from "
                            f"{', '.join(SFT_NORMALIZATIONS)}")


@dataclass(frozen=True)
class SFTStageConfig:
    """SFT / RFT (official `src/configs/sft.yaml`: lr 2e-6, 5 epochs, constant_with_warmup 0.1, batch 2 x accum 4,
    cutoff 4096). The loss covers the completion (the refiner's target turn) only."""

    learning_rate: float = 2e-6
    num_train_epochs: float = 5.0
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_ratio: float = 0.1
    per_device_train_batch_size: int = 2
    gradient_accumulation_steps: int = 4
    max_length: int = 4096
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    seed: int = 0


def _use_bf16(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _common_args(cfg, output: Path) -> dict:
    import torch

    # use_cpu lets accelerate form a gloo process group when several CPU processes are launched (tests, CI)
    return dict(use_cpu=not torch.cuda.is_available(), output_dir=str(output / "trainer"), learning_rate=cfg.learning_rate,
                num_train_epochs=cfg.num_train_epochs, lr_scheduler_type=cfg.lr_scheduler_type,
                warmup_steps=cfg.warmup_ratio, per_device_train_batch_size=cfg.per_device_train_batch_size,
                gradient_accumulation_steps=cfg.gradient_accumulation_steps, max_length=cfg.max_length,
                bf16=_use_bf16(cfg.bf16), gradient_checkpointing=cfg.gradient_checkpointing,
                logging_steps=cfg.logging_steps, seed=cfg.seed, save_strategy="no", report_to=[],
                disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False)


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
            self._metrics[mode]["sft_loss"].append(self.accelerator.gather_for_metrics(nll.detach().mean()).mean().item())
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


def dpo_trainer(model_path: str, ref_path: str | None, records: Sequence[dict], output: Path, cfg: DPOStageConfig):
    """A configured trainer (exposed for tests that check the loss on a toy batch)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path)
    ref = AutoModelForCausalLM.from_pretrained(ref_path) if ref_path and ref_path != model_path else None
    token_sft = cfg.sft_normalization == "token" and cfg.sft_weight > 0
    args = DPOConfig(beta=cfg.beta, loss_type=["sigmoid", "sft"] if token_sft else ["sigmoid"],
                     loss_weights=[1.0, cfg.sft_weight] if token_sft else [1.0], **_common_args(cfg, output))
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in records])
    cls = _trl_dpo_trainer_class()
    return cls(model=model, ref_model=ref, args=args, train_dataset=dataset, processing_class=tokenizer,
               sequence_sft_weight=cfg.sft_weight if cfg.sft_normalization == "sequence" else 0.0)


def sft_trainer(model_path: str, records: Sequence[dict], output: Path, cfg: SFTStageConfig):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path)
    args = SFTConfig(completion_only_loss=True, **_common_args(cfg, output))
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in records])
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def _finish(trainer, output: Path, stage: str, cfg, extra: dict) -> dict:
    result = trainer.train()
    trainer.save_model(str(output))
    history = [h for h in trainer.state.log_history if "loss" in h]
    summary = {"stage": stage, "config": asdict(cfg), "train_loss": result.training_loss,
               "steps": trainer.state.global_step, "history": history,
               "processes": trainer.accelerator.num_processes,
               "distributed_type": str(trainer.accelerator.distributed_type).split(".")[-1], **extra}
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(output))
        write_json(output / "training.json", summary)
    return summary


def train_dpo(model_path: str, ref_path: str | None, records: Sequence[dict], output: Path,
              cfg: DPOStageConfig) -> dict:
    if not records:
        raise SparError("DPO: no preference pairs to train on")
    trainer = dpo_trainer(model_path, ref_path, records, output, cfg)
    return _finish(trainer, output, "dpo", cfg, {"pairs": len(records), "model": model_path,
                                                 "reference": ref_path or model_path,
                                                 "loss_terms": _dpo_terms(cfg)})


def train_sft(model_path: str, records: Sequence[dict], output: Path, cfg: SFTStageConfig, stage: str = "sft") -> dict:
    if not records:
        raise SparError(f"{stage}: no records to train on")
    trainer = sft_trainer(model_path, records, output, cfg)
    return _finish(trainer, output, stage, cfg, {"records": len(records), "model": model_path})


def _dpo_terms(cfg: DPOStageConfig) -> list[dict]:
    terms = [{"term": "dpo_sigmoid", "weight": 1.0, "beta": cfg.beta, "logps": "summed over completion tokens"}]
    if cfg.sft_weight:
        terms.append({"term": "sft_chosen", "weight": cfg.sft_weight,
                      "normalization": "per-sequence mean NLL, averaged over pairs (LLaMA-Factory pref_ftx)"
                      if cfg.sft_normalization == "sequence" else "token mean over the micro-batch (TRL 'sft')"})
    return terms

