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
