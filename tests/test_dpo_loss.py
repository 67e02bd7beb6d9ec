"""The actor loss: DPO (beta 0.1) + 0.1 x SFT on the chosen response, checked against a hand computation that
tokenizes with the chat template on its own and sums log-probs with plain torch."""

from __future__ import annotations

import math

import pytest

PAIRS = [
    {"prompt": [{"role": "user", "content": "Write one word."}],
     "chosen": [{"role": "assistant", "content": "Hello"}],
     "rejected": [{"role": "assistant", "content": "Hello there, this is a much longer answer."}]},
    {"prompt": [{"role": "user", "content": "Say two short sentences about cats."}],
     "chosen": [{"role": "assistant", "content": "Cats purr. Cats nap all day long in the sun."}],
     "rejected": [{"role": "assistant", "content": "Dogs."}]},
]


@pytest.fixture(scope="module")
def ref_model_dir(tiny_model_dir, tmp_path_factory):
    """A second tiny model (different weights) as the DPO reference, so the DPO term is not log 2."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-ref")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def _completion_logp(model, tok, prompt, completion):
    import torch
    import torch.nn.functional as F

    p = tok(tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False), add_special_tokens=False)
    full = tok(tok.apply_chat_template(prompt + completion, tokenize=False), add_special_tokens=False)
    p, full = p["input_ids"], full["input_ids"]
    assert full[: len(p)] == p
    ids = torch.tensor([full])
    with torch.no_grad():
        logits = model(ids).logits[0].float()
    logp = F.log_softmax(logits[:-1], -1).gather(1, ids[0, 1:, None])[:, 0][len(p) - 1:]
    return logp.sum().item(), len(logp)


def _hand_loss(policy_dir, ref_dir, normalization, beta=0.1, weight=0.1):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(policy_dir)
    pol, ref = AutoModelForCausalLM.from_pretrained(policy_dir), AutoModelForCausalLM.from_pretrained(ref_dir)
    dpo, seq_nll, tok_nll, tok_count = [], [], 0.0, 0
    for pair in PAIRS:
        pc, n_c = _completion_logp(pol, tok, pair["prompt"], pair["chosen"])
        pr, _ = _completion_logp(pol, tok, pair["prompt"], pair["rejected"])
        rc, _ = _completion_logp(ref, tok, pair["prompt"], pair["chosen"])
        rr, _ = _completion_logp(ref, tok, pair["prompt"], pair["rejected"])
        margin = beta * ((pc - rc) - (pr - rr))
        dpo.append(math.log1p(math.exp(-margin)))  # -log sigmoid(margin)
        seq_nll.append(-pc / n_c)
        tok_nll, tok_count = tok_nll - pc, tok_count + n_c
    sft = sum(seq_nll) / len(seq_nll) if normalization == "sequence" else tok_nll / tok_count
    return sum(dpo) / len(dpo) + weight * sft


@pytest.mark.parametrize("normalization", ["sequence", "token"])
def test_dpo_plus_sft_loss_matches_hand_computation(tiny_model_dir, ref_model_dir, tmp_path, normalization):
    import torch

    from training.trainers import DPOStageConfig, dpo_trainer

    cfg = DPOStageConfig(sft_normalization=normalization, per_device_train_batch_size=2, global_batch_size=2)
    trainer = dpo_trainer(str(tiny_model_dir), str(ref_model_dir), PAIRS, tmp_path, cfg)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch).item()
    assert loss == pytest.approx(_hand_loss(tiny_model_dir, ref_model_dir, normalization), rel=1e-5)


def test_sequence_and_token_normalisation_differ_when_lengths_differ(tiny_model_dir, ref_model_dir):
    assert _hand_loss(tiny_model_dir, ref_model_dir, "sequence") != \
        pytest.approx(_hand_loss(tiny_model_dir, ref_model_dir, "token"), rel=1e-6)


def test_training_writes_a_checkpoint_and_losses(tiny_model_dir, ref_model_dir, tmp_path):
    import json

    from training.trainers import DPOStageConfig, SFTStageConfig, train_dpo, train_sft

    summary = train_dpo(str(tiny_model_dir), str(ref_model_dir), PAIRS, tmp_path / "actor",
                        DPOStageConfig(learning_rate=1e-3, per_device_train_batch_size=1, global_batch_size=1))
    assert summary["steps"] == 2 and math.isfinite(summary["train_loss"])
    assert (tmp_path / "actor" / "model.safetensors").exists()
    assert json.loads((tmp_path / "actor" / "training.json").read_text())["loss_terms"][1]["weight"] == 0.1
    assert any("sft_loss" in h for h in summary["history"])
    assert summary["precision"]["master_weights"] == "float32" and summary["precision"]["saved_dtype"] == "float32"
    lines = [json.loads(x) for x in (tmp_path / "actor" / "log_history.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert all({"loss", "learning_rate", "epoch", "rewards/chosen", "rewards/margins", "sft_loss"} <= set(x)
               for x in lines)
    records = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in PAIRS]
    sft = train_sft(str(tiny_model_dir), records, tmp_path / "refiner",
                    SFTStageConfig(num_train_epochs=1, per_device_train_batch_size=1, global_batch_size=1))
    assert sft["steps"] == 2 and (tmp_path / "refiner" / "tokenizer_config.json").exists()
