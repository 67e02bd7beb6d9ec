"""User mistakes give one line naming the file, line and field, exit code 2, and no traceback."""

from __future__ import annotations

import json

import pytest

from conftest import free_port, run_spar
from evaluators.ifeval import QUICKSTART_FILE

DATA = str(QUICKSTART_FILE)
FIRST_PROMPT = json.loads(QUICKSTART_FILE.read_text().splitlines()[0])["prompt"]


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _fails(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("spar: error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("lines,needles", [
    (['{"prompt": "x", "response": "y"', ], [":1:", "malformed JSON"]),
    ([json.dumps({"prompt": FIRST_PROMPT})], [":1:", "'response'", "missing"]),
    ([json.dumps({"response": "y"})], [":1:", "'prompt'", "missing"]),
    ([json.dumps({"prompt": FIRST_PROMPT, "response": "ok"}), json.dumps({"prompt": "not in data", "response": "y"})],
     [":2:", "'prompt'", "not found"]),
    ([json.dumps({"prompt": FIRST_PROMPT, "response": 3})], [":1:", "'response'", "expected str"]),
    ([json.dumps({"prompt": FIRST_PROMPT, "response": "a"})] * 2, [":2:", "second response"]),
    (["[1, 2]"], [":1:", "JSON object"]),
])
def test_bad_responses_file(tmp_path, lines, needles):
    responses = _write(tmp_path / "r.jsonl", lines)
    _fails(run_spar("score", "ifeval", "--responses", responses, "--data", DATA, "--output", str(tmp_path / "o")),
           "r.jsonl", *needles)


def test_unknown_instruction_id(tmp_path):
    data = _write(tmp_path / "d.jsonl", [json.dumps({"key": 1, "prompt": "p", "instruction_id_list": ["nope:x"],
                                                      "kwargs": [{}]})])
    responses = _write(tmp_path / "r.jsonl", [json.dumps({"prompt": "p", "response": "r"})])
    _fails(run_spar("score", "ifeval", "--responses", responses, "--data", data, "--output", str(tmp_path / "o")),
           "d.jsonl:1:", "'instruction_id_list'", "nope:x")


def test_empty_response_is_scored_not_a_crash(tmp_path):
    responses = _write(tmp_path / "r.jsonl", [json.dumps({"prompt": FIRST_PROMPT, "response": ""})])
    proc = run_spar("score", "ifeval", "--responses", responses, "--data", DATA, "--output", str(tmp_path / "o"),
                    "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["prompt_level_strict_acc"] == 0.0 and metrics["counts"]["empty_responses"] == 1


def test_bad_model_path(tmp_path):
    _fails(run_spar("eval", "--model", str(tmp_path / "missing"), "--output", str(tmp_path / "o"), "--data", DATA),
           "missing", "no such folder")


def test_unreachable_server(tmp_path):
    _fails(run_spar("eval", "--backend", "openai", "--model", "m", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
                    "--timeout-s", "2", "--data", DATA, "--output", str(tmp_path / "o")), "unreachable")


def test_unknown_benchmark_and_bad_config(tmp_path):
    _fails(run_spar("eval", "--model", "x", "--benchmarks", "nope"), "unknown benchmark 'nope'")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: x\nbogus: 1\n")
    _fails(run_spar("eval", "--config", str(cfg)), "c.yaml:2:", "bogus: unknown option")
    cfg.write_text("model: x\nlimit: many\n")
    _fails(run_spar("eval", "--config", str(cfg)), "limit")
    cfg.write_text("model: [unclosed\n")
    _fails(run_spar("eval", "--config", str(cfg)), "not valid YAML")


@pytest.mark.parametrize("launcher, processes", [
    ("", 1),
    ("accelerate launch --num_processes 4", 4),
    ("accelerate launch --num-processes=2 --config_file configs/accelerate/zero3.yaml", 2),  # the flag wins
    ("accelerate launch --config_file configs/accelerate/zero3.yaml", 8),
    ("torchrun --nproc_per_node 4 --nnodes 2", 8),
    ("python -m torch.distributed.run --nproc-per-node=2", 2),
    ("torchrun --nproc_per_node gpu", None),  # known only at launch
    ("my-own-launcher --whatever", None),
])
def test_launcher_process_counts(launcher, processes, monkeypatch, tmp_path):
    """The training processes a launcher starts, read as accelerate / torchrun read their flags and config file."""
    from conftest import REPO
    from training.launch import launcher_processes

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no accelerate default config file
    found = launcher_processes(launcher)
    assert (found.processes if found else None) == processes


def test_accelerate_default_config_file_counts(monkeypatch, tmp_path):
    from training.launch import launcher_processes

    (tmp_path / "accelerate").mkdir()
    (tmp_path / "accelerate" / "default_config.yaml").write_text("num_processes: 3\n")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    found = launcher_processes("accelerate launch")
    assert found.processes == 3 and "default_config.yaml" in found.source


def test_batch_plan_refused_at_start_only_for_stages_that_run(tmp_path, monkeypatch):
    """init.sft is checked only when the run has init data; rft only for methods that train a refiner."""
    from harness.core.errors import SparError
    from training.config import load_run_config

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    cfg = tmp_path / "run.yaml"
    cfg.write_text("models: {train_launcher: accelerate launch --num_processes 4}\n"
                   "dpo: {global_batch_size: 8}\nrft: {global_batch_size: 8}\ninit: {sft: {global_batch_size: 6}}\n")
    assert load_run_config(str(cfg)).init.sft.global_batch_size == 6  # no init data: init.sft never launches
    with pytest.raises(SparError, match=r"run.yaml:4: init.sft.global_batch_size 6 is not a multiple of "
                                        r"per_device_train_batch_size 2 x 4 processes \(--num_processes 4: "
                                        r"models.train_launcher, .*run.yaml:1\)$"):
        load_run_config(str(cfg), ["init.actor_data=a.jsonl"])
    with pytest.raises(SparError, match=r"rft.global_batch_size 10"):
        load_run_config(str(cfg), ["rft.global_batch_size=10"])
    assert load_run_config(str(cfg), ["rft.global_batch_size=10", "ablation=no_refiner_training"])


def test_different_units_message_names_the_flag():
    from harness.core.errors import SparError
    from harness.core.stats import align_by_key

    with pytest.raises(SparError, match="pass --intersect"):
        align_by_key([{"k": 1}, {"k": 2}], [{"k": 1}], lambda u: u["k"])
