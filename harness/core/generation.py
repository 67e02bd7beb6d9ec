"""Every model call goes through here: cache lookup, batched generation of what is missing, batch-atomic writes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from harness.core.backends.base import Backend
from harness.core.cache import GenerationCache, cache_key
from harness.core.types import ChatRequest, Completion


@dataclass
class GenerationStats:
    """What a set of generation calls cost. Tokens are the backends' own counts carried by each `Completion`
    (prompt tokens once per sample, as an engine without prefix caching processes them). Samples generated now count
    under `prompt_tokens` / `completion_tokens` and `generate_seconds` (wall time inside the backend); samples read
    from the cache count under `cached_*` with the tokens they cost when they were made. `uncounted` is the samples
    whose backend reported no token counts (an OpenAI-compatible server without `usage`): their tokens are missing
    from the sums, never guessed."""

    requests: int = 0
    samples: int = 0
    cache_hits: int = 0
    generated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    uncounted: int = 0
    generate_seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(vars(self))

    def __iadd__(self, other: "GenerationStats") -> "GenerationStats":
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)
        self.generate_seconds = round(self.generate_seconds, 6)
        return self

    def count(self, completions: Sequence[Completion], cached: bool) -> None:
        """Add the samples' token counts (generated now, or read from the cache)."""
        prompt = sum(c.prompt_tokens for c in completions)
        completion = sum(c.completion_tokens for c in completions)
        if cached:
            self.cached_prompt_tokens += prompt
            self.cached_completion_tokens += completion
        else:
            self.prompt_tokens += prompt
            self.completion_tokens += completion
        self.uncounted += sum(1 for c in completions if not c.completion_tokens and c.text)


def counting_generate(backend: Backend, cache: GenerationCache, stats: GenerationStats
                      ) -> Callable[[list[ChatRequest]], list[list[Completion]]]:
    """A plain `requests -> completions` function over the cache that adds what it did to `stats` (for callers
    such as tree search that issue many calls)."""
    def generate(requests: list[ChatRequest]) -> list[list[Completion]]:
        nonlocal stats
        comps, step = cached_generate(backend, requests, cache)
        stats += step
        return comps

    return generate


def cached_generate(backend: Backend, requests: Sequence[ChatRequest], cache: GenerationCache,
                    on_progress: Callable[[int], None] | None = None) -> tuple[list[list[Completion]], GenerationStats]:
    """Completions for `requests` (n each), reading finished samples from `cache` and writing new ones per batch.

    Requests are ordered longest-first and cut into batches over the *whole* list, cached or not, so a resumed run
    hands the backend exactly the batches an uninterrupted run would have (same padding, same batch seeds).
    """
    rendered = [backend.render(r) for r in requests]
    keys = [[cache_key(backend.identity, t, r.sampling, r.seed, j) for j in range(r.n)]
            for r, t in zip(requests, rendered)]
    order = sorted(range(len(requests)), key=lambda i: -len(rendered[i]))
    stats = GenerationStats(requests=len(requests), samples=sum(r.n for r in requests))
    out: list[list[Completion] | None] = [None] * len(requests)
    size = max(1, int(backend.batch_size))
    for start in range(0, len(order), size):
        batch = order[start:start + size]
        found = cache.get_many(k for i in batch for k in keys[i])
        missing = [i for i in batch if any(k not in found for k in keys[i])]
        for i in batch:
            if i not in missing:
                out[i] = [found[k] for k in keys[i]]
                stats.cache_hits += len(keys[i])
                stats.count(out[i], cached=True)  # type: ignore[arg-type]
        if missing:
            t0 = time.perf_counter()
            fresh = backend.generate([requests[i] for i in missing])
            stats.generate_seconds += time.perf_counter() - t0
            cache.put_many((k, c) for i, comps in zip(missing, fresh) for k, c in zip(keys[i], comps))
            for i, comps in zip(missing, fresh):
                out[i] = comps
                stats.generated += len(comps)
                stats.count(comps, cached=False)
        if on_progress:
            on_progress(len(batch))
    stats.generate_seconds = round(stats.generate_seconds, 6)
    return out, stats  # type: ignore[return-value]
