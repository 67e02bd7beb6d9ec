"""One model spec for every role of a run (`model`, `judge`, `refiner` in `spar eval`; `actor`, `refiner` in
`spar run`), and one holder of the backends a run has open.

A spec names the weights (embedded short name, local folder, hub id, or a served model's name) and how they
generate: the backend and its arguments. Two roles with equal specs share one backend (one copy of the weights).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator

from harness.core.backends import Backend, make_backend
from harness.core.errors import SparError
from harness.core.options import NonNegativeInt, PositiveFloat, PositiveInt, option, options
from harness.core.servers import ServeConfig

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _batch_size(value: Any) -> Any:
    """A positive number of requests, or `auto` (the backend chooses: harness.core.backends.hf.choose_batch_size)."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError("expected a positive integer or auto")


#: a generation batch size: a positive integer or "auto"
BatchSize = Annotated[Union[int, str], BeforeValidator(_batch_size)]


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
    batch_size: BatchSize = option(
        "auto", "requests per generation batch (hf/fake); auto = 8 on CPU, and for hf on CUDA the largest power of "
                "two (up to 256) that fits in half the free GPU memory (recorded)")
    max_concurrency: PositiveInt = option(8, "openai: requests in flight at once")
    max_retries: NonNegativeInt = option(5, "openai: retries with exponential backoff per request")
    timeout_s: PositiveFloat = option(600.0, "openai: deadline per request in seconds (connect to last byte)")
    tensor_parallel_size: PositiveInt = option(1, "vllm: tensor parallel degree")
    data_parallel_size: PositiveInt = option(1, "vllm: data parallel degree")
    script: str = option("echo", "fake: what the fake model answers: echo, selfplay (a scripted SPaR actor/judge/"
                                 "refiner), a rules file (.jsonl/.yaml of {match, reply}) or module:function")
    serve: ServeConfig = option(ServeConfig(), "managed servers: spar starts the role's OpenAI-compatible servers "
                                               "when a stage needs it and stops them when the stage ends "
                                               "(harness/core/servers.py); the role then generates through the openai "
                                               "backend")

    def __post_init__(self) -> None:
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda", "mps", "xpu")):
            raise SparError(f"device {self.device!r}: use auto, cpu, cuda or cuda:N")
        if self.serve.command:
            if self.backend not in ("hf", "vllm", "openai"):
                raise SparError(f"serve.command: a served role generates through the openai backend; backend "
                                f"{self.backend!r} cannot be served (use hf, vllm or openai)")
            object.__setattr__(self, "backend", "openai")  # what it is from here on, in records too

    @property
    def served(self) -> bool:
        """Whether spar starts and stops this role's servers (serve.command set)."""
        return bool(self.serve.command)

    def replace(self, **changes: Any) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    def check_device(self) -> None:
        """`--device cuda` on a machine without CUDA is a one-line error before anything loads."""
        if self.backend == "hf" and self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise SparError(f"--device {self.device}: CUDA is not available on this machine (use auto or cpu)")

    def open(self, log_dir: Path | None = None) -> Backend:
        """Build the backend (loads local weights; checks a server is reachable; starts managed servers, with
        their logs in `log_dir`)."""
        from harness.core.models import resolve_model

        if not self.name:
            raise SparError("a model is required (--model NAME)")
        self.check_device()
        if self.served:
            from harness.core.servers import ServedBackend

            if log_dir is None:
                import tempfile

                log_dir = Path(tempfile.mkdtemp(prefix="spar-servers-"))
            return ServedBackend(self, resolve_model(self.name, revision=self.revision or None), log_dir)
        if self.backend == "fake":
            return make_backend("fake", model=self.name, script=self.script, batch_size=self.fixed_batch())
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
                            batch_size=self.batch_size if self.backend == "hf" else self.fixed_batch())

    def fixed_batch(self) -> int:
        """The batch of a backend that does not choose one itself (only hf sizes `auto` from free memory): `auto` is
        the CPU batch."""
        from harness.core.backends.hf import CPU_BATCH

        return CPU_BATCH if self.batch_size == "auto" else self.batch_size


def spec_from(value: Any, base: dict | None = None) -> dict:
    """A role's raw config (a name, or a mapping of spec fields) as a mapping over `base` (the role it inherits
    from): unset fields come from `base`, except `serve` for a role that names its own `base_url`."""
    if value is None:
        return dict(base or {})
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise SparError(f"a model role is a name or a mapping of {', '.join(f.name for f in dataclasses.fields(ModelSpec))}"
                        f", got {value!r}")
    base = dict(base or {})
    if "base_url" in value and "serve" not in value:
        base.pop("serve", None)  # a role given its own server is reached there, not started by spar
    return {**base, **value}


def _exclusive(spec: ModelSpec) -> bool:
    return spec.served and spec.serve.exclusive


class ModelPool:
    """The backends a run has open, one per distinct spec. With `one_local=True` opening a local model (hf/vllm)
    closes the other local ones first (training loops: a vLLM engine per role would not fit side by side).
    Managed servers (`serve.command`) with `serve.exclusive` (the default) hold the GPUs alone: opening one closes
    every other local model and managed server, and opening a local model stops them. Their logs go to
    `server_logs` (a folder; default: a temporary one)."""

    def __init__(self, one_local: bool = False, server_logs: Path | None = None):
        self.one_local = one_local
        self.server_logs = server_logs
        self._open: dict[ModelSpec, Backend] = {}
        self.served_log: list[dict] = []  # what each managed server group that was stopped did

    def _local(self, spec: ModelSpec) -> bool:
        return spec.backend != "openai"

    def get(self, spec: ModelSpec) -> Backend:
        if spec not in self._open:
            if _exclusive(spec):
                self._close([s for s in self._open if self._local(s) or s.served])
            elif self._local(spec):
                self._close([s for s in self._open if _exclusive(s) or (self.one_local and self._local(s))])
            self._open[spec] = spec.open(self.server_logs)
        return self._open[spec]

    def backends(self) -> list[Backend]:
        """The backends open now."""
        return list(self._open.values())

    def _close(self, specs: list[ModelSpec]) -> None:
        errors: list[BaseException] = []
        for spec in specs:  # every one is closed, even after one fails
            backend = self._open.pop(spec)
            try:
                backend.close()
            except BaseException as exc:
                errors.append(exc)
            if spec.served:
                self.served_log.append(backend.describe())
        if errors:
            raise errors[0]

    def close_served(self) -> list[dict]:
        """Stop every managed server group (a stage ended); returns and forgets what the stopped groups did."""
        self._close([s for s in self._open if s.served])
        log, self.served_log = self.served_log, []
        return log

    def close(self) -> None:
        self._close(list(self._open))

    def __enter__(self) -> "ModelPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
