"""`lm-eval:<task>` benchmarks: lm-eval tasks run through lm-eval's own API on spar's model, recorded in the run folder.

Offline and small: made-up tasks in tests/data/lm_eval_tiny (a generate_until task of 5 arithmetic questions and a
multiple-choice task of 4 colour questions, JSONL data through lm-eval's `dataset_path: json`), the tiny random
Llama of conftest, the fake backend with a rules script, and a stub OpenAI-compatible server on loopback."""

from __future__ import annotations

import importlib.metadata
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import REPO
from harness.core.errors import SparError

pytest.importorskip("lm_eval")

TINY = "tests/data/lm_eval_tiny"  # the task YAMLs name their data relative to the repository root (lm-eval's rule)
GEN, MC = "lm-eval:spar_tiny_gen", "lm-eval:spar_tiny_mc"
#: fake-backend rules answering the arithmetic task: 2 of the first 3 right (the third answer is wrong)
RULES = [{"match": r"2 \+ 3", "reply": "5"}, {"match": "7 - 4", "reply": "The answer is 3."},
         {"match": r"3 \* 3", "reply": "6"}, {"match": ".", "reply": "no idea"}]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)


def _include(*benchmarks: str) -> list[str]:
    return [arg for b in benchmarks for arg in ("--bench", f"{b}.include_path={TINY}")]


def _spar(capsys, *args: str) -> tuple[int, str, str]:
    from harness.commands import main

    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _error(rc: int, err: str) -> str:
    """The one-line error of a failed command (lm-eval's progress bars may precede it), never a traceback."""
    lines = [line for line in err.splitlines() if line.startswith("spar: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------- registry
def test_prefix_names_resolve_to_one_class_per_task():
    from evaluators import evaluator_class, get_evaluator
    from evaluators.ifeval import IFEvalEvaluator
    from evaluators.lm_eval_tasks import LMEvalTaskEvaluator

    cls = evaluator_class("lm-eval:gsm8k")
    assert issubclass(cls, LMEvalTaskEvaluator) and cls.name == "lm-eval:gsm8k" and cls.task == "gsm8k"
    assert evaluator_class("lm-eval:gsm8k") is cls and evaluator_class("lm-eval:mmlu") is not cls
    assert evaluator_class("ifeval") is IFEvalEvaluator  # plain names as before
    ev = get_evaluator("lm-eval:gsm8k", {"num_fewshot": 5, "limit": 0.5})
    assert ev.options.num_fewshot == 5 and ev.options.limit == 0.5
    with pytest.raises(SparError, match="unknown benchmark 'nope'.*lm-eval:"):
        evaluator_class("nope")
    with pytest.raises(SparError, match="name an lm-eval task"):
        evaluator_class("lm-eval:")
    with pytest.raises(SparError, match="num_fewshot"):
        get_evaluator("lm-eval:gsm8k", {"num_fewshot": -1})


def test_spar_benchmarks_lists_the_options(capsys):
    rc, out, _ = _spar(capsys, "benchmarks", "lm-eval:gsm8k")
    assert rc == 0 and "lm-eval:gsm8k.num_fewshot" in out and "include_path" in out


# ------------------------------------------------------------------------------------------------- hf backend
def test_hf_generate_until_and_multiple_choice(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, err = _spar(capsys, "eval", "--benchmarks", f"{GEN},{MC}", *_include(GEN, MC), "--model",
                            str(tiny_model_dir), "--device", "cpu", "--limit", "3", "--output", str(out))
    assert rc == 0, err
    assert "exact_match,strict-match" in stdout and "acc,none" in stdout
    top = json.loads((out / "metrics.json").read_text())
    assert set(top) == {GEN, MC}
    gen = json.loads((out / GEN / "metrics.json").read_text())
    assert gen == top[GEN]
    assert 0.0 <= gen["exact_match,strict-match"] <= 1.0 and "exact_match_stderr,strict-match" in gen
    assert gen["n"] == 3 and gen["n_total"] == 5 and gen["partial"] is True
    mc = top[MC]
    assert {"acc,none", "acc_stderr,none", "acc_norm,none", "acc_norm_stderr,none"} <= set(mc)
    assert mc["n"] == 3 and mc["versions"] == {"spar_tiny_mc": 1.0}

    samples = _jsonl(out / GEN / "samples.jsonl")
    assert [s["doc_id"] for s in samples] == [0, 1, 2] and all(s["task"] == "spar_tiny_gen" for s in samples)
    assert all(s["filter"] == "strict-match" and "exact_match" in s and s["resps"] for s in samples)
    assert gen["exact_match,strict-match"] == pytest.approx(sum(s["exact_match"] for s in samples) / 3)
    mc_samples = _jsonl(out / MC / "samples.jsonl")
    assert len(mc_samples) == 3 and all(len(s["resps"]) == 3 for s in mc_samples)  # one loglikelihood per choice
    assert mc["acc,none"] == pytest.approx(sum(s["acc"] for s in mc_samples) / 3)

    record = json.loads((out / "record.json").read_text())
    assert record["status"] == "finished"
    entry = record["benchmarks"][GEN]
    version = importlib.metadata.version("lm_eval")
    assert entry["scorer"]["lm_eval_version"] == version and entry["data"]["lm_eval_version"] == version
    assert entry["scorer"]["model"]["model"] == "hf"
    assert entry["scorer"]["model"]["model_args"]["pretrained"] == str(tiny_model_dir.resolve())
    assert entry["scorer"]["task_configs"]["spar_tiny_gen"]["config_sha256"].startswith("sha256:")
    assert entry["data"]["tasks"]["spar_tiny_gen"]["local_files"]  # sha256 of the JSONL data
    assert entry["data"]["limit"] == 3

    # a second run replays lm-eval's response cache (same model identity): same numbers
    again = tmp_path / "again"
    rc, _, err = _spar(capsys, "eval", "--benchmarks", GEN, *_include(GEN), "--model", str(tiny_model_dir),
                       "--device", "cpu", "--limit", "3", "--output", str(again))
    assert rc == 0, err
    assert json.loads((again / GEN / "metrics.json").read_text()) == gen
    assert json.loads((again / "record.json").read_text())["benchmarks"][GEN]["scorer"]["cache"] == \
        entry["scorer"]["cache"]


# ----------------------------------------------------------------------------------------------- fake backend
def test_fake_backend_answers_generation_tasks(tmp_path, capsys):
    rules = tmp_path / "rules.jsonl"
    rules.write_text("".join(json.dumps(r) + "\n" for r in RULES))
    out = tmp_path / "run"
    rc, _, err = _spar(capsys, "eval", "--benchmarks", GEN, *_include(GEN), "--model", "scripted", "--backend",
                       "fake", "--set", f"model.script={rules}", "--limit", "3", "--output", str(out))
    assert rc == 0, err
    metrics = json.loads((out / GEN / "metrics.json").read_text())
    assert metrics["exact_match,strict-match"] == pytest.approx(2 / 3)
    samples = _jsonl(out / GEN / "samples.jsonl")
    assert [s["resps"][0][0] for s in samples] == ["5", "The answer is 3.", "6"]
    assert [s["filtered_resps"][0] for s in samples] == ["5", "3", "6"]

    rc, _, err = _spar(capsys, "eval", "--benchmarks", MC, *_include(MC), "--model", "scripted", "--backend", "fake",
                       "--limit", "2", "--output", str(tmp_path / "mc"))
    line = _error(rc, err)
    assert "loglikelihood" in line and "--backend hf" in line


def test_a_group_keeps_its_aggregate_and_each_task(tmp_path, capsys):
    rules = tmp_path / "rules.jsonl"
    rules.write_text("".join(json.dumps(r) + "\n" for r in RULES))
    name, out = "lm-eval:spar_tiny_group", tmp_path / "run"
    rc, stdout, err = _spar(capsys, "eval", "--benchmarks", name, "--data", TINY, "--model", "scripted",
                            "--backend", "fake", "--set", f"model.script={rules}", "--limit", "3", "--output",
                            str(out))  # --data names the include folder too
    assert rc == 0, err
    metrics = json.loads((out / name / "metrics.json").read_text())
    assert metrics["exact_match,strict-match"] == pytest.approx(2 / 3)
    assert metrics["per_task"] == {"spar_tiny_gen": {"exact_match,strict-match": pytest.approx(2 / 3),
                                                     "exact_match_stderr,strict-match": pytest.approx(1 / 3)}}
    assert metrics["n"] == 3 and metrics["versions"]["spar_tiny_gen"] == 1.0
    data = json.loads((out / "record.json").read_text())["benchmarks"][name]["data"]
    assert data["groups"] == ["spar_tiny_group"] and list(data["tasks"]) == ["spar_tiny_gen"]
    assert "spar_tiny_gen" in stdout  # the detail table shows each task's row


# ------------------------------------------------------------------------------------------------------ errors
def test_unknown_task_is_one_line(tmp_path, capsys):
    rc, _, err = _spar(capsys, "eval", "--benchmarks", "lm-eval:spar_tiny_genn", *_include("lm-eval:spar_tiny_genn"),
                       "--model", "m", "--backend", "fake", "--output", str(tmp_path / "run"))
    line = _error(rc, err)
    assert "no lm-eval task, group or tag 'spar_tiny_genn'" in line and "spar_tiny_gen," in line  # a close match


def test_hub_dataset_offline_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "hub.yaml").write_text("task: spar_tiny_hub\ndataset_path: spar-tests/no-such-dataset\n"
                                    "test_split: test\noutput_type: generate_until\ndoc_to_text: '{{q}}'\n"
                                    "doc_to_target: '{{a}}'\nmetric_list:\n  - metric: exact_match\n")
    rc, _, err = _spar(capsys, "eval", "--benchmarks", "lm-eval:spar_tiny_hub", "--bench",
                       f"lm-eval:spar_tiny_hub.include_path={tasks}", "--model", "m", "--backend", "fake",
                       "--output", str(tmp_path / "run"))
    line = _error(rc, err)
    assert "lm-eval:spar_tiny_hub" in line and "not available offline" in line


def test_missing_local_data_file_is_named(tmp_path, monkeypatch):
    from evaluators import get_evaluator

    monkeypatch.chdir(tmp_path)  # the tiny tasks' data_files are relative to the repository root
    ev = get_evaluator(GEN, {"include_path": str(REPO / TINY)})
    with pytest.raises(SparError, match=r"a data file of lm-eval task 'spar_tiny_gen' is missing: .*arithmetic"):
        ev.load(None)


def test_vllm_backend_is_refused():
    from evaluators import get_evaluator
    from harness.core.spec import ModelSpec

    ev = get_evaluator(GEN)
    with pytest.raises(SparError, match="vllm"):
        ev._model(ModelSpec(name="m", backend="vllm"), object())


# ----------------------------------------------------------------------------------------------- openai backend
class _StubOpenAI(BaseHTTPRequestHandler):
    """GET /v1/models and POST /v1/chat/completions; answers the arithmetic questions by RULES."""

    seen: list = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

    def do_POST(self) -> None:
        import re

        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
        if self.path.endswith("/v1/completions"):  # loglikelihood: the prompt echoed with a log-probability a token
            prompts = body["prompt"] if isinstance(body["prompt"][0], list) else [body["prompt"]]
            self._send({"choices": [{"index": i, "text": "", "logprobs": {
                "token_logprobs": [None] + [-0.5] * len(p), "top_logprobs": [None] + [{"t": -0.5}] * len(p)}}
                for i, p in enumerate(prompts)]})
            return
        text = body["messages"][-1]["content"]
        reply = next(r["reply"] for r in RULES if re.search(r["match"], text))
        self._send({"id": "x", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}]})


def test_openai_backend_through_lm_eval_api_models(tiny_model_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("tenacity")  # lm-eval[api]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _StubOpenAI.seen = []
    monkeypatch.setenv("SPAR_TEST_STUB_KEY", "sk-secret-123")
    out = tmp_path / "run"
    try:
        rc, _, err = _spar(capsys, "eval", "--benchmarks", GEN, *_include(GEN), "--model", "stub-model", "--backend",
                           "openai", "--base-url", f"http://127.0.0.1:{server.server_address[1]}/v1",
                           "--api-key-env", "SPAR_TEST_STUB_KEY", "--max-concurrency", "1", "--limit", "3",
                           "--output", str(out), "--set", "cache=" + str(tmp_path / "gen.sqlite"))
        served = ("--backend", "openai", "--base-url", f"http://127.0.0.1:{server.server_address[1]}/v1")
        rc_mc, _, err_mc = _spar(capsys, "eval", "--benchmarks", MC, *_include(MC), "--model", "stub-model", *served,
                                 "--limit", "2", "--output", str(tmp_path / "mc"))
        rc_ll, _, err_ll = _spar(capsys, "eval", "--benchmarks", MC, *_include(MC), "--model", "stub-model", *served,
                                 "--bench", f"{MC}.api=completions", "--bench", f"{MC}.tokenizer={tiny_model_dir}",
                                 "--limit", "2", "--output", str(tmp_path / "ll"))
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 0, err
    metrics = json.loads((out / GEN / "metrics.json").read_text())
    assert metrics["exact_match,strict-match"] == pytest.approx(2 / 3)
    posts = [s for s in _StubOpenAI.seen if s["path"].endswith("/chat/completions")]
    assert len(posts) == 3 and all(p["auth"] == "Bearer sk-secret-123" for p in posts)
    assert posts[0]["body"]["model"] == "stub-model" and posts[0]["body"]["messages"][-1]["role"] == "user"
    record_text = (out / "record.json").read_text()
    assert "sk-secret-123" not in record_text
    scorer = json.loads(record_text)["benchmarks"][GEN]["scorer"]
    assert scorer["model"]["model"] == "local-chat-completions" and scorer["apply_chat_template"] is True
    # the chat API gives no log-probabilities: a multiple-choice task is a one-line error
    assert "local-chat-completions" in _error(rc_mc, err_mc)
    # ... which lm-eval's local-completions gives (the server echoes the prompt's log-probabilities)
    assert rc_ll == 0, err_ll
    mc = json.loads((tmp_path / "ll" / MC / "metrics.json").read_text())
    assert mc["n"] == 2 and "acc,none" in mc
    scorer = json.loads((tmp_path / "ll" / "record.json").read_text())["benchmarks"][MC]["scorer"]
    assert scorer["model"]["model"] == "local-completions"
    assert scorer["model"]["model_args"]["base_url"].endswith("/v1/completions")
