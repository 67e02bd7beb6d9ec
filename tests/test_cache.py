"""The content-addressed cache and the cached generation loop."""

from __future__ import annotations

import pytest

from fakes import EchoBackend
from harness.core.cache import GenerationCache, cache_key
from harness.core.generation import cached_generate
from harness.core.types import ChatRequest, Completion, SamplingParams


def test_key_depends_on_every_part():
    base = dict(identity="m", rendered="p", sampling=SamplingParams(), seed=0, sample_index=0)
    key = cache_key(**base)
    variants = [dict(base, identity="m2"), dict(base, rendered="p2"), dict(base, seed=1), dict(base, sample_index=1),
                dict(base, sampling=SamplingParams(temperature=0.5)), dict(base, sampling=SamplingParams(stop=("x",))),
                dict(base, sampling=SamplingParams(max_new_tokens=7)), dict(base, sampling=SamplingParams(top_p=0.9))]
    assert len({key} | {cache_key(**v) for v in variants}) == len(variants) + 1
    assert cache_key(**base) == key


def test_roundtrip_and_persistence(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = GenerationCache(path)
    cache.put_many([("a", Completion("x", "length", 3, 4)), ("b", Completion("", "stop"))])
    cache.close()
    again = GenerationCache(path)
    assert again.get_many(["a", "b", "zz"]) == {"a": Completion("x", "length", 3, 4), "b": Completion("", "stop")}
    assert len(again) == 2


def _requests(k: int, n: int = 1) -> list[ChatRequest]:
    return [ChatRequest.user("q" * (i % 5 + 1) + str(i), sampling=SamplingParams(temperature=0.7), seed=i, n=n)
            for i in range(k)]


def test_second_run_is_served_from_cache(tmp_path):
    cache = GenerationCache(tmp_path / "c.sqlite")
    backend = EchoBackend()
    first, s1 = cached_generate(backend, _requests(10, n=2), cache)
    assert (s1.generated, s1.cache_hits) == (20, 0)
    second, s2 = cached_generate(EchoBackend(), _requests(10, n=2), cache)
    assert (s2.generated, s2.cache_hits) == (0, 20)
    assert first == second
    assert all(len(c) == 2 and c[0] != c[1] for c in first)


def test_new_identity_misses(tmp_path):
    cache = GenerationCache(tmp_path / "c.sqlite")
    cached_generate(EchoBackend("a"), _requests(3), cache)
    _, stats = cached_generate(EchoBackend("b"), _requests(3), cache)
    assert stats.generated == 3


def test_interrupted_run_resumes_with_identical_batches(tmp_path):
    """A crash after two batches: the restart generates only the rest, in the batches a clean run would use."""

    class Crash(Exception):
        pass

    class CrashingBackend(EchoBackend):
        def generate(self, requests):
            if len(self.calls) == 2:
                raise Crash
            return super().generate(requests)

    reqs = _requests(11)
    cache = GenerationCache(tmp_path / "c.sqlite")
    with pytest.raises(Crash):
        cached_generate(CrashingBackend(batch_size=3), reqs, cache)
    assert len(cache) == 6
    resumed_backend = EchoBackend(batch_size=3)
    resumed, stats = cached_generate(resumed_backend, reqs, cache)
    assert (stats.cache_hits, stats.generated) == (6, 5)
    assert resumed_backend.calls == [3, 2]
    clean, _ = cached_generate(EchoBackend(batch_size=3), reqs, GenerationCache(tmp_path / "clean.sqlite"))
    assert resumed == clean


def test_progress_callback_counts_requests(tmp_path):
    seen = []
    cached_generate(EchoBackend(batch_size=4), _requests(10), GenerationCache(tmp_path / "c.sqlite"), seen.append)
    assert sum(seen) == 10
