"""The asynchronous search scheduler and the concurrent generation path (harness.core.concurrent): on a deterministic
loopback server, lock-step, async and node-at-a-time build the same trees with the same request counts; answers are
cached as they arrive (a run killed with SIGKILL resumes and asks only for the rest); failures stop everything at
once; `search.scheduler: auto` picks async for a server and records it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from harness.core.backends.openai_compat import OpenAIBackend
from harness.core.cache import GenerationCache
from harness.core.concurrent import CompletionStream, server_backend, stream_generate
from harness.core.errors import SparError
from harness.core.generation import cached_generate
from harness.core.types import ChatRequest, SamplingParams
from tests.conftest import REPO
from tests.fakes import SelfPlayBackend
from tests.loopback_server import ScriptedServer, search_roots
from training.tree_search import SearchConfig, resolve_scheduler, run_async, run_batched, run_sequential, search

ROOTS = search_roots(20)


def _backend(server: ScriptedServer, concurrency: int = 8) -> OpenAIBackend:
    # pinned weights: the cache identity does not name the server's (ephemeral) port, so runs replay each other
    return OpenAIBackend("scripted", base_url=server.base_url, api_key_env="", max_concurrency=concurrency,
                         max_retries=0, timeout_s=30, model_revision="scripted-v1")


def _trees(results) -> list[dict]:
    return [r.to_dict() for r in results]


def _run(mode: str, cfg: SearchConfig, tmp_path, concurrency: int = 8) -> tuple[list[dict], int, int]:
    """One driver on a fresh server and cache: (trees, HTTP requests the server answered, most in flight)."""
    with ScriptedServer() as server:
        backend = _backend(server, concurrency)
        cache = GenerationCache(tmp_path / f"{mode}.sqlite")
        searches = [search(r, cfg) for r in ROOTS]
        if mode == "async":
            with CompletionStream(backend, cache) as stream:
                results = run_async(searches, stream)
            assert stream.peak_in_flight <= concurrency
        else:
            driver = run_batched if mode == "lockstep" else run_sequential
            results = driver(searches, lambda reqs: cached_generate(backend, reqs, cache)[0])
        backend.close()
        cache.close()
        return _trees(results), server.requests, server.peak_in_flight


@pytest.mark.parametrize("algorithm", ["bfs", "dfs"])
def test_lockstep_async_and_node_at_a_time_build_identical_trees(algorithm, tmp_path):
    cfg = SearchConfig(algorithm=algorithm, votes=3)
    lockstep, lockstep_requests, _ = _run("lockstep", cfg, tmp_path)
    asynchronous, async_requests, async_peak = _run("async", cfg, tmp_path)
    sequential, sequential_requests, sequential_peak = _run("sequential", cfg, tmp_path)
    assert asynchronous == lockstep == sequential  # nodes, texts, values, critiques, request counts per tree
    assert async_requests == lockstep_requests == sequential_requests == sum(
        t["refine_requests"] + t["judge_requests"] * cfg.votes for t in lockstep)
    assert any(t["passed"] for t in lockstep) and max(n["depth"] for t in lockstep for n in t["nodes"]) >= 2
    # node-at-a-time sends one request (its n samples) at a time; async overlapped the trees, within the limit
    assert sequential_peak <= cfg.votes < async_peak <= 8


def test_in_process_backend_through_the_stream_builds_the_same_trees(tmp_path):
    cfg = SearchConfig(votes=5)
    lockstep = run_batched([search(r, cfg) for r in ROOTS], SelfPlayBackend().generate)
    cache = GenerationCache(tmp_path / "c.sqlite")
    backend = SelfPlayBackend()
    with CompletionStream(backend, cache, max_in_flight=4) as stream:
        asynchronous = run_async([search(r, cfg) for r in ROOTS], stream)
    assert _trees(asynchronous) == _trees(lockstep)
    assert set(backend.calls) == {1}  # an in-process backend is called one request at a time
    # the answers are in the cache under cached_generate's keys: the lock-step driver replays them all
    calls = len(backend.calls)
    again = run_batched([search(r, cfg) for r in ROOTS], lambda reqs: cached_generate(backend, reqs, cache)[0])
    assert _trees(again) == _trees(lockstep) and len(backend.calls) == calls
    cache.close()


def test_stream_generate_matches_cached_generate_and_counts(tmp_path):
    requests = [ChatRequest.user(f"prompt {i}", sampling=SamplingParams(temperature=0.7), seed=i, n=3)
                for i in range(10)]
    with ScriptedServer() as server:
        backend = _backend(server, 4)
        cache = GenerationCache(tmp_path / "c.sqlite")
        seen = []
        out, stats = stream_generate(backend, requests, cache, seen.append)
        assert sum(seen) == 10 and stats.generated == 30 and stats.cache_hits == 0 and server.requests == 30
        assert stats.completion_tokens > 0 and stats.prompt_tokens > 0
        again, stats2 = cached_generate(backend, requests, cache)  # the batch path replays the same keys
        assert again == out and stats2.cache_hits == 30 and server.requests == 30
        backend.close()
        cache.close()
    with ScriptedServer() as fresh:  # and the same answers as the batch path made from scratch
        backend = _backend(fresh, 4)
        batch, _ = cached_generate(backend, requests, GenerationCache(tmp_path / "d.sqlite"))
        assert batch == out
        backend.close()


def test_a_failed_request_stops_the_search_with_one_line(tmp_path):
    with ScriptedServer(status=401) as server:
        backend = _backend(server)
        cache = GenerationCache(tmp_path / "c.sqlite")
        with pytest.raises(SparError) as err:
            with CompletionStream(backend, cache) as stream:
                run_async([search(r, SearchConfig(votes=3)) for r in ROOTS], stream)
        assert "401" in str(err.value) and server.base_url in str(err.value) and "\n" not in str(err.value)
        assert server.requests <= 8 + 8  # the queued requests were cancelled, not sent one after another
        backend.close()
        cache.close()


CHILD = """
import sys
from harness.core.backends.openai_compat import OpenAIBackend
from harness.core.cache import GenerationCache
from harness.core.concurrent import CompletionStream
from tests.loopback_server import search_roots
from training.tree_search import SearchConfig, run_async, search
backend = OpenAIBackend("scripted", base_url=sys.argv[1], api_key_env="", max_concurrency=4, max_retries=0,
                        model_revision="scripted-v1")
with CompletionStream(backend, GenerationCache(sys.argv[2])) as stream:
    run_async([search(r, SearchConfig(votes=3)) for r in search_roots(20)], stream)
"""


def test_killed_with_sigkill_resumes_from_the_answers_that_arrived(tmp_path):
    cfg = SearchConfig(votes=3)
    reference, full_requests, _ = _run("async", cfg, tmp_path)
    cache_path = tmp_path / "killed.sqlite"
    with ScriptedServer(max_delay_s=0.02) as server:
        child = subprocess.Popen([sys.executable, "-c", CHILD, server.base_url, str(cache_path)], cwd=REPO,
                                 env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while server.requests < full_requests // 3 and child.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert child.poll() is None, f"the search ended before it was killed: {child.stderr.read()[-2000:]!r}"
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
        sent = server.requests
    cache = GenerationCache(cache_path)
    kept = len(cache)
    # answers were written as they came back: only those in flight or not yet taken off the queue were lost
    assert sent // 2 <= kept <= sent
    with ScriptedServer() as server:
        backend = _backend(server)
        with CompletionStream(backend, cache) as stream:
            resumed = run_async([search(r, cfg) for r in ROOTS], stream)
        assert _trees(resumed) == reference
        assert server.requests == full_requests - kept  # only what was missing was asked for
        backend.close()
    cache.close()


def test_auto_scheduler_is_async_for_servers_and_lockstep_in_process():
    with ScriptedServer() as server:
        backend = _backend(server)
        assert server_backend(backend) and resolve_scheduler("auto", backend) == "async"
        assert resolve_scheduler("lockstep", backend) == "lockstep"
        backend.close()
    fake = SelfPlayBackend()
    assert not server_backend(fake) and resolve_scheduler("auto", fake) == "lockstep"
    assert resolve_scheduler("async", fake) == "async"


def test_spar_run_collects_and_searches_through_the_concurrent_path(tmp_path, monkeypatch):
    import training.loop
    from harness.commands import main

    streamed = []

    def spy(backend, requests, *args, **kw):
        streamed.append(len(requests))
        return stream_generate(backend, requests, *args, **kw)

    monkeypatch.setattr(training.loop, "stream_generate", spy)
    with ScriptedServer() as server:
        cfg = {"experiment": "async", "output_dir": str(tmp_path / "exp"), "iterations": 1, "prompts": "builtin",
               "prompts_per_iteration": 6, "cache": str(tmp_path / "gen.sqlite"), "until": "search",
               "models": {"actor": "scripted", "refiner": "scripted", "backend": "openai",
                          "base_url": server.base_url, "api_key_env": "", "max_concurrency": 6},
               "collect": {"responses_per_prompt": 3, "votes": 3}, "search": {"votes": 3},
               "eval": {"iteration0": False}}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert main(["run", str(path)]) == 0
        assert 1 < server.peak_in_flight <= 6
    stages = json.loads((tmp_path / "exp" / "iter_1" / "record.json").read_text())["stages"]
    assert stages["collect"]["judgments"] == 54
    assert streamed == [6, 18]  # collection's sampling and judging took the concurrent path
    search_stage = stages["search"]
    assert search_stage["scheduler"] == "async" and search_stage["max_in_flight"] == 6
    assert search_stage["searches"] == stages["collect"]["negatives"] > 0
    assert search_stage["generation_stats"]["tree search"]["generated"] > 0


def test_a_bad_scheduler_is_a_one_line_error(tmp_path, capsys):
    from harness.commands import main

    path = tmp_path / "config.yaml"
    path.write_text("search:\n  scheduler: fast\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"spar: error: {path}:2: search.scheduler: Input should be 'auto', 'lockstep' or 'async'")
    assert "\n" not in err


def test_ctrl_c_stops_the_calls_in_flight_and_sends_no_more(tmp_path):
    with ScriptedServer(max_delay_s=0.5) as server:
        backend = _backend(server, 4)
        with pytest.raises(KeyboardInterrupt):
            with CompletionStream(backend, GenerationCache(tmp_path / "c.sqlite")) as stream:
                for i in range(40):
                    stream.submit(i, [ChatRequest.user(f"prompt {i}", seed=i)])
                while server.requests == 0:
                    time.sleep(0.01)
                raise KeyboardInterrupt
        time.sleep(0.6)  # calls already started may still reach the server; queued ones never do
        assert 1 <= server.requests <= 4  # the limit in flight: the 36 queued calls were cancelled
        backend.close()


def test_answers_that_arrived_are_cached_when_the_block_is_left_with_an_exception(tmp_path):
    """Ctrl-C while the caller is busy (answers in, not yet taken by wait()): they are written all the same."""
    cache = GenerationCache(tmp_path / "c.sqlite")
    backend = SelfPlayBackend()
    requests = [ChatRequest.user(f"prompt {i}", seed=i) for i in range(4)]
    with pytest.raises(KeyboardInterrupt):
        with CompletionStream(backend, cache, max_in_flight=4) as stream:
            stream.submit("all", requests)
            deadline = time.monotonic() + 30
            while stream._answers.qsize() < 4 and time.monotonic() < deadline:  # every answer in, none taken
                time.sleep(0.01)
            raise KeyboardInterrupt
    _, stats = cached_generate(backend, requests, cache)
    assert stats.cache_hits == 4 and stats.generated == 0
