"""Methods on the shared driver: a method added in one file with one register call, SPaR's config forms, the
Self-/Meta-Rewarding pair rules checked from the files a run writes (packaged fake backend, and a stdlib
OpenAI-compatible server), a run killed during judging that resumes without regenerating, a full Meta-Rewarding
iteration with training and eval, and the Table 4 ablations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_spar

REWARDING = "tests.rewarding_fake:RewardingBackend"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(tmp: Path, cfg: dict, name: str = "config.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _base(tmp: Path, method: str, models: dict, **extra) -> dict:
    cfg = {"method": method, "experiment": f"{method}-test", "output_dir": str(tmp / "exp"), "iterations": 1,
           "prompts": "builtin", "prompts_per_iteration": 6, "cache": str(tmp / "gen.sqlite"), "models": models,
           "eval": {"actor_benchmarks": "", "refiner_benchmarks": ""}}
    cfg.update(extra)
    return cfg


FAKE_MODELS = {"actor": "fake-model", "backend": "fake", "script": "tests.rewarding_fake:reply", "batch_size": 4}
SR = {"candidates": 4, "judgments": 3}
MR = {"candidates": 5, "judgments": 5, "length_control": 0.4}


# -- the pair rules, checked from judged.jsonl and data/pairs.jsonl alone --------------------------------------------

def _judged(it: Path) -> dict[str, list[dict]]:
    from evaluators.score_judge import parse_score_strict

    groups: dict[str, list[dict]] = {}
    for row in _rows(it / "judged.jsonl"):
        assert [parse_score_strict(t) for t in row["judgments"]] == row["scores"]  # null where unparseable
        valid = [s for s in row["scores"] if s is not None]
        assert row["mean_score"] == (pytest.approx(sum(valid) / len(valid)) if valid else None)  # never a 0
        groups.setdefault(row["key"], []).append(row)
    return groups


def check_self_rewarding(it: Path) -> dict:
    judged = _judged(it)
    pairs = {p["key"]: p for p in _rows(it / "data" / "pairs.jsonl")}
    assert all(p["kind"] == "actor" for p in pairs.values())
    ties = 0
    for key, cands in judged.items():
        means = [c["mean_score"] for c in cands if c["mean_score"] is not None]
        if len(means) < 2 or max(means) == min(means):
            ties += len(means) >= 2
            assert key not in pairs  # extremes tie: the prompt is dropped
            continue
        best = [c["response"] for c in cands if c["mean_score"] == max(means)]
        worst = [c["response"] for c in cands if c["mean_score"] == min(means)]
        if best[0] == worst[0]:  # the same text at both ends carries no preference: dropped
            assert key not in pairs
            continue
        pair = pairs[key]
        assert pair["chosen_score"] == max(means) and pair["rejected_score"] == min(means)
        assert pair["chosen"] in [c["response"] for c in cands if c["mean_score"] == max(means)]
        assert pair["rejected"] in [c["response"] for c in cands if c["mean_score"] == min(means)]
    return {"pairs": len(pairs), "ties": ties}


def check_meta_rewarding(it: Path, rho: float, max_words: int = 150) -> dict:
    judged = _judged(it)
    pairs = _rows(it / "data" / "pairs.jsonl")
    actor = {p["key"]: p for p in pairs if p["kind"] == "actor"}
    judge = [p for p in pairs if p["kind"] == "judge"]
    for key, pair in actor.items():  # length control
        cands = [c for c in judged[key] if c["mean_score"] is not None]
        s_max, s_min = max(c["mean_score"] for c in cands), min(c["mean_score"] for c in cands)
        assert s_max > s_min
        high = [c for c in cands if c["mean_score"] >= (1 - rho) * s_max + rho * s_min - 1e-9]
        low = [c for c in cands if c["mean_score"] <= (1 - rho) * s_min + rho * s_max + 1e-9]
        assert pair["chosen"] in [c["response"] for c in high] and pair["rejected"] in [c["response"] for c in low]
        assert len(pair["chosen"]) == min(len(c["response"]) for c in high)  # the shortest good one
        assert len(pair["rejected"]) == max(len(c["response"]) for c in low)  # the longest bad one
        assert pair["chosen_score"] > pair["rejected_score"]
    for pair in judge:  # from the highest-variance response
        cands = judged[pair["key"]]

        def var(c):
            v = [s for s in c["scores"] if s is not None]
            return sum((s - sum(v) / len(v)) ** 2 for s in v) / len(v) if len(v) >= 2 else -1

        top = max(var(c) for c in cands)
        target = next(c for c in cands if c["index"] == pair["response_index"])
        assert var(target) == pytest.approx(top) and target["response"] == pair["response"]
        assert pair["variance"] == pytest.approx(top)
        for side in ("chosen", "rejected"):
            j = pair[f"{side}_judgment"]
            assert target["judgments"][j] == pair[side] and target["scores"][j] is not None
            assert len(pair[side].split()) <= max_words  # over-long judgments are filtered
        assert pair["chosen_score"] > pair["rejected_score"]  # Elo
        assert pair["chosen_score"] == max(pair["elo"].values()) and pair["rejected_score"] == min(pair["elo"].values())
    return {"actor": len(actor), "judge": len(judge)}


def test_self_rewarding_pairs_obey_the_rule(tmp_path, capsys):
    from harness.commands import main

    cfg = _write(tmp_path, _base(tmp_path, "self_rewarding", FAKE_MODELS, self_rewarding=SR, until="data"))
    assert main(["run", str(cfg)]) == 0
    assert "no complete iteration to summarise (until=data)" in " ".join(capsys.readouterr().out.split())
    it = tmp_path / "exp" / "iter_1"
    found = check_self_rewarding(it)
    stages = json.loads((it / "record.json").read_text())["stages"]
    assert stages["judge"]["candidates"] == 24 and stages["judge"]["judgments"] == 72
    assert stages["judge"]["unparseable_judgments"] == sum(s is None for r in _rows(it / "judged.jsonl")
                                                             for s in r["scores"]) > 0
    assert sum(stages["judge"]["score_histogram"].values()) == 72 - stages["judge"]["unparseable_judgments"]
    data = stages["data"]
    assert data["pairs"] == found["pairs"] > 0 and data["pairs_by_kind"] == {"actor": found["pairs"]}
    assert data["tie_dropped_prompts"] == found["ties"]
    assert data["mean_chosen_chars"] is not None and "train_actor" not in stages
    dpo = _rows(it / "data" / "dpo.jsonl")
    assert len(dpo) == data["pairs"] and dpo[0]["prompt"][0]["role"] == "user"


def test_meta_rewarding_pairs_obey_the_rules(tmp_path):
    from harness.commands import main

    cfg = _write(tmp_path, _base(tmp_path, "meta_rewarding", FAKE_MODELS, meta_rewarding=MR, until="data"))
    assert main(["run", str(cfg)]) == 0
    it = tmp_path / "exp" / "iter_1"
    found = check_meta_rewarding(it, 0.4)
    assert found["actor"] > 0 and found["judge"] > 0
    stages = json.loads((it / "record.json").read_text())["stages"]
    meta = stages["meta_judge"]
    assert meta["meta_judgments"] == sum(len(r["battles"]) for r in _rows(it / "meta_judged.jsonl"))
    for row in _rows(it / "meta_judged.jsonl"):  # every pair of kept judgments, in both orders
        k = len(row["judgments"])
        assert len(row["battles"]) == k * (k - 1)
        assert {(b["first"], b["second"]) for b in row["battles"]} == {(m, n) for m in row["judgments"]
                                                                         for n in row["judgments"] if m != n}
    data = stages["data"]
    assert data["pairs_by_kind"] == {"actor": found["actor"], "judge": found["judge"]}
    w1, w2 = data["judge"]["omega1"], data["judge"]["omega2"]
    assert w1 == pytest.approx(meta["second_wins"] / (meta["first_wins"] + meta["second_wins"]))
    assert w1 + w2 == pytest.approx(1.0)
    assert len(_rows(it / "data" / "dpo.jsonl")) == found["actor"] + found["judge"]  # one DPO run, both kinds


def test_meta_rewarding_schedule_and_rho_0(tmp_path):
    from harness.commands import main

    # iteration 1 outside judge_pair_iterations: actor pairs only; rho 0 is Self-Rewarding's selection
    cfg = _write(tmp_path, _base(tmp_path, "meta_rewarding", FAKE_MODELS, until="data",
                                 meta_rewarding={**MR, "length_control": 0.0, "judge_pair_iterations": [2]}))
    assert main(["run", str(cfg)]) == 0
    it = tmp_path / "exp" / "iter_1"
    assert check_meta_rewarding(it, 0.0)["judge"] == 0
    stages = json.loads((it / "record.json").read_text())["stages"]
    assert "skipped" in stages["meta_judge"] and stages["data"]["pairs_by_kind"]["judge"] == 0
    for pair in _rows(it / "data" / "pairs.jsonl"):
        means = [c["mean_score"] for c in _judged(it)[pair["key"]] if c["mean_score"] is not None]
        assert (pair["chosen_score"], pair["rejected_score"]) == (max(means), min(means))


# -- an OpenAI-compatible server (stdlib) ----------------------------------------------------------------------------

class _Server:
    """/v1/models and /v1/chat/completions answered by tests.rewarding_fake.reply (seed and messages decide)."""

    def __init__(self) -> None:
        from harness.core.types import ChatRequest, Message
        from tests.rewarding_fake import reply

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send({"object": "list", "data": [{"id": "served"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                req = ChatRequest(tuple(Message(m["role"], m["content"]) for m in body["messages"]),
                                  seed=body["seed"])
                self._send({"choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": reply(req, 0)}}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_both_methods_over_an_openai_compatible_server(tmp_path):
    from harness.commands import main

    server = _Server()
    try:
        models = {"actor": "served", "backend": "openai", "base_url": server.url, "batch_size": 8}
        for method, opts, check in (("self_rewarding", SR, check_self_rewarding),
                                    ("meta_rewarding", MR, lambda it: check_meta_rewarding(it, 0.4))):
            folder = tmp_path / method
            folder.mkdir()
            cfg = _write(folder, _base(folder, method, models, **{method: opts}))
            assert main(["run", str(cfg), "--set", "until=data"]) == 0
            it = folder / "exp" / "iter_1"
            assert (it / "judged.jsonl").exists() and (it / "data" / "pairs.jsonl").exists()
            found = check(it)
            assert (found.get("pairs") or found.get("actor")) > 0
    finally:
        server.close()


# -- resume after SIGKILL during judging -----------------------------------------------------------------------------

def test_killed_during_judging_resumes_without_regenerating(tiny_model_dir, tmp_path):
    models = {"actor": str(tiny_model_dir), "backend": REWARDING, "batch_size": 4}

    def config(folder: Path) -> Path:
        folder.mkdir()
        return _write(folder, _base(folder, "self_rewarding", models, self_rewarding=SR, until="data"))

    ref = tmp_path / "ref"
    proc = run_spar("run", str(config(ref)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref_judge = json.loads((ref / "exp" / "iter_1" / "state.json").read_text())["stages"]["judge"]
    ref_generated = ref_judge["generation_stats"]["judgments"]["generated"]

    run = tmp_path / "run"
    cfg = config(run)
    log = run / "calls.log"
    log.write_text("")
    env = dict(os.environ, SPAR_FAKE_DELAY="0.3", SPAR_FAKE_CALL_LOG=str(log))
    child = subprocess.Popen([sys.executable, "-m", "harness.commands", "run", str(cfg)], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = run / "exp" / "iter_1" / "state.json"
    deadline = time.time() + 300
    calls_at_sample = None
    while time.time() < deadline and child.poll() is None:
        if calls_at_sample is None and state_path.exists():
            calls_at_sample = len(log.read_text().splitlines())  # sampling finished: judging is under way
        if calls_at_sample is not None and len(log.read_text().splitlines()) >= calls_at_sample + 3:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the run finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    state = json.loads(state_path.read_text())
    assert set(state["stages"]) == {"sample"}  # killed inside the judge stage
    sampled = state["stages"]["sample"]["finished"]

    proc = run_spar("run", str(cfg))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sample already finished, skipped" in proc.stderr
    state = json.loads(state_path.read_text())
    assert state["stages"]["sample"]["finished"] == sampled  # not redone
    stats = state["stages"]["judge"]["generation_stats"]["judgments"]
    assert stats["cache_hits"] > 0  # the judgments finished before the kill came from the cache
    assert stats["generated"] + stats["cache_hits"] == ref_generated  # nothing generated twice, nothing lost
    assert stats["generated"] < ref_generated
    assert _rows(run / "exp" / "iter_1" / "judged.jsonl") == _rows(ref / "exp" / "iter_1" / "judged.jsonl")
    assert _rows(run / "exp" / "iter_1" / "data" / "pairs.jsonl") == _rows(ref / "exp" / "iter_1" / "data" /
                                                                            "pairs.jsonl")


# -- a full iteration: training and eval, iteration 0, the record ----------------------------------------------------

def test_meta_rewarding_iteration_trains_scores_and_records(tiny_model_dir, llmbar_dir, tmp_path):
    from harness.commands import main

    models = {"actor": str(tiny_model_dir), "backend": REWARDING, "batch_size": 8}
    cfg = _base(tmp_path, "meta_rewarding", models, meta_rewarding=MR,
                dpo={"per_device_train_batch_size": 2, "global_batch_size": 2, "learning_rate": 1e-4,
                     "max_length": 512},
                eval={"actor_benchmarks": "ifeval", "refiner_benchmarks": "llmbar",
                      "data": f"ifeval=quickstart,llmbar={llmbar_dir}", "limit": 2, "max_new_tokens": 16})
    path = _write(tmp_path, cfg)
    assert main(["run", str(path)]) == 0
    exp = tmp_path / "exp"
    record = json.loads((exp / "iter_1" / "record.json").read_text())
    assert record["status"] == "finished" and record["extra"]["method"] == "meta_rewarding"
    assert record["config"]["method"] == "meta_rewarding" and record["config"]["method_config"]["judgments"] == 5
    assert record["config"]["eval"]["bench"]["llmbar"] == {"judge_prompt": "score5", "score_threshold": 4.0}
    stages = record["stages"]
    assert set(stages) == {"sample", "judge", "meta_judge", "data", "train_actor", "eval_actor", "eval_refiner"}
    assert stages["train_actor"]["steps"] > 0 and stages["train_actor"]["pairs"] == stages["data"]["pairs"]
    assert record["models"]["refiner_out"] == record["models"]["actor_out"] == str(exp / "iter_1" / "actor")
    assert record["models"]["judge"] == "actor"
    samples = _rows(exp / "iter_1" / "eval" / "refiner" / "llmbar" / "samples.jsonl")
    assert all("scores" in s for s in samples)  # the judge was scored with the 5-point prompt
    summary = {row["iteration"]: row for row in json.loads((exp / "summary.json").read_text())}
    assert set(summary) == {0, 1} and summary[0]["method"] == summary[1]["method"] == "Meta-Rewarding"
    assert summary[1]["judge_pairs"] == stages["data"]["pairs_by_kind"]["judge"]
    assert summary[1]["dpo_loss"] == stages["train_actor"]["train_loss"] and "llmbar.overall_acc" in summary[0]
    assert record["extra"]["summary"] == summary[1]
    zero = json.loads((exp / "iter_0" / "record.json").read_text())
    assert zero["models"]["refiner_out"] == zero["models"]["actor_out"] == str(tiny_model_dir)
    # again: everything, iteration 0 included, is skipped
    proc = run_spar("run", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "iter 0: eval_actor already finished, skipped" in proc.stderr
    assert "iter 1: train_actor already finished, skipped" in proc.stderr
    assert "Meta-Rewarding" in proc.stdout


# -- a method added in a test: one file's worth of code, one register call -------------------------------------------

from harness.core.options import option, options  # noqa: E402
from harness.core.types import ChatRequest, Message, SamplingParams  # noqa: E402
from training.methods import Method, register  # noqa: E402


@options
class EchoPairsConfig:
    """A toy method: two samples per prompt, the longer one is preferred."""

    samples: int = option(2, "samples per prompt")


def _toy_data(run) -> dict:
    reqs = [ChatRequest((Message("user", text),), SamplingParams(temperature=1.0, max_new_tokens=16),
                        seed=run.iteration_seed, n=run.options.samples) for _, text in run.prompts]
    pairs = []
    for (key, text), comps in zip(run.prompts, run.generate(run.actor, "toy samples")(reqs)):
        a, b = sorted((c.text for c in comps), key=len)[-1], sorted((c.text for c in comps), key=len)[0]
        if a != b:
            pairs.append({"key": key, "prompt": [{"role": "user", "content": text}],
                          "chosen": [{"role": "assistant", "content": a}],
                          "rejected": [{"role": "assistant", "content": b}]})
    run.write_training_data("dpo", pairs)
    return {"pairs": len(pairs)}


TOY = register(Method(name="toy_longest", label="Toy", Config=EchoPairsConfig, stages=(("pairs", _toy_data),),
                      judge="actor", summary=lambda s: {"pairs": s["pairs"]["pairs"]}))


def test_a_method_added_with_one_register_call(tiny_model_dir, tmp_path):
    from harness.commands import main

    models = {"actor": str(tiny_model_dir), "backend": "tests.fakes:SelfPlayBackend", "batch_size": 8}
    cfg = _write(tmp_path, _base(tmp_path, "toy_longest", models, toy_longest={"samples": 3},
                                 dpo={"per_device_train_batch_size": 2, "global_batch_size": 2, "max_length": 256}))
    assert main(["run", str(cfg)]) == 0
    record = json.loads((tmp_path / "exp" / "iter_1" / "record.json").read_text())
    assert record["extra"]["method"] == "toy_longest" and record["config"]["method_config"] == {"samples": 3}
    assert list(record["stages"]) == ["pairs", "train_actor", "eval_actor", "eval_refiner"]
    assert record["stages"]["train_actor"]["pairs"] == record["stages"]["pairs"]["pairs"] > 0
    summary = json.loads((tmp_path / "exp" / "summary.json").read_text())
    assert summary[-1]["pairs"] == record["stages"]["pairs"]["pairs"] and summary[-1]["method"] == "Toy"
    from harness.core.errors import SparError
    from training.config import load_run_config

    bad = _write(tmp_path, {"method": "toy_longest", "toy_longest": {"sample": 3}}, "bad.yaml")
    with pytest.raises(SparError, match="bad.yaml:3: toy_longest.sample: unknown option"):
        load_run_config(str(bad))


# -- config forms ----------------------------------------------------------------------------------------------------

def test_spar_options_flat_or_in_a_section_are_the_same():
    from harness.core.errors import SparError
    from training.config import load_run_config

    flat = load_run_config(str(REPO / "configs" / "spar-smollm2-cpu.yaml"))
    data = yaml.safe_load((REPO / "configs" / "spar-smollm2-cpu.yaml").read_text())
    spar = {k: data.pop(k) for k in ("collect", "search", "data") if k in data}
    for section in ("spar", "method_config"):
        path = REPO / ".pytest-section.yaml"
        try:
            path.write_text(yaml.safe_dump({**data, section: spar}))
            assert load_run_config(str(path)).method_config == flat.method_config
        finally:
            path.unlink()
    assert flat.method == "spar" and flat.method_config.search.max_depth == 2
    with pytest.raises(SparError, match="given twice"):
        load_run_config(str(REPO / "configs" / "spar-smollm2-cpu.yaml"), ["spar.search.votes=3"])
    with pytest.raises(SparError, match="an option of method spar"):
        load_run_config(str(REPO / "configs" / "spar-smollm2-cpu.yaml"), ["method=self_rewarding"])
    with pytest.raises(SparError, match="judges with the actor itself"):
        load_run_config(None, ["method=self_rewarding", "models.actor=a", "models.refiner=b"])


@pytest.mark.parametrize("name", ["self-rewarding-smollm2-cpu", "meta-rewarding-smollm2-cpu",
                                  "self-rewarding-llama3-8b", "meta-rewarding-llama3-8b",
                                  "ablation-no-iterative-training-smollm2-cpu",
                                  "ablation-no-refiner-training-smollm2-cpu", "ablation-no-tree-search-smollm2-cpu",
                                  "ablation-no-refinement-smollm2-cpu"])
def test_shipped_method_configs_load(name):
    from training.config import load_run_config
    from training.loop import check_prompts

    cfg = load_run_config(str(REPO / "configs" / f"{name}.yaml"))
    if "smollm2" in name:
        check_prompts(cfg)
    expected = {"self": "self_rewarding", "meta": "meta_rewarding"}.get(name.split("-")[0])
    if expected:
        assert cfg.method == expected and cfg.eval.bench["llmbar"]["judge_prompt"] == "score5"
        assert cfg.models.refiner == cfg.models.actor
    if "llama3" in name:  # like-for-like with SPaR's paper config
        spar = load_run_config(str(REPO / "configs" / "spar-llama3-8b.yaml"))
        for key in ("prompts", "prompts_per_iteration", "iterations", "seed"):
            assert getattr(cfg, key) == getattr(spar, key), key
        assert (cfg.eval.actor_benchmarks, cfg.eval.max_new_tokens) == (spar.eval.actor_benchmarks,
                                                                        spar.eval.max_new_tokens)
        assert cfg.models.actor == spar.models.actor and cfg.models.train_launcher == spar.models.train_launcher
        assert cfg.dpo.beta == spar.dpo.beta and cfg.dpo.max_length == spar.dpo.max_length


# -- Table 4 ablations -----------------------------------------------------------------------------------------------

SELFPLAY = "tests.fakes:SelfPlayBackend"


def _spar(tmp: Path, model: Path, **extra) -> dict:
    return _base(tmp, extra.pop("method", "spar"), {"actor": str(model), "refiner": str(model), "backend": SELFPLAY,
                                                    "batch_size": 8},
                 collect={"responses_per_prompt": 3, "votes": 3}, **extra)


def test_ablation_no_refinement_pairs_come_from_the_collect_stage(tiny_model_dir, tmp_path):
    from harness.commands import main

    cfg = _spar(tmp_path, tiny_model_dir, method="spar_no_refinement", until="data")
    cfg["models"] = {"actor": "fake", "refiner": "fake", "backend": "fake",
                     "script": "tests.rewarding_fake:selfplay_even"}
    assert main(["run", str(_write(tmp_path, cfg))]) == 0
    it = tmp_path / "exp" / "iter_1"
    assert not (it / "searches.jsonl").exists()
    collected = {c["key"]: c for c in _rows(it / "collected.jsonl")}
    pairs = _rows(it / "data" / "dpo.jsonl")
    assert pairs
    for pair in pairs:
        key, neg = pair["key"].rsplit("#", 1)
        c = collected[key]
        assert int(neg) in c["negatives"] and pair["rejected"][0]["content"] == c["responses"][int(neg)]["response"]
        chosen = c["responses"][pair["chosen_index"]]
        assert chosen["label"] == 1 and pair["chosen"][0]["content"] == chosen["response"]  # sampled, majority Yes
    record = json.loads((it / "record.json").read_text())
    assert record["extra"]["label"] == "SPaR w/o refinement"
    assert {r["source"] for r in _rows(it / "data" / "rft.jsonl")} <= {"collect_yes", "collect_no"}


@pytest.mark.parametrize("reading", ["single", "chain"])
def test_ablation_no_tree_search_refines_each_negative_without_search(tiny_model_dir, tmp_path, reading):
    """w/o Tree Search: one refinement of each negative, judged, kept if it passes (`single`); or a greedy chain
    of single refinements (`chain`): never two children of one node."""
    from harness.commands import main

    cfg = _spar(tmp_path, tiny_model_dir, method="spar_no_tree_search", until="data",
                refine_without_search=reading, search={"max_depth": 3, "branch": 3, "votes": 3})
    cfg["models"] = {"actor": "fake", "refiner": "fake", "backend": "fake",
                     "script": "tests.rewarding_fake:selfplay_even"}
    assert main(["run", str(_write(tmp_path, cfg))]) == 0
    it = tmp_path / "exp" / "iter_1"
    trees = _rows(it / "searches.jsonl")
    assert trees and len(trees) == sum(len(c["negatives"]) for c in _rows(it / "collected.jsonl"))
    for tree in trees:
        parents = [n["parent"] for n in tree["nodes"] if n["parent"] is not None]
        assert len(parents) == len(set(parents))  # at most one child per node: no branching, no selection
        assert max(n["depth"] for n in tree["nodes"]) <= (1 if reading == "single" else 3)
        assert not tree["passed"] or tree["nodes"][tree["final"]]["value"] > 0.5
    assert reading == "chain" or all(len(t["nodes"]) <= 2 for t in trees)
    assert any(len(t["nodes"]) > 1 for t in trees)  # refinements were made and judged
    pairs = _rows(it / "data" / "dpo.jsonl")
    assert len(pairs) == sum(t["passed"] for t in trees)
    record = json.loads((it / "record.json").read_text())
    assert record["extra"]["label"] == "SPaR w/o tree search"
    assert record["config"]["method_config"]["refine_without_search"] == reading
    search = record["stages"]["search"]
    assert search["refine_without_search"] == reading and search["search_settings"]["branch"] == 1


def test_ablations_no_iterative_and_no_refiner_training(tiny_model_dir, tmp_path):
    from harness.commands import main

    rft = {"num_train_epochs": 1, "per_device_train_batch_size": 2, "global_batch_size": 2, "max_length": 256}
    dpo = {"per_device_train_batch_size": 2, "global_batch_size": 2, "max_length": 256}
    # w/o iterative training: 2 iterations x 3 prompts become one iteration over 6
    one = tmp_path / "one"
    one.mkdir()
    cfg = _spar(one, tiny_model_dir, iterations=2, prompts_per_iteration=3, ablation="no_iterative_training",
                until="collect")
    assert main(["run", str(_write(one, cfg))]) == 0
    assert len(_rows(one / "exp" / "iter_1" / "collected.jsonl")) == 6 and not (one / "exp" / "iter_2").exists()
    record = json.loads((one / "exp" / "iter_1" / "record.json").read_text())
    assert record["extra"]["ablation"] == "no_iterative_training"
    assert record["extra"]["label"] == "SPaR w/o iterative training" and record["config"]["iterations"] == 2
    # w/o refiner training: the refiner stays the starting one
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    cfg = _spar(fixed, tiny_model_dir, ablation="no_refiner_training", until="train_refiner", dpo=dpo, rft=rft,
                search={"votes": 3, "max_depth": 1, "budget": 3})
    assert main(["run", str(_write(fixed, cfg))]) == 0
    record = json.loads((fixed / "exp" / "iter_1" / "record.json").read_text())
    assert "ablation no_refiner_training" in record["stages"]["train_refiner"]["skipped"]
    assert record["models"]["refiner_out"] == str(tiny_model_dir)
    assert not (fixed / "exp" / "iter_1" / "refiner").exists()
    assert record["extra"]["label"] == "SPaR w/o refiner training"
    from harness.core.errors import SparError
    from training.config import load_run_config

    with pytest.raises(SparError, match="trains a refiner"):
        load_run_config(None, ["method=self_rewarding", "ablation=no_refiner_training"])


def test_summary_row_shows_how_many_judgments_had_no_verdict():
    # a judge that never gives a readable verdict scores 0 on LLMBar; the row says why instead of a bare 0
    from training.loop import summary_row

    metrics = {"overall_acc": 0.0, "counts": {"judgments": 50, "no_verdict": 48}}
    record = {"iteration": 0, "extra": {"method": "self_rewarding"},
              "stages": {"eval_refiner": {"metrics": {"llmbar": metrics}}}}
    row = summary_row(record)
    assert row["llmbar.overall_acc"] == 0.0 and row["llmbar.no_verdict_rate"] == pytest.approx(0.96)
    metrics["counts"]["no_verdict"] = 0
    assert "llmbar.no_verdict_rate" not in summary_row(record)
