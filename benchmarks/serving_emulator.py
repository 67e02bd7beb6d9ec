"""Serving emulator (measure, do not assert): the tree search against a loopback OpenAI-compatible server that
behaves like a continuous-batching engine, lock-step against async, with the share of the engine's slots kept busy.

The emulated engine (its own process, stdlib HTTP):
- `--slots S` sequences decode together; every engine step lasts `--step-ms` for the whole batch (as a GPU decode
  step costs about the same at any batch size up to the engine's limit) plus the prefill of the sequences admitted
  in that step (`--prefill-tokens-per-step`: that many prompt tokens cost one more step). Requests beyond S wait in
  a queue and are admitted at step boundaries, first come first served; a sequence leaves its slot when it has
  decoded its length, and its answer is sent at once.
- Response lengths (tokens) are drawn from a long-tailed log-normal: median `--median-tokens`, sigma `--sigma`,
  capped at the request's `max_tokens`; each length is a function of the request (messages, seed), so both
  schedules meet the same lengths. Defaults (median 40, sigma 1.0: mean 66, p90 144, p99 410 tokens) are a real
  judge's / refiner's shape scaled down about 8x so that a run fits on a CPU.
- Texts come from the fake backend's `selfplay` script (harness/core/backends/fake.py), so judgments and refinements
  parse and the trees grow as in a real run; prompt tokens are the messages' characters / 4.
- Occupancy = busy slot-seconds / (S x the time from the run's first admission to its last answer).

The client is spar's own code: the openai backend with `--max-concurrency` requests in flight, the generation
cache (fresh for each run), `training.tree_search` with the paper's settings (BFS, branch 3, keep 2, depth 3,
5 votes, budget 15, 2048/3072 max tokens) on `--trees` roots, driven by `run_batched` (lock-step) and `run_async`.

    python benchmarks/serving_emulator.py [--trees 48] [--slots 32] [--max-concurrency 64] [--step-ms 2.5]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core.backends.fake import selfplay_reply  # noqa: E402
from harness.core.types import ChatRequest, Message  # noqa: E402


# --- the emulated engine (server process) -----------------------------------------------------------------------

@dataclass
class _Sequence:
    prompt_tokens: int
    length: int
    done: threading.Event = field(default_factory=threading.Event)
    decoded: int = 0


class Engine:
    """S slots, a fixed step time for the whole batch, a prefill cost, a FIFO queue (see the module docstring)."""

    def __init__(self, slots: int, step_s: float, prefill_tokens_per_step: int):
        self.slots, self.step_s, self.prefill_tokens_per_step = slots, step_s, prefill_tokens_per_step
        self._cond = threading.Condition()
        self._waiting: collections.deque[_Sequence] = collections.deque()
        self._active: list[_Sequence] = []
        self.reset()
        threading.Thread(target=self._loop, daemon=True).start()

    def reset(self) -> None:
        with self._cond:
            self.busy_slot_s = 0.0
            self.steps = 0
            self.first = None
            self.last = None
            self.sequences = 0
            self.tokens = 0

    def run(self, seq: _Sequence) -> None:
        with self._cond:
            self._waiting.append(seq)
            self._cond.notify()
        seq.done.wait()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._active:
                    self._cond.wait()
                admitted = 0
                while self._waiting and len(self._active) < self.slots:
                    seq = self._waiting.popleft()
                    self._active.append(seq)
                    admitted += seq.prompt_tokens
                batch = list(self._active)
            start = time.perf_counter()
            if self.first is None:
                self.first = start
            time.sleep(self.step_s * (1 + admitted / self.prefill_tokens_per_step))
            end = time.perf_counter()
            with self._cond:
                self.busy_slot_s += len(batch) * (end - start)
                self.steps += 1
                for seq in batch:
                    seq.decoded += 1
                    if seq.decoded >= seq.length:
                        self._active.remove(seq)
                        self.sequences += 1
                        self.tokens += seq.length
                        self.last = end
                        seq.done.set()

    def stats(self) -> dict:
        with self._cond:
            window = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
            occupancy = self.busy_slot_s / (self.slots * window) if window else 0.0
            return {"occupancy": occupancy, "window_s": window, "steps": self.steps, "sequences": self.sequences,
                    "tokens": self.tokens}


def draw_length(body: dict, median: float, sigma: float) -> int:
    """A long-tailed length that depends only on the request (messages and seed), capped at its max_tokens."""
    digest = hashlib.sha256(json.dumps([body["messages"], body.get("seed")], sort_keys=True).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return max(1, min(int(body.get("max_tokens") or 1 << 30), round(rng.lognormvariate(math.log(median), sigma))))


def serve(args: argparse.Namespace) -> None:
    engine = Engine(args.slots, args.step_ms / 1000, args.prefill_tokens_per_step)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16

        def _send(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._send(engine.stats() if self.path.endswith("/stats") else {"data": [{"id": "emulated"}]})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            if self.path.endswith("/reset"):
                engine.reset()
                return self._send({})
            prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
            seq = _Sequence(prompt_tokens, draw_length(body, args.median_tokens, args.sigma))
            engine.run(seq)
            request = ChatRequest(tuple(Message(m["role"], m["content"]) for m in body["messages"]),
                                  seed=int(body.get("seed") or 0))
            self._send({"choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": selfplay_reply(request, 0)}}],
                        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": seq.length}})

        def log_message(self, *a) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.request_queue_size = 1024
    print(f"PORT {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


# --- the client: spar's tree search, lock-step and async ----------------------------------------------------------

def roots(n: int) -> list:
    """`n` search roots: an instruction with countable constraints, a negative that breaks them, its critique."""
    from training.tree_search import Root

    critique = ("Step-by-step verification: the Output misses a constraint of the Prompt.\n"
                "Final Judgement (if the Output accurately follows the Prompt): No")
    return [Root(f"tree{i}", f"Write a short note about topic {i} in exactly {3 + i % 4} bullet points, without "
                 "commas.", f"A note about topic {i}, with commas, in one paragraph.", critique) for i in range(n)]


def run_search(scheduler: str, base_url: str, args: argparse.Namespace, workdir: Path) -> dict:
    import httpx

    from harness.core.backends.openai_compat import OpenAIBackend
    from harness.core.cache import GenerationCache
    from harness.core.concurrent import CompletionStream
    from harness.core.generation import GenerationStats, counting_generate
    from training.tree_search import SearchConfig, run_async, run_batched, search

    cfg = SearchConfig()  # the paper's: BFS, branch 3, keep 2, depth 3, 5 votes, budget 15
    backend = OpenAIBackend("emulated", base_url=base_url, api_key_env="", max_concurrency=args.max_concurrency,
                            max_retries=2, timeout_s=600)
    cache = GenerationCache(workdir / f"{scheduler}.sqlite")
    stats = GenerationStats()
    httpx.post(base_url + "/reset", json={})
    start = time.perf_counter()
    searches = [search(r, cfg) for r in roots(args.trees)]
    if scheduler == "async":
        with CompletionStream(backend, cache, stats) as stream:
            results = run_async(searches, stream)
    else:
        results = run_batched(searches, counting_generate(backend, cache, stats))
    wall = time.perf_counter() - start
    engine = httpx.get(base_url + "/stats").json()
    backend.close()
    cache.close()
    return {"scheduler": scheduler, "wall_s": wall, "trees": [r.to_dict() for r in results],
            "requests": stats.generated, "engine": engine}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", type=int, default=48)
    ap.add_argument("--slots", type=int, default=32, help="sequences the engine decodes together")
    ap.add_argument("--max-concurrency", type=int, default=64, help="the client's requests in flight")
    ap.add_argument("--step-ms", type=float, default=2.5, help="one decode step of the whole batch")
    ap.add_argument("--prefill-tokens-per-step", type=int, default=512,
                    help="prompt tokens whose prefill costs one more step")
    ap.add_argument("--median-tokens", type=float, default=40.0)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--schedulers", default="lockstep,async")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args)
    argv = [sys.executable, __file__, "--serve", "--slots", str(args.slots), "--step-ms", str(args.step_ms),
            "--prefill-tokens-per-step", str(args.prefill_tokens_per_step), "--median-tokens",
            str(args.median_tokens), "--sigma", str(args.sigma)]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        base_url = f"http://127.0.0.1:{port}/v1"
        print(f"engine: {args.slots} slots, {args.step_ms:g} ms per step, prefill {args.prefill_tokens_per_step} "
              f"prompt tokens per step, lengths log-normal(median {args.median_tokens:g}, sigma {args.sigma:g}) "
              f"capped at max_tokens; client: {args.max_concurrency} in flight; {args.trees} trees, BFS 3/2/3, "
              "5 votes", flush=True)
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for scheduler in args.schedulers.split(","):
                run = run_search(scheduler, base_url, args, Path(tmp))
                runs.append(run)
                e = run["engine"]
                print(f"{scheduler:>8}: wall {run['wall_s']:6.1f} s, occupancy {100 * e['occupancy']:5.1f}%, "
                      f"{e['steps']} engine steps, {e['sequences']} sequences, {e['tokens']} tokens, "
                      f"{e['tokens'] / run['wall_s']:.0f} tokens/s", flush=True)
        if len(runs) == 2:
            same = runs[0]["trees"] == runs[1]["trees"]
            print(f"identical trees: {'yes' if same else 'NO'}; {runs[0]['scheduler']} / {runs[1]['scheduler']} "
                  f"wall: {runs[0]['wall_s'] / runs[1]['wall_s']:.2f}x")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
