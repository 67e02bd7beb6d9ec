"""GPU check of training precision at scale: one SFT step and one DPO step of a ~1B LLaMA-shaped model stored in
bf16, through spar's own trainers (`training.trainers`), plus the hf backend's greedy generation on CUDA.

What it shows, per stage: the master weights' dtype and the compute mode the trainer picked, the fraction of
parameters one optimizer step changed (fp32 master weights) against training the bf16 weights themselves, the
relative update norm, the loss, the step time, peak GPU memory, and the dtype the checkpoint is saved in. The model
is randomly initialised from a Llama-3.2-1B-shaped config (the device machine reaches no hub) with a real tokenizer
and chat template, so losses are not meaningful; precision, batch plan and memory are.

    python benchmarks/gpu_training_check.py --tokenizer DIR --out DIR [--layers 16 --hidden 2048]

Needs a CUDA GPU with bf16 (the precision claims are about bf16 autocast); runs on CPU too with `--tiny` (a smoke
test of the script, not a measurement). Writes DIR/gpu_training_check.json and prints a summary table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _records(n: int, turns: int) -> list[dict]:
    """Chat records shaped like SPaR's: RFT (critique + refinement turns) for SFT, pairs for DPO."""
    body = "Write a short story about a lighthouse keeper, in exactly three paragraphs, without the letter z. "
    out = []
    for i in range(n):
        prompt = [{"role": "user", "content": f"{body} Variant {i}. " * 4}]
        if turns == 2:
            out.append({"messages": prompt + [
                {"role": "assistant", "content": f"The response misses the third paragraph ({i}). " * 6 + "No"},
                {"role": "user", "content": "Refine the response."},
                {"role": "assistant", "content": f"Paragraph one {i}. " * 20 + "\n\nTwo.\n\nThree."}]})
        else:
            out.append({"prompt": prompt,
                        "chosen": [{"role": "assistant", "content": f"A faithful answer {i}. " * 30}],
                        "rejected": [{"role": "assistant", "content": f"An unfaithful answer {i}. " * 25}]})
    return out


def _build_model(tokenizer_dir: Path, out: Path, layers: int, hidden: int, tiny: bool) -> dict:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden,
                      num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                      num_key_value_heads=max(1, hidden // 256), max_position_embeddings=4096,
                      tie_word_embeddings=True, rope_theta=500000.0, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    device = "cpu" if tiny or not torch.cuda.is_available() else "cuda"
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    del model
    return {"parameters": params, "layers": layers, "hidden": hidden, "vocab": len(tok), "stored_dtype": "bfloat16"}


def _stats_callback(sink: dict):
    """Snapshot the trained parameters at train begin (on CPU) and compare at train end, before spar casts them back
    to the stored dtype for saving."""
    import torch
    from transformers import TrainerCallback

    class Stats(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            sink["before"] = {k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters()}
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            sink["t0"] = time.perf_counter()

        def on_train_end(self, args, state, control, model=None, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                sink["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            sink["train_s"] = round(time.perf_counter() - sink.pop("t0"), 2)
            changed = total = 0
            delta2 = norm2 = 0.0
            for k, v in model.named_parameters():
                a = v.detach().float()
                b = sink["before"][k].to(a.device).float()
                changed += (a != b).sum().item()
                total += a.numel()
                delta2 += ((a - b) ** 2).sum().item()
                norm2 += (b ** 2).sum().item()
            sink.pop("before")
            sink.update(fraction_changed=changed / total, relative_update=(delta2 ** 0.5) / (norm2 ** 0.5),
                        param_dtype=str(next(model.parameters()).dtype).replace("torch.", ""))

    return Stats()


def _stage(name: str, model_dir: Path, out: Path, naive_bf16: bool = False) -> dict:
    """One optimizer step at the paper's global batch (SFT 64, DPO 32) through spar's trainer and `_run`."""
    import torch

    from training import trainers as T

    common = dict(num_train_epochs=1, warmup_ratio=0.0, lr_scheduler_type="constant", max_length=1024)
    stats: dict = {}
    if name == "sft":
        cfg = T.SFTStageConfig(learning_rate=2e-6, global_batch_size=64, per_device_train_batch_size=8, **common)
        trainer = T.sft_trainer(str(model_dir), _records(64, 2), out, cfg, stage="rft")
        extra = {"targets": trainer.spar_targets}
    else:
        cfg = T.DPOStageConfig(learning_rate=2e-7, global_batch_size=32, per_device_train_batch_size=4, **common)
        trainer = T.dpo_trainer(str(model_dir), None, _records(32, 1), out, cfg)
        extra = {}
    if naive_bf16:  # what spar guards against: the optimizer updating bf16 weights directly
        trainer.model.to(torch.bfloat16)
    trainer.add_callback(_stats_callback(stats))
    with T.library_output(out / T.TRAIN_LOG):
        summary = T._run(trainer, out, name, cfg, str(model_dir), None, extra)
    return {"stage": name, "naive_bf16_weights": naive_bf16, "steps": summary["steps"],
            "train_loss": summary["train_loss"], "batch": summary["batch"], "precision": summary["precision"],
            **{k: v for k, v in stats.items()}}


def _generation(model_dir: Path, dtype: str, n: int = 32, new_tokens: int = 64) -> dict:
    """Greedy generation of the hf backend on CUDA: batched (left-padded) vs one at a time, and throughput. On a
    random model the logits are nearly flat, so bf16 rounding alone flips argmaxes; float32 shows whether padding
    itself changes outputs."""
    import torch

    from harness.core.backends.hf import HFBackend
    from harness.core.models import ResolvedModel
    from harness.core.types import ChatRequest, Message, SamplingParams

    model = ResolvedModel(spec=str(model_dir), path=str(model_dir), identity="gpu-check", source="local")
    sampling = SamplingParams(temperature=0.0, max_new_tokens=new_tokens)
    reqs = [ChatRequest(messages=(Message("user", f"Question {i}: " + "why is the sky blue? " * (1 + i % 5)),),
                        sampling=sampling) for i in range(n)]
    out = {}
    for batch in (n, 1):
        backend = HFBackend(model, dtype=dtype, device="auto", batch_size=batch)
        backend.generate(reqs[:2])  # warm-up
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = backend.generate(reqs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        toks = sum(c[0].completion_tokens for c in res)
        out[f"batch_{batch}"] = {"seconds": round(dt, 2), "completion_tokens": toks,
                                 "tokens_per_s": round(toks / dt, 1), "texts": [c[0].text for c in res],
                                 "device": backend.device}
        del backend
    same = sum(a == b for a, b in zip(out[f"batch_{n}"].pop("texts"), out["batch_1"].pop("texts")))
    out["greedy_identical_batched_vs_single"] = f"{same}/{n}"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", type=Path, required=True, help="folder with tokenizer files and chat template")
    ap.add_argument("--out", type=Path, required=True, help="work folder; the summary JSON is written here")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--tiny", action="store_true", help="2 layers, hidden 64, CPU: a smoke test of this script")
    ap.add_argument("--skip-training", action="store_true", help="build the model and only check generation")
    args = ap.parse_args()
    import torch

    if args.tiny:
        args.layers, args.hidden = 2, 64
    report: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    import transformers
    import trl

    report["versions"] = {"transformers": transformers.__version__, "trl": trl.__version__}
    model_dir = args.out / "model-bf16"
    t0 = time.perf_counter()
    report["model"] = _build_model(args.tokenizer, model_dir, args.layers, args.hidden, args.tiny)
    report["model"]["build_s"] = round(time.perf_counter() - t0, 1)
    report["stages"] = []
    for name, naive in () if args.skip_training else (("sft", False), ("sft", True), ("dpo", False)):
        try:
            report["stages"].append(_stage(name, model_dir, args.out / f"{name}{'-naive' if naive else ''}", naive))
        except Exception as exc:  # keep the other measurements when one fails on the device
            report["stages"].append({"stage": name, "naive_bf16_weights": naive, "error": repr(exc)[:500]})
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        print(json.dumps(report["stages"][-1], default=str), flush=True)
    report["generation"] = {}
    for dtype in ("bfloat16", "float32"):
        try:
            report["generation"][dtype] = _generation(model_dir, dtype)
        except Exception as exc:
            report["generation"][dtype] = {"error": repr(exc)[:500]}
    (args.out / "gpu_training_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
