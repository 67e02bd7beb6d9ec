"""vLLM runs only on CUDA machines with the extra installed; elsewhere the backend says so clearly."""

from __future__ import annotations

import importlib.util

import pytest

from harness.errors import SparError
from harness.models import ResolvedModel


def _has_vllm_and_cuda() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_vllm_and_cuda(), reason="vLLM and CUDA are present; the missing-extra path is not testable")
def test_clear_error_without_vllm_or_cuda():
    from harness.backends import make_backend

    with pytest.raises(SparError, match="vllm"):
        make_backend("vllm", model=ResolvedModel("m", "m", "m", "local"))


@pytest.mark.skipif(not _has_vllm_and_cuda(), reason="needs the vllm extra and a CUDA GPU")
def test_generates_on_gpu(tiny_model_dir):
    from harness.backends import make_backend
    from harness.models import resolve_model
    from harness.types import ChatRequest, SamplingParams

    backend = make_backend("vllm", model=resolve_model(str(tiny_model_dir)), gpu_memory_utilization=0.3)
    (out,) = backend.generate([ChatRequest.user("hi", sampling=SamplingParams(max_new_tokens=8), n=2)])
    assert len(out) == 2 and all(c.completion_tokens <= 8 for c in out)
