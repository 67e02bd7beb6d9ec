"""vLLM runs only on CUDA machines with the extra installed; elsewhere the backend says so clearly."""

from __future__ import annotations

import importlib.util

import pytest

from harness.core.errors import SparError
from harness.core.models import ResolvedModel


def _has_vllm_and_cuda() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_vllm_and_cuda(), reason="vLLM and CUDA are present; the missing-extra path is not testable")
def test_clear_error_without_vllm_or_cuda():
    from harness.core.backends import make_backend

    with pytest.raises(SparError, match="vllm"):
        make_backend("vllm", model=ResolvedModel("m", "m", "m", "local"))


@pytest.mark.skipif(not _has_vllm_and_cuda(), reason="needs the vllm extra and a CUDA GPU")
def test_generates_on_gpu(tiny_model_dir):
    from harness.core.backends import make_backend
    from harness.core.models import resolve_model
    from harness.core.types import ChatRequest, SamplingParams

    backend = make_backend("vllm", model=resolve_model(str(tiny_model_dir)), gpu_memory_utilization=0.3)
    (out,) = backend.generate([ChatRequest.user("hi", sampling=SamplingParams(max_new_tokens=8), n=2)])
    assert len(out) == 2 and all(c.completion_tokens <= 8 for c in out)


def _stand_in_vllm(monkeypatch, calls: list, engine_core_only: bool = False):
    """A `vllm` module that records what is done to it (no GPU, no vLLM): LLM, SamplingParams, distributed."""
    import sys
    import types

    class EngineCore:
        def shutdown(self):
            calls.append("engine_core.shutdown")

    class Engine:
        def __init__(self):
            self.engine_core = EngineCore()

    class LLM:
        def __init__(self, **kw):
            calls.append("LLM")
            self.llm_engine = Engine()

        def get_tokenizer(self):
            return None

    if not engine_core_only:
        LLM.shutdown = lambda self: calls.append("LLM.shutdown")
    vllm = types.ModuleType("vllm")
    vllm.__version__ = "0.0-stand-in"
    vllm.LLM, vllm.SamplingParams = LLM, object
    distributed = types.ModuleType("vllm.distributed")
    parallel_state = types.ModuleType("vllm.distributed.parallel_state")
    parallel_state.destroy_model_parallel = lambda: calls.append("destroy_model_parallel")
    parallel_state.destroy_distributed_environment = lambda: calls.append("destroy_distributed_environment")
    distributed.parallel_state = parallel_state
    vllm.distributed = distributed
    for name, module in (("vllm", vllm), ("vllm.distributed", distributed),
                         ("vllm.distributed.parallel_state", parallel_state)):
        monkeypatch.setitem(sys.modules, name, module)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))


@pytest.mark.parametrize("engine_core_only", [False, True])
def test_close_gives_the_gpu_back(monkeypatch, engine_core_only):
    """close() shuts the engine down, destroys vLLM's parallel and distributed state, collects, empties the CUDA
    cache, in that order, once; the record says which steps ran."""
    from harness.core.backends.vllm_backend import VLLMBackend

    calls: list = []
    _stand_in_vllm(monkeypatch, calls, engine_core_only)
    backend = VLLMBackend(ResolvedModel("m", "m", "m", "local"))
    assert calls == ["LLM"]
    import weakref

    import torch

    engine = weakref.ref(backend.llm)  # nothing may hold the engine when the cache is emptied
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache" if engine() is None else
                                                                           "empty_cache with the engine alive"))
    backend.close()
    shutdown = "engine_core.shutdown" if engine_core_only else "LLM.shutdown"
    assert calls == ["LLM", shutdown, "destroy_model_parallel", "destroy_distributed_environment", "empty_cache"]
    assert backend.llm is None
    released = backend.describe()["released"]
    assert released[0] == ("llm_engine.engine_core.shutdown" if engine_core_only else "LLM.shutdown")
    assert "gc.collect" in released and released[-1] == "torch.cuda.empty_cache"
    backend.close()  # a second close does nothing
    assert len(calls) == 5
