"""The one interface every generation backend implements."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from harness.core.types import ChatRequest, Completion


@runtime_checkable
class Backend(Protocol):
    """Chat requests in, `n` completions per request out.

    `identity` names the model exactly (weights hash or hub revision, plus anything that changes outputs such as
    dtype); it is part of every cache key. `render` returns what the model is conditioned on (the chat template
    applied, or the messages as JSON for servers that template themselves); it is part of the cache key too.
    `batch_size` is how many requests the cache layer hands over at once.
    """

    name: str
    identity: str
    batch_size: int

    def render(self, request: ChatRequest) -> str: ...

    def generate(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]: ...

    def describe(self) -> dict: ...

    def close(self) -> None: ...


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on `parts` (stable across processes, unlike hash())."""
    import hashlib

    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
