"""Backend registry: name -> factory. Heavy imports (torch, vllm) happen only when a backend is built."""

from __future__ import annotations

from typing import Any, Callable

from harness.backends.base import Backend
from harness.errors import SparError


def _hf(**kw: Any) -> Backend:
    from harness.backends.hf import HFBackend

    return HFBackend(**kw)


def _openai(**kw: Any) -> Backend:
    from harness.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(**kw)


def _vllm(**kw: Any) -> Backend:
    from harness.backends.vllm_backend import VLLMBackend

    return VLLMBackend(**kw)


BACKENDS: dict[str, Callable[..., Backend]] = {"hf": _hf, "openai": _openai, "vllm": _vllm}


def make_backend(name: str, **kw: Any) -> Backend:
    if name not in BACKENDS:
        raise SparError(f"--backend {name!r}: unknown backend (choose from {', '.join(BACKENDS)})")
    return BACKENDS[name](**kw)


__all__ = ["BACKENDS", "Backend", "make_backend"]
