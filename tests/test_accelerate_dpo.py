"""Training stages through `training.launch`: DPO under `accelerate launch` with two CPU processes (gloo, the
multi-process path CI can run), and the spec format of the SFT stages (RFT, initialisation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _pairs(n: int) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"Question {i}?"}],
             "chosen": [{"role": "assistant", "content": "A careful answer. " * (i + 1)}],
             "rejected": [{"role": "assistant", "content": "No."}]} for i in range(n)]


def _spec(tmp_path: Path, **spec) -> Path:
    rows = spec.pop("rows")
    (tmp_path / "records.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"records": str(tmp_path / "records.jsonl"), **spec}))
    return path


def test_dpo_runs_in_two_processes(tiny_model_dir, tmp_path):
    # 8 pairs, global batch 4 = 1 per device x 2 processes x 2 accumulation steps: 2 optimizer steps
    spec = _spec(tmp_path, kind="dpo", stage="dpo", model=str(tiny_model_dir), ref=None, output=str(tmp_path / "actor"),
                 rows=_pairs(8), config={"per_device_train_batch_size": 1, "global_batch_size": 4,
                                         "learning_rate": 1e-4})
    launcher = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "training.launch", str(spec)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "actor" / "training.json").read_text())
    assert summary["processes"] == 2 and summary["distributed_type"] == "MULTI_CPU"
    assert summary["batch"] == {"global_batch_size": 4, "per_device_train_batch_size": 1,
                                "gradient_accumulation_steps": 2, "world_size": 2}
    assert summary["steps"] == 2  # 8 pairs / global batch 4
    assert summary["precision"] == {"master_weights": "float32", "compute": "float32", "stored_dtype": "float32",
                                    "saved_dtype": "float32"}
    assert (tmp_path / "actor" / "model.safetensors").exists()
    lines = [json.loads(x) for x in (tmp_path / "actor" / "log_history.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]  # written once, by the main process
    assert all("rewards/margins" in x and "sft_loss" in x for x in lines)
    assert "'loss'" not in proc.stdout and "{'loss'" not in proc.stderr  # per-step dicts go to train.log


def test_sft_stage_spec_runs_in_process(tiny_model_dir, tmp_path):
    from training.launch import main

    rows = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in _pairs(2)]
    spec = _spec(tmp_path, kind="sft", stage="init_actor", model=str(tiny_model_dir), output=str(tmp_path / "init"),
                 rows=rows, config={"num_train_epochs": 1, "per_device_train_batch_size": 1, "global_batch_size": 2})
    assert main([str(spec)]) == 0
    summary = json.loads((tmp_path / "init" / "training.json").read_text())
    assert summary["stage"] == "init_actor" and summary["steps"] == 1
    assert summary["batch"]["gradient_accumulation_steps"] == 2 and summary["targets"]["target_tokens"] > 0


def test_a_global_batch_the_processes_cannot_meet_is_one_line(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from training.launch import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    spec = _spec(tmp_path, kind="dpo", model=str(tiny_model_dir), output=str(tmp_path / "actor"), rows=_pairs(2),
                 config={"per_device_train_batch_size": 4, "global_batch_size": 36})
    assert main([str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "training.launch: error: dpo.global_batch_size 36 is not a multiple of " \
                  "per_device_train_batch_size 4 x 2 processes"
    spec = _spec(tmp_path, kind="sft", stage="rft", model=str(tiny_model_dir), output=str(tmp_path / "r"),
                 rows=[], config={"train_on": "everything"})
    assert main([str(spec)]) == 2
    err = capsys.readouterr().err
    assert "rft.train_on" in err and len(err.strip().splitlines()) == 1
