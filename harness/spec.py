"""One model spec for every role of a run (`model`, `judge`, `refiner` in `spar eval`; `actor`, `refiner` in
`spar run`), and one holder of the backends a run has open.

A spec names the weights (embedded short name, local folder, hub id, or a served model's name) and how they
generate: the backend and its arguments. Two roles with equal specs share one backend (one copy of the weights).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from harness.backends import Backend, make_backend
from harness.errors import SparError
from harness.options import NonNegativeInt, PositiveFloat, PositiveInt, option, options

DTYPES = ("auto", "float32", "bfloat16", "float16")


@options
class ModelSpec:
    """A model and how it generates. Fields a backend does not use are ignored by it (and still recorded)."""

    name: str = option("", "the embedded default's short name (smollm2-135m-instruct), a local checkpoint folder or "
                           "a hub id; for the openai backend, the name the server knows the model by")
    backend: str = option("hf", "hf (transformers, CPU/GPU), openai (any OpenAI-compatible server), vllm "
                                "(in-process, GPU), fake (scripted answers, nothing loaded: dry runs and tests), or "
                                "module:Factory for your own")
    base_url: str = option("http://127.0.0.1:8000/v1", "openai: server base URL; several servers (one per GPU) "
                                                       "separated by commas")
    api_key_env: str = option("OPENAI_API_KEY", "openai: environment variable holding the API key (the key is "
                                                "never recorded)")
    revision: str = option("", "hub revision (branch, tag or commit) of a hub id; for the openai backend a label "
                               "for the served weights that replaces the server URL in cache keys")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option(
        "auto", "hf/vllm weights dtype: auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    device: str = option("auto", "hf device: auto, cpu, cuda, cuda:1 ...")
    batch_size: PositiveInt = option(8, "requests per generation batch (hf/vllm) or per cache write (openai)")
    max_concurrency: PositiveInt = option(8, "openai: requests in flight at once")
    max_retries: NonNegativeInt = option(5, "openai: retries with exponential backoff per request")
    timeout_s: PositiveFloat = option(600.0, "openai: deadline per request in seconds (connect to last byte)")
    tensor_parallel_size: PositiveInt = option(1, "vllm: tensor parallel degree")
    data_parallel_size: PositiveInt = option(1, "vllm: data parallel degree")
    script: str = option("echo", "fake: what the fake model answers: echo, selfplay (a scripted SPaR actor/judge/"
                                 "refiner), a rules file (.jsonl/.yaml of {match, reply}) or module:function")

    def __post_init__(self) -> None:
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda", "mps", "xpu")):
            raise SparError(f"device {self.device!r}: use auto, cpu, cuda or cuda:N")

    def replace(self, **changes: Any) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    def check_device(self) -> None:
        """`--device cuda` on a machine without CUDA is a one-line error before anything loads."""
        if self.backend == "hf" and self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise SparError(f"--device {self.device}: CUDA is not available on this machine (use auto or cpu)")

    def open(self) -> Backend:
        """Build the backend (loads local weights; checks a server is reachable)."""
        from harness.models import resolve_model

        if not self.name:
            raise SparError("a model is required (--model NAME)")
        self.check_device()
        if self.backend == "fake":
            return make_backend("fake", model=self.name, script=self.script, batch_size=self.batch_size)
        if self.backend == "openai":
            return make_backend("openai", model=self.name, base_url=self.base_url, api_key_env=self.api_key_env,
                                max_concurrency=self.max_concurrency, max_retries=self.max_retries,
                                timeout_s=self.timeout_s, model_revision=self.revision or None)
        resolved = resolve_model(self.name, revision=self.revision or None)
        if self.backend == "vllm":
            return make_backend("vllm", model=resolved, dtype=self.dtype,
                                tensor_parallel_size=self.tensor_parallel_size,
                                data_parallel_size=self.data_parallel_size)
        return make_backend(self.backend, model=resolved, dtype=self.dtype, device=self.device,
                            batch_size=self.batch_size)


def spec_from(value: Any, base: dict | None = None) -> dict:
    """A role's raw config (a name, or a mapping of spec fields) as a mapping over `base` (the role it inherits
    from): unset fields come from `base`."""
    if value is None:
        return dict(base or {})
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise SparError(f"a model role is a name or a mapping of {', '.join(f.name for f in dataclasses.fields(ModelSpec))}"
                        f", got {value!r}")
    return {**(base or {}), **value}


class ModelPool:
    """The backends a run has open, one per distinct spec. With `one_local=True` opening a local model (hf/vllm)
    closes the other local ones first (training loops: a vLLM engine per role would not fit side by side)."""

    def __init__(self, one_local: bool = False):
        self.one_local = one_local
        self._open: dict[ModelSpec, Backend] = {}

    def get(self, spec: ModelSpec) -> Backend:
        if spec not in self._open:
            if self.one_local and spec.backend != "openai":
                for other in [s for s in self._open if s.backend != "openai"]:
                    self._open.pop(other).close()
            self._open[spec] = spec.open()
        return self._open[spec]

    def close(self) -> None:
        for backend in self._open.values():
            backend.close()
        self._open.clear()

    def __enter__(self) -> "ModelPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
