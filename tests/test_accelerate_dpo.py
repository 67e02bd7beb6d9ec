"""DPO through `accelerate launch` with two CPU processes (gloo): the multi-process path CI can run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_dpo_runs_in_two_processes(tiny_model_dir, tmp_path):
    records = [{"prompt": [{"role": "user", "content": f"Question {i}?"}],
                "chosen": [{"role": "assistant", "content": "A careful answer. " * (i + 1)}],
                "rejected": [{"role": "assistant", "content": "No."}]} for i in range(4)]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    spec = {"kind": "dpo", "model": str(tiny_model_dir), "ref": None, "output": str(tmp_path / "actor"),
            "records": str(tmp_path / "pairs.jsonl"),
            "config": {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 1, "learning_rate": 1e-4}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    launcher = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "training.launch",
                           str(tmp_path / "spec.json")], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "actor" / "training.json").read_text())
    assert summary["processes"] == 2 and summary["distributed_type"] == "MULTI_CPU"
    assert summary["steps"] == 2  # 4 pairs split over 2 processes, batch 1
    assert (tmp_path / "actor" / "model.safetensors").exists()
