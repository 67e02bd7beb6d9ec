"""A corpus of bad inputs given to `spar` as a new user would: every case ends in one `spar: error:` line and exit code
2 (no traceback, no hang), or in a counted result that the case checks. Fast: the CLI runs in this process, with
the packaged fake backend or a stdlib server on loopback; no model loads.

Each case builds its files under `tmp` and returns the argv; `needles` must all appear in the one error line.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.commands import main

QUICK = ["--data", "quickstart", "--limit", "2", "--model", "m", "--backend", "fake"]


def _cache(tmp: Path) -> list[str]:
    return ["--cache", str(tmp / "c.sqlite")]


def _eval(tmp: Path, *extra: str) -> list[str]:
    return ["eval", *QUICK, "--output", str(tmp / "out"), *_cache(tmp), *extra]


def _yaml(tmp: Path, text: str | bytes, name: str = "c.yaml") -> str:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _run_cfg(tmp: Path, text: str) -> list[str]:
    return ["run", _yaml(tmp, text, "run.yaml")]


def _responses(tmp: Path, rows: list[Any], name: str = "r.jsonl") -> str:
    path = tmp / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def _first_prompt() -> str:
    from evaluators.ifeval import QUICKSTART_FILE

    return json.loads(QUICKSTART_FILE.read_text().splitlines()[0])["prompt"]


def _score(tmp: Path, *extra: str) -> list[str]:
    return ["score", "ifeval", "--data", "quickstart", "--output", str(tmp / "out"), *extra]


# (id, argv builder, needles)
ERRORS: list[tuple[str, Callable[[Path], list[str]], list[str]]] = [
    # ranges and types of eval options, refused before any work
    ("limit-zero", lambda t: _eval(t, "--limit", "0"), ["--limit", "greater than or equal to 1"]),
    ("limit-negative", lambda t: _eval(t, "--limit", "-3"), ["--limit", "(got '-3')"]),
    ("limit-text", lambda t: _eval(t, "--limit", "abc"), ["--limit", "valid integer"]),
    ("batch-zero", lambda t: _eval(t, "--batch-size", "0"), ["--batch-size", "model.batch_size"]),
    ("max-new-tokens-zero", lambda t: _eval(t, "--max-new-tokens", "0"), ["--max-new-tokens"]),
    ("temperature-negative", lambda t: _eval(t, "--temperature", "-1"), ["--temperature"]),
    ("temperature-nan", lambda t: _eval(t, "--temperature", "nan"), ["--temperature", "finite"]),
    ("temperature-inf", lambda t: _eval(t, "--temperature", "inf"), ["--temperature", "finite"]),
    ("top-p-zero", lambda t: _eval(t, "--top-p", "0"), ["--top-p", "greater than 0"]),
    ("top-p-above-one", lambda t: _eval(t, "--top-p", "1.5"), ["--top-p", "less than or equal to 1"]),
    ("judge-votes-zero", lambda t: _eval(t, "--judge-votes", "0"), ["--judge-votes"]),
    ("judge-temperature-nan", lambda t: _eval(t, "--judge-temperature", "nan"), ["--judge-temperature"]),
    ("max-concurrency-zero", lambda t: _eval(t, "--max-concurrency", "0"), ["--max-concurrency"]),
    ("max-retries-negative", lambda t: _eval(t, "--max-retries", "-1"), ["--max-retries"]),
    ("timeout-zero", lambda t: _eval(t, "--timeout-s", "0"), ["--timeout-s"]),
    ("timeout-nan", lambda t: _eval(t, "--timeout-s", "nan"), ["--timeout-s"]),
    ("seed-negative", lambda t: _eval(t, "--seed", "-1"), ["--seed"]),
    ("decode-unknown", lambda t: _eval(t, "--decode", "astar"), ["--decode", "'best-of-n'"]),
    ("decode-budget-zero", lambda t: _eval(t, "--budget", "0"), ["--budget", "decode.budget"]),
    ("decode-temperature-nan", lambda t: _eval(t, "--decode-temperature", "nan"), ["--decode-temperature"]),
    ("judge-parser-unknown", lambda t: _eval(t, "--judge-parser", "nope"), ["--judge-parser", "'lenient'"]),
    ("dtype-unknown", lambda t: _eval(t, "--dtype", "float8"), ["--dtype", "'bfloat16'"]),
    ("device-cuda-without-cuda", lambda t: ["eval", "--model", "m", "--device", "cuda", "--data", "quickstart",
                                            "--output", str(t / "o")], ["--device cuda", "CUDA is not available"]),
    ("device-unknown", lambda t: _eval(t, "--device", "gpu0"), ["device 'gpu0'"]),
    ("unknown-flag", lambda t: _eval(t, "--tempreature", "1"), ["unrecognized arguments", "--tempreature"]),
    # benchmark-owned options
    ("bench-bad-value", lambda t: _eval(t, "--bench", "llmbar.protocol=triwise"),
     ["--bench llmbar.protocol", "'pointwise' or 'pairwise'"]),
    ("bench-unknown-benchmark", lambda t: _eval(t, "--bench", "nope.x=1"), ["unknown benchmark 'nope'"]),
    ("bench-unknown-key", lambda t: _eval(t, "--bench", "llmbar.nope=1"), ["bench.llmbar.nope", "unknown option"]),
    ("bench-no-key", lambda t: _eval(t, "--bench", "llmbar=1"), ["expected NAME.KEY=VALUE"]),
    ("bench-bad-category", lambda t: _eval(t, "--bench", "followbench.categories=cooking"), ["cooking"]),
    ("set-range", lambda t: _eval(t, "--set", "model.batch_size=0"), ["--set model.batch_size"]),
    ("set-unknown", lambda t: _eval(t, "--set", "nope=1"), ["nope: unknown option"]),
    ("set-no-equals", lambda t: _eval(t, "--set", "model.batch_size"), ["expected key=value"]),
    ("benchmarks-unknown", lambda t: _eval(t, "--benchmarks", "nope"), ["unknown benchmark 'nope'"]),
    ("benchmarks-empty", lambda t: _eval(t, "--benchmarks", " , "), ["name at least one benchmark"]),
    ("data-two-benchmarks-unnamed", lambda t: _eval(t, "--benchmarks", "ifeval,llmbar"), ["name=source"]),
    ("data-name-not-run", lambda t: ["eval", "--model", "m", "--backend", "fake", "--data", "llmbar=x",
                                     "--output", str(t / "o")], ["does not name one of the benchmarks"]),
    # YAML configs
    ("config-missing", lambda t: ["eval", "--config", str(t / "none.yaml")], ["none.yaml", "not found"]),
    ("config-a-list", lambda t: ["eval", "--config", _yaml(t, "- 1\n- 2\n")], ["expected a mapping"]),
    ("config-unknown-key", lambda t: ["eval", "--config", _yaml(t, "model: m\nbogus: 1\n")],
     ["c.yaml:2:", "bogus: unknown option"]),
    ("config-bad-yaml", lambda t: ["eval", "--config", _yaml(t, "model: [unclosed\n")], ["not valid YAML"]),
    ("config-duplicate-key", lambda t: ["eval", "--config", _yaml(t, "model: a\nlimit: 2\nlimit: 3\n")],
     ["c.yaml:3:", "duplicate key 'limit'"]),
    ("config-not-utf8", lambda t: ["eval", "--config", _yaml(t, b"model: \xff\xfe\n")], ["not UTF-8"]),
    ("config-model-wrong-type", lambda t: ["eval", "--config", _yaml(t, "model: 3\n")], ["model role"]),
    ("config-judge-unknown-field", lambda t: ["eval", "--config", _yaml(t, "model: m\njudge: {bogus: 1}\n")],
     ["c.yaml:2:", "judge.bogus: unknown option"]),
    ("config-nested-range", lambda t: ["eval", "--config", _yaml(t, "model: m\njudging:\n  votes: 0\n")],
     ["c.yaml:3:", "judging.votes"]),
    # output and cache locations, before any model loads
    ("output-is-a-file", lambda t: _eval(t, "--output", _yaml(t, "x", "file.txt")), ["is a file"]),
    ("output-under-a-file", lambda t: _eval(t, "--output", str(t / "file2.txt" / "run")) if
     (t / "file2.txt").write_text("x") else [], ["is a file, so no folder can be made under it"]),
    ("output-not-writable", lambda t: _eval(t, "--output", "/proc/spar-cannot-write/run"), ["not writable"]),
    ("cache-is-a-folder", lambda t: _eval(t, "--cache", str(t)), ["--cache", "is a folder"]),
    ("cache-not-sqlite", lambda t: _eval(t, "--cache", _yaml(t, "just text", "c.txt")), ["not an SQLite file"]),
    ("cache-corrupt", lambda t: _eval(t, "--cache", _yaml(t, b"SQLite format 3\x00" + b"\x13" * 3000, "bad.db")),
     ["corrupt", "delete that file"]),
    ("cache-under-a-file", lambda t: _eval(t, "--cache", str(t / "f.txt" / "c.sqlite")) if
     (t / "f.txt").write_text("x") else [], ["cannot be made under it"]),
    # spar score
    ("score-no-output", lambda t: ["score", "ifeval", "--responses", _responses(t, [])], ["needs --output"]),
    ("score-no-file", lambda t: ["score", "ifeval", "--output", str(t / "o")], ["needs one file", "--responses"]),
    ("score-llmbar-no-file", lambda t: ["score", "llmbar", "--output", str(t / "o")], ["--judgments"]),
    ("score-two-files", lambda t: _score(t, "--responses", "a", "--judgments", "b"), ["not several"]),
    ("score-unknown-format", lambda t: _score(t, "--responses", _responses(t, []), "--format", "csv"),
     ["--format 'csv'"]),
    ("score-missing-file", lambda t: _score(t, "--responses", str(t / "none.jsonl")), ["none.jsonl"]),
    ("score-partial", lambda t: _score(t, "--responses", _responses(t, [{"prompt": _first_prompt(),
                                                                           "response": "x"}])),
     ["--allow-partial"]),
    ("score-duplicate-json-key", lambda t: _score(t, "--responses", _responses(
        t, ['{"prompt": "p", "response": "a", "response": "b"}'])), ["r.jsonl:1", "response"]),
    ("score-not-utf8", lambda t: _score(t, "--responses", str(t / "b.jsonl")) if
     (t / "b.jsonl").write_bytes(b'{"prompt": "\xff"}\n') else [], ["b.jsonl", "UTF-8"]),
    ("score-unknown-benchmark", lambda t: ["score", "nope", "--responses", "r", "--output", str(t / "o")],
     ["unknown benchmark 'nope'"]),
    # spar run: the whole experiment config is checked before any work
    ("run-missing", lambda t: ["run", str(t / "none.yaml")], ["none.yaml", "not found"]),
    ("run-budget-zero", lambda t: _run_cfg(t, "search:\n  budget: 0\n"), ["run.yaml:2:", "search.budget"]),
    ("run-sampling-nan", lambda t: _run_cfg(t, "collect:\n  actor_sampling: {temperature: .nan}\n"),
     ["collect.actor_sampling.temperature", "finite"]),
    ("run-top-p", lambda t: _run_cfg(t, "search:\n  judge_sampling: {top_p: 2}\n"), ["search.judge_sampling.top_p"]),
    ("run-bench-option", lambda t: _run_cfg(t, "eval:\n  bench: {llmbar: {protocol: x}}\n"),
     ["eval.bench.llmbar.protocol"]),
    ("run-pool-too-small", lambda t: _run_cfg(t, "prompts_per_iteration: 20\niterations: 2\n"),
     ["24 prompts", "need 40", "reuse_prompts"]),
    ("run-iterations-zero", lambda t: ["run", _yaml(t, "{}\n", "run.yaml"), "--iterations", "0"], ["--iterations"]),
    ("run-model-unknown-field", lambda t: _run_cfg(t, "models:\n  actor: {bogus: 1}\n"),
     ["models.actor.bogus", "unknown option"]),
    ("run-until-unknown", lambda t: ["run", _yaml(t, "{}\n", "run.yaml"), "--set", "until=nope"],
     ["--set until", "until"]),
    ("run-lineage", lambda t: _run_cfg(t, "lineage:\n  actor_init: grandparent\n"), ["lineage.actor_init"]),
    ("run-prompts-per-iteration-zero", lambda t: _run_cfg(t, "prompts_per_iteration: 0\n"),
     ["prompts_per_iteration"]),
    # issue 16: the three bad inputs, keys named where they came from, batches refused at start
    ("benchmarks-empty-string", lambda t: _eval(t, "--benchmarks", ""), ["--benchmarks", "empty", "ifeval"]),
    ("config-benchmarks-empty", lambda t: ["eval", *QUICK, "--config", _yaml(t, "benchmarks: ''\n")],
     ["c.yaml:1:", "benchmarks: empty"]),
    ("ifeval-duplicate-key", lambda t: _eval(t, "--data", _dup_key_data(t)),
     ["dup.jsonl:4:", "key 9000 appears twice (lines 1 and 4)"]),
    ("config-old-flat-layout", lambda t: ["eval", "--config", _yaml(t, "model: m\nbackend: fake\n")],
     ["c.yaml:2:", "backend: unknown option", "model: {backend: ...}"]),
    ("set-typo-suggests-key", lambda t: _eval(t, "--set", "limt=2"), ["--set limt", "did you mean limit?"]),
    ("set-nested-typo-suggests-key", lambda t: _eval(t, "--set", "judging.vots=2"),
     ["--set judging.vots", "did you mean judging.votes?"]),
    ("run-flag-key-blames-the-flag", lambda t: ["run", _yaml(t, "{}\n", "run.yaml"), "--set", "model.script=echo"],
     ["--set model.script", "did you mean models?"]),
    ("run-models-key-suggests", lambda t: ["run", _yaml(t, "{}\n", "run.yaml"), "--set", "models.scrip=echo"],
     ["--set models.scrip", "did you mean models.script?"]),
    ("run-file-key-suggests", lambda t: _run_cfg(t, "dpo:\n  betta: 0.2\n"),
     ["run.yaml:2:", "dpo.betta", "did you mean dpo.beta?"]),
    ("run-batch-names-section", lambda t: _run_cfg(t, "rft:\n  global_batch_size: 3\n"),
     ["run.yaml:2:", "rft.global_batch_size: 3 is not a multiple"]),
    ("run-batch-flag-names-section", lambda t: ["run", _yaml(t, "{}\n", "run.yaml"), "--set", "dpo.global_batch_size=5"],
     ["--set dpo.global_batch_size", "dpo.global_batch_size: 5"]),
    ("run-batch-launcher-processes", lambda t: _run_cfg(
        t, "models:\n  train_launcher: accelerate launch --num_processes 3\ndpo:\n  global_batch_size: 4\n"),
     ["run.yaml:4:", "dpo.global_batch_size 4", "2 x 3 processes", "--num_processes 3"]),
    ("run-batch-accelerate-config-file", lambda t: _run_cfg(
        t, "models:\n  train_launcher: accelerate launch --config_file " + _yaml(t, "num_processes: 5\n", "acc.yaml")),
     ["dpo.global_batch_size 32", "5 processes", "num_processes in", "acc.yaml"]),
    ("run-batch-accelerate-config-missing", lambda t: _run_cfg(
        t, "models:\n  train_launcher: accelerate launch --config_file nowhere.yaml\n"),
     ["models.train_launcher", "nowhere.yaml not found"]),
    ("fake-script-not-importable", lambda t: _eval(t, "--set", "model.script=no_such_module_x:reply"),
     ["no_such_module_x", "current directory"]),
]


def _dup_key_data(tmp: Path) -> str:
    """IFEval data whose first key is given again on line 4 (one keyed response would score against two prompts)."""
    from evaluators.ifeval import QUICKSTART_FILE

    lines = QUICKSTART_FILE.read_text().splitlines()
    path = tmp / "dup.jsonl"
    path.write_text("\n".join(lines[:3] + [lines[0]]) + "\n")
    return str(path)


@pytest.mark.parametrize("case,build,needles", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_is_one_line_error(case, build, needles, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPAR_DATA_DIR", str(tmp_path / "no-data"))  # nothing is read from the real data folder
    argv = build(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("spar: error:")]
    assert code == 2 and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "\n" not in lines[0]


def _one_error_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("spar: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("below", [False, True], ids=["file", "under-a-file"])
def test_cache_location_that_is_a_file(below, tmp_path, capsys, monkeypatch):
    """SPAR_CACHE_DIR naming a file (or a folder under one) is one line naming the variable, before any work."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("SPAR_CACHE_DIR", str(tmp_path / "afile" / "sub" if below else tmp_path / "afile"))
    line = _one_error_line(main(["eval", "--data", "quickstart", "--limit", "1", "--model", "m", "--backend", "fake",
                                 "--output", str(tmp_path / "o")]), capsys.readouterr().err)
    assert "SPAR_CACHE_DIR" in line and ("is a file" in line or "cannot be created" in line)
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_unreachable_hub_says_how_to_use_local_data(tmp_path, capsys, monkeypatch):
    """`spar score` without --data and no local copy: the one line says how to point at local data."""
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'google/IFEval' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    monkeypatch.delenv("SPAR_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    responses = _responses(tmp_path, [{"prompt": "p", "response": "r"}])
    line = _one_error_line(main(["score", "ifeval", "--responses", responses, "--output", str(tmp_path / "o")]),
                           capsys.readouterr().err)
    assert "cannot load from the hub" in line and "--data" in line and "SPAR_DATA_DIR" in line


def test_result_files_get_the_users_umask(tmp_path):
    """Atomic writes leave the mode an ordinary write would (not mkstemp's 0600); an existing file keeps its mode."""
    import os

    from harness.core import records

    path = tmp_path / "metrics.json"
    records.write_json(path, {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o666 & ~records._UMASK
    os.chmod(path, 0o640)
    records.write_json(path, {"a": 2})
    assert path.stat().st_mode & 0o777 == 0o640 and json.loads(path.read_text()) == {"a": 2}


def test_corpus_is_large():
    assert len(ERRORS) >= 60


# ---- counted results: the run goes on and says what it counted ------------------------------------------------

def test_partial_file_is_scored_and_marked_partial(tmp_path, capsys):
    responses = _responses(tmp_path, [{"prompt": _first_prompt(), "response": "x"}])
    assert main(_score(tmp_path, "--responses", responses, "--allow-partial")) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["partial"] is True and metrics["coverage"]["scored"] == 1
    assert "partial" in out.lower()


def test_skip_invalid_counts_bad_lines(tmp_path):
    rows = [{"prompt": _first_prompt(), "response": "x"}, {"prompt": "not in the data", "response": "y"}]
    assert main(_score(tmp_path, "--responses", _responses(tmp_path, rows), "--allow-partial", "--skip-invalid")) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["counts"]["excluded_lines"] == 1


def test_stale_temporary_files_are_cleaned(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".record.json.abc123.tmp"
    stale.write_text("half a file")
    assert main(_eval(tmp_path)) == 0
    assert not stale.exists()
    assert json.loads((out / "record.json").read_text())["status"] == "finished"


def _server_app(kind: str):
    from test_openai_failures import answer  # noqa: F401  (the shared fake server lives there)

    def app(req, server):
        if kind == "not-json":
            return 200, "<html>busy</html>"
        if kind == "no-choices":
            return 200, {"id": "x", "object": "chat.completion"}
        if kind == "unauthorized":
            return 401, {"error": {"message": "bad key"}}
        return 500, {"error": {"message": "boom"}}

    return app


@pytest.mark.parametrize("kind,needles", [
    ("not-json", ["not JSON"]), ("no-choices", ["choices"]), ("unauthorized", ["401", "OPENAI_API_KEY"]),
    ("server-error", ["500"])])
def test_misbehaving_server_fails_cleanly_and_the_record_says_failed(kind, needles, tmp_path, capsys, monkeypatch):
    from test_openai_failures import FakeServer

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = FakeServer(_server_app(kind))
    try:
        code = main(["eval", "--data", "quickstart", "--limit", "2", "--model", "m", "--backend", "openai",
                     "--base-url", server.url, "--max-retries", "1", "--timeout-s", "5", "--output",
                     str(tmp_path / "out"), *_cache(tmp_path)])
    finally:
        server.close()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("spar: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    if kind != "unauthorized" or record.get("status") != "running":
        assert record["status"] == "failed" and record["error"] == lines[0][len("spar: error: "):]
    assert record["schema_version"] == 1


def test_corrupt_cache_detected_on_read(tmp_path):
    db = tmp_path / "c.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.commit()
    con.close()
    assert main(_eval(tmp_path)) == 0  # an empty, valid cache is fine
