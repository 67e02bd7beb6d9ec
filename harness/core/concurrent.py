"""Requests answered as they finish: the concurrent generation path for server backends.

`harness.core.generation.cached_generate` hands the backend whole batches and returns when the slowest request of each
is done. A continuous-batching server (vLLM, `transformers serve`, TGI, SGLang) stays full only if requests keep
arriving, so callers that can use answers a group at a time (the asynchronous tree search, collection and the
baselines' sampling and judging when the backend is a server) submit groups of requests to a `CompletionStream`
and take each group back as soon as all its samples are in.

- At most `max_in_flight` backend calls run at once (worker threads, first submitted first sent). A backend with
  `sample(request, index, abort)` (the openai backend: `server_backend` is true) is called one sample at a time,
  which is how it talks to its servers, so `max_in_flight` is its `max_concurrency`; any other backend is called
  with `generate([request])`, one request with its n samples.
- Samples are looked up in the cache when submitted. Answers are written to the cache as they arrive (one
  transaction per set of answers taken off the queue together), so a run killed with SIGKILL keeps every answer it
  received and a rerun asks only for the rest. The cache keys are `cached_generate`'s, so both paths replay each
  other.
- A call that fails for good stops the others (queued calls are cancelled, the backend's `interrupt()` wakes those
  blocked on a socket) and its error is raised from `wait()` after the answers already received are written.
  Ctrl-C and any exception leaving the `with` block do the same.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

from harness.core.backends.base import Backend
from harness.core.cache import GenerationCache, cache_key
from harness.core.generation import GenerationStats
from harness.core.types import ChatRequest, Completion

Answers = list[list[Completion]]


def server_backend(backend: Backend) -> bool:
    """True for a backend that answers one sample at a time over the network (the openai backend): the concurrent
    path keeps its servers full; in-process backends (hf, vllm, fake) batch better by themselves."""
    return callable(getattr(backend, "sample", None))


class _Cancelled(Exception):
    """A queued call that started after the stream was aborted."""


@dataclass
class _Group:
    tag: Hashable
    keys: list[list[str]]
    out: list[list[Completion | None]]
    missing: int  # backend calls not answered yet


class CompletionStream:
    """Groups of requests in, each group's completions out as soon as they are all in (see the module docstring).

    `submit(tag, requests)` queues a group; `wait()` blocks until at least one group is complete and returns every
    complete group as `(tag, completions)`, completions in request order, n per request. Use it as a context
    manager: leaving the block with an exception stops every call still running. `stats` adds up what
    `cached_generate` counts; its `generate_seconds` is the wall time with at least one call running."""

    def __init__(self, backend: Backend, cache: GenerationCache, stats: GenerationStats | None = None,
                 max_in_flight: int | None = None):
        self.backend, self.cache = backend, cache
        self.stats = stats if stats is not None else GenerationStats()
        self.per_sample = server_backend(backend)
        self.max_in_flight = max(1, int(max_in_flight or getattr(backend, "max_concurrency", 0) or 1))
        self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="spar-stream")
        self._answers: queue.SimpleQueue = queue.SimpleQueue()
        self._abort = threading.Event()
        self._groups: dict[int, _Group] = {}
        self._ready: list[int] = []
        self._next_id = 0
        self._outstanding = 0  # backend calls submitted and not yet taken off the queue
        self._running = 0
        self._busy_since = 0.0
        self._busy_seconds = 0.0
        self._failure: BaseException | None = None
        self._lock = threading.Lock()
        self.peak_in_flight = 0  # the most backend calls that ran at once

    # --- submitting -------------------------------------------------------------------------------------------

    def submit(self, tag: Hashable, requests: Sequence[ChatRequest]) -> None:
        """Queue `requests` as one group; samples found in the cache are not asked for again."""
        gid, self._next_id = self._next_id, self._next_id + 1
        keys = [[cache_key(self.backend.identity, self.backend.render(r), r.sampling, r.seed, j) for j in range(r.n)]
                for r in requests]
        found = self.cache.get_many(k for ks in keys for k in ks)
        group = _Group(tag, keys, [[found.get(k) for k in ks] for ks in keys], 0)
        self._groups[gid] = group
        self.stats.requests += len(requests)
        self.stats.samples += sum(r.n for r in requests)
        for i, request in enumerate(requests):
            lacking = [j for j, c in enumerate(group.out[i]) if c is None]
            if not lacking:
                self.stats.cache_hits += request.n
                self.stats.count(group.out[i], cached=True)  # type: ignore[arg-type]
            elif self.per_sample:  # each missing sample on its own; the cached ones are used
                self.stats.cache_hits += request.n - len(lacking)
                self.stats.count([c for c in group.out[i] if c is not None], cached=True)
                for j in lacking:
                    self._call(gid, i, j, request)
            else:  # as cached_generate: a request with any sample missing is generated whole
                self._call(gid, i, None, request)
        if group.missing == 0:
            self._ready.append(gid)

    def _call(self, gid: int, i: int, j: int | None, request: ChatRequest) -> None:
        self._groups[gid].missing += 1
        self._outstanding += 1
        future = self._pool.submit(self._run, request, j)
        future.add_done_callback(lambda f: self._answers.put((gid, i, j, f)))

    def _run(self, request: ChatRequest, j: int | None) -> list[Completion]:
        if self._abort.is_set():
            raise _Cancelled()
        with self._lock:
            if self._running == 0:
                self._busy_since = time.perf_counter()
            self._running += 1
            self.peak_in_flight = max(self.peak_in_flight, self._running)
        try:
            if j is None:
                return self.backend.generate([request])[0]
            return [self.backend.sample(request, j, self._abort)]  # type: ignore[attr-defined]
        except BaseException as exc:
            with self._lock:  # the first call to fail for good is the error; calls stopped by it are not
                if self._failure is None and not self._abort.is_set():
                    self._failure = exc
            self._abort.set()  # no other call starts (the caller stops the running ones)
            raise
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:  # generate_seconds: wall time with at least one call running
                    self._busy_seconds += time.perf_counter() - self._busy_since

    # --- receiving --------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Groups submitted and not yet returned by `wait()`."""
        return len(self._groups)

    def wait(self) -> list[tuple[Hashable, Answers]]:
        """Every complete group (at least one), as (tag, completions); raises the first failed call's error."""
        if not self._groups:
            raise RuntimeError("CompletionStream.wait() with nothing submitted")
        while not self._ready:
            items = [self._take()]
            while True:
                try:
                    items.append(self._answers.get_nowait())
                except queue.Empty:
                    break
            self._receive(items)
        ready, self._ready = self._ready, []
        return [(self._groups[g].tag, self._groups.pop(g).out) for g in ready]  # type: ignore[misc]

    def _take(self) -> tuple:
        while True:  # short timeouts keep Ctrl-C responsive
            try:
                return self._answers.get(timeout=0.2)
            except queue.Empty:
                continue

    def _receive(self, items: list[tuple]) -> None:
        """Write the answers that arrived to the cache (one transaction), then raise the first failure if any."""
        rows: list[tuple[str, Completion]] = []
        failure: BaseException | None = None
        for gid, i, j, future in items:
            self._outstanding -= 1
            error = _error(future)
            if error is not None:
                failure = failure or error
                continue
            group = self._groups[gid]
            comps = future.result()
            positions = range(len(comps)) if j is None else [j]
            for pos, comp in zip(positions, comps):
                group.out[i][pos] = comp
                rows.append((group.keys[i][pos], comp))
            self.stats.generated += len(comps)
            self.stats.count(comps, cached=False)
            group.missing -= 1
            if group.missing == 0:
                self._ready.append(gid)
        if rows:
            self.cache.put_many(rows)
        with self._lock:
            busy, self._busy_seconds = self._busy_seconds, 0.0
        self.stats.generate_seconds = round(self.stats.generate_seconds + busy, 6)
        if failure is not None:
            self.abort()
            raise self._failure or failure

    # --- stopping ---------------------------------------------------------------------------------------------

    def abort(self) -> None:
        """Stop now: queued calls are cancelled, running ones are interrupted where the backend can."""
        self._abort.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        interrupt: Callable[[], None] | None = getattr(self.backend, "interrupt", None)
        if callable(interrupt):
            interrupt()

    def close(self) -> None:
        """Wait for the calls still running (normally none) and release the worker threads."""
        if self._outstanding:
            self.abort()
        else:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> "CompletionStream":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._save_arrived()
            self.abort()
        else:
            self.close()

    def _save_arrived(self) -> None:
        """Write the answers that arrived but were not taken yet (the block is being left with an exception, e.g.
        Ctrl-C while the caller was busy): a rerun does not ask for them again. Never raises."""
        rows: list[tuple[str, Completion]] = []
        while True:
            try:
                gid, i, j, future = self._answers.get_nowait()
            except queue.Empty:
                break
            group = self._groups.get(gid)
            if group is None or _error(future) is not None:
                continue
            comps = future.result()
            positions = range(len(comps)) if j is None else [j]
            rows += [(group.keys[i][pos], comp) for pos, comp in zip(positions, comps)]
        if rows:
            try:
                self.cache.put_many(rows)
            except Exception:  # the exception leaving the block is the one to report
                pass


def _error(future: Future) -> BaseException | None:
    if future.cancelled():
        return _Cancelled()
    return future.exception()


def stream_generate(backend: Backend, requests: Sequence[ChatRequest], cache: GenerationCache,
                    on_progress: Callable[[int], None] | None = None, stats: GenerationStats | None = None,
                    max_in_flight: int | None = None) -> tuple[Answers, GenerationStats]:
    """`cached_generate`'s contract through a `CompletionStream`: completions for `requests`, the backend kept busy
    with up to `max_in_flight` calls and each answer cached as it arrives. `on_progress` counts finished requests."""
    stats = stats if stats is not None else GenerationStats()
    out: list[list[Completion] | None] = [None] * len(requests)
    with CompletionStream(backend, cache, stats, max_in_flight) as stream:
        for i, request in enumerate(requests):
            stream.submit(i, [request])
        while stream.pending:
            done = stream.wait()
            for i, comps in done:
                out[i] = comps[0]  # type: ignore[index]
            if on_progress:
                on_progress(len(done))
    return out, stats  # type: ignore[return-value]
