"""`spar run`: one SPaR iteration end to end (scripted generator, real TRL training on a tiny model), config errors,
and a run killed with SIGKILL during tree search that resumes without redoing finished work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import REPO, run_spar

FAKE = "tests.fakes:SelfPlayBackend"


def _config(tmp: Path, model: Path, llmbar: Path, **extra) -> Path:
    cfg = {"experiment": "loop-test", "output_dir": str(tmp / "exp"), "iterations": 1, "prompts": "builtin",
           "prompts_per_iteration": 6, "cache": str(tmp / "gen.sqlite"),
           "models": {"actor": str(model), "refiner": str(model), "backend": FAKE, "batch_size": 8},
           "collect": {"responses_per_prompt": 3, "votes": 3}, "search": {"votes": 3},
           "dpo": {"per_device_train_batch_size": 2, "global_batch_size": 2, "learning_rate": 1e-4,
                   "max_length": 512},
           "rft": {"num_train_epochs": 1, "per_device_train_batch_size": 4, "global_batch_size": 4,
                   "max_length": 512},
           "eval": {"actor_benchmarks": "ifeval", "refiner_benchmarks": "llmbar",
                    "data": f"ifeval=quickstart,llmbar={llmbar}", "limit": 2, "max_new_tokens": 16}}
    for key, value in extra.items():
        cfg[key] = value
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_one_iteration_end_to_end(tiny_model_dir, llmbar_dir, tmp_path):
    from harness.commands import main

    assert main(["run", str(_config(tmp_path, tiny_model_dir, llmbar_dir))]) == 0
    it = tmp_path / "exp" / "iter_1"
    record = json.loads((it / "record.json").read_text())
    assert record["status"] == "finished"
    stages = record["stages"]
    assert stages["collect"]["negatives"] == 6 and stages["collect"]["judgments"] == 54
    assert stages["search"]["passed"] + stages["search"]["failed"] == 6 and stages["search"]["passed"] > 0
    assert stages["data"]["dpo_pairs"] == stages["search"]["passed"]
    assert stages["data"]["rft_records"] == sum(stages["data"]["rft_by_source"].values()) > 0
    assert stages["train_actor"]["steps"] > 0 and stages["train_refiner"]["steps"] > 0
    assert (it / "actor" / "model.safetensors").exists() and (it / "refiner" / "model.safetensors").exists()
    assert record["models"]["actor_out"] == str(it / "actor")
    assert record["models"]["dpo_reference"] == str(tiny_model_dir)  # the paper's reading: reference = actor t
    assert set(stages["eval_actor"]["metrics"]) == {"ifeval"} and set(stages["eval_refiner"]["metrics"]) == {"llmbar"}
    assert (it / "eval" / "actor" / "ifeval" / "samples.jsonl").exists()
    pairs = [json.loads(line) for line in (it / "data" / "dpo.jsonl").read_text().splitlines()]
    searches = {s["key"]: s for s in map(json.loads, (it / "searches.jsonl").read_text().splitlines())}
    for pair in pairs:  # chosen = the node that passed, rejected = the root negative
        tree = searches[pair["key"]]
        assert pair["chosen"][0]["content"] == tree["final_node"]["response"] and tree["final_node"]["value"] > 0.5
        assert pair["rejected"][0]["content"] == tree["nodes"][0]["response"]
    summary = {row["iteration"]: row for row in json.loads((tmp_path / "exp" / "summary.json").read_text())}
    assert summary[1]["dpo_pairs"] == len(pairs) and "llmbar.overall_acc" in summary[1]
    assert summary[1]["method"] == "SPaR" and record["extra"]["method"] == "spar"
    # iteration 0: the starting actor and refiner scored by the same eval stages
    zero = json.loads((tmp_path / "exp" / "iter_0" / "record.json").read_text())
    assert zero["status"] == "finished" and zero["models"]["actor_out"] == str(tiny_model_dir)
    assert set(zero["stages"]) == {"eval_actor", "eval_refiner"} and "llmbar.overall_acc" in summary[0]
    assert "dpo_pairs" not in summary[0]


def test_bad_config_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  algorithm: astar\n")
    proc = run_spar("run", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"spar: error: {bad}:2: search.algorithm: Input should be 'bfs' or 'dfs' "
                                   "(got 'astar')")
    bad.write_text("collect:\n  votes: five\n")
    proc = run_spar("run", str(bad))
    assert proc.stderr.strip() == (f"spar: error: {bad}:2: collect.votes: Input should be a valid integer, unable "
                                   "to parse string as an integer (got 'five')")
    bad.write_text("serch:\n  votes: 3\n")
    assert f"{bad}:1: serch: unknown option" in run_spar("run", str(bad)).stderr


def _searches(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "exp" / "iter_1" / "searches.jsonl").read_text().splitlines()]


def test_killed_during_tree_search_resumes_without_redoing_work(tiny_model_dir, llmbar_dir, tmp_path):
    # an uninterrupted reference run, stopped after the search stage
    ref = tmp_path / "ref"
    ref.mkdir()
    proc = run_spar("run", str(_config(ref, tiny_model_dir, llmbar_dir, until="search")))
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref_state = json.loads((ref / "exp" / "iter_1" / "state.json").read_text())
    ref_generated = ref_state["stages"]["search"]["generation_stats"]["tree search"]["generated"]

    run = tmp_path / "run"
    run.mkdir()
    cfg = _config(run, tiny_model_dir, llmbar_dir, until="search")
    log = run / "calls.log"
    env = dict(os.environ, SPAR_FAKE_DELAY="0.3", SPAR_FAKE_CALL_LOG=str(log))
    child = subprocess.Popen([sys.executable, "-m", "harness.commands", "run", str(cfg)], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = run / "exp" / "iter_1" / "state.json"
    deadline = time.time() + 300
    calls_at_collect = None
    while time.time() < deadline and child.poll() is None:
        if calls_at_collect is None and state_path.exists():
            calls_at_collect = len(log.read_text().splitlines())  # collect finished: the search is under way
        if calls_at_collect is not None and len(log.read_text().splitlines()) >= calls_at_collect + 3:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the run finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    state = json.loads(state_path.read_text())
    assert set(state["stages"]) == {"collect"}  # killed inside the search stage
    collect_finished = state["stages"]["collect"]["finished"]

    log.write_text("")
    proc = run_spar("run", str(cfg), env={"SPAR_FAKE_CALL_LOG": str(log)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "collect already finished, skipped" in proc.stderr
    state = json.loads(state_path.read_text())
    assert state["stages"]["collect"]["finished"] == collect_finished  # not redone
    stats = state["stages"]["search"]["generation_stats"]["tree search"]
    assert stats["cache_hits"] > 0  # the batches finished before the kill came from the cache
    assert stats["generated"] + stats["cache_hits"] == ref_generated  # nothing generated twice, nothing lost
    assert _searches(run) == _searches(ref)  # and the trees equal an uninterrupted run's
