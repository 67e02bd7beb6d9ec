"""Backend registry: name -> factory. Heavy imports (torch, vllm) happen only when a backend is built."""

from __future__ import annotations

from typing import Any, Callable

from harness.core.backends.base import Backend
from harness.core.errors import SparError


def _hf(**kw: Any) -> Backend:
    from harness.core.backends.hf import HFBackend

    return HFBackend(**kw)


def _openai(**kw: Any) -> Backend:
    from harness.core.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(**kw)


def _vllm(**kw: Any) -> Backend:
    from harness.core.backends.vllm_backend import VLLMBackend

    return VLLMBackend(**kw)


def _fake(**kw: Any) -> Backend:
    from harness.core.backends.fake import FakeBackend

    return FakeBackend(**kw)


BACKENDS: dict[str, Callable[..., Backend]] = {"hf": _hf, "openai": _openai, "vllm": _vllm, "fake": _fake}


def make_backend(name: str, **kw: Any) -> Backend:
    """A registered backend, or `package.module:Factory` for one of your own (called with the same keywords)."""
    if name in BACKENDS:
        return BACKENDS[name](**kw)
    if ":" in name:
        from harness.core.paths import import_user_module

        module, _, attr = name.partition(":")
        try:
            factory = getattr(import_user_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise SparError(f"--backend {name!r}: cannot import it ({exc})") from None
        return factory(**kw)
    raise SparError(f"--backend {name!r}: unknown backend (choose from {', '.join(BACKENDS)}, or module:Factory)")


__all__ = ["BACKENDS", "Backend", "make_backend"]
