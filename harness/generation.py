"""Every model call goes through here: cache lookup, batched generation of what is missing, batch-atomic writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from harness.backends.base import Backend
from harness.cache import GenerationCache, cache_key
from harness.types import ChatRequest, Completion


@dataclass
class GenerationStats:
    requests: int = 0
    samples: int = 0
    cache_hits: int = 0
    generated: int = 0

    def to_dict(self) -> dict:
        return dict(vars(self))

    def __iadd__(self, other: "GenerationStats") -> "GenerationStats":
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)
        return self


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
        if missing:
            fresh = backend.generate([requests[i] for i in missing])
            cache.put_many((k, c) for i, comps in zip(missing, fresh) for k, c in zip(keys[i], comps))
            for i, comps in zip(missing, fresh):
                out[i] = comps
                stats.generated += len(comps)
        if on_progress:
            on_progress(len(batch))
    return out, stats  # type: ignore[return-value]
