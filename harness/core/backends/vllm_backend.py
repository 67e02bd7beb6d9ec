"""In-process vLLM (GPU only; `pip install spar-harness[vllm]`). Imported only when this backend is chosen."""

from __future__ import annotations

from typing import Sequence

from harness.core.errors import SparError
from harness.core.models import ResolvedModel
from harness.core.types import ChatRequest, Completion


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: ResolvedModel, dtype: str = "auto", tensor_parallel_size: int = 1,
                 data_parallel_size: int = 1, gpu_memory_utilization: float = 0.9, batch_size: int = 1024,
                 max_model_len: int | None = None):
        try:
            import vllm
        except ImportError:
            raise SparError("--backend vllm needs the extra: pip install 'spar-harness[vllm]' (GPU machines only)") from None
        try:
            import torch

            if not torch.cuda.is_available():
                raise SparError("--backend vllm needs a CUDA GPU; use --backend hf on CPU")
        except ImportError:
            pass
        self._vllm = vllm
        self.released: list[str] | None = None  # the steps close() took to give the GPU back
        self.model_ref, self.dtype, self.batch_size = model, dtype, batch_size
        self.tp, self.dp = tensor_parallel_size, data_parallel_size
        extra = {"data_parallel_size": data_parallel_size} if data_parallel_size > 1 else {}
        self.llm = vllm.LLM(model=model.path, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                            gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len, **extra)
        self.tokenizer = self.llm.get_tokenizer()
        self.identity = f"{model.identity}|dtype={dtype}"

    def render(self, request: ChatRequest) -> str:
        return self.tokenizer.apply_chat_template(request.messages_as_dicts(), tokenize=False, add_generation_prompt=True)

    def describe(self) -> dict:
        out = {"backend": self.name, "model": self.model_ref.to_dict(), "dtype": self.dtype,
               "tensor_parallel_size": self.tp, "data_parallel_size": self.dp, "vllm": self._vllm.__version__}
        if self.released is not None:
            out["released"] = self.released
        return out

    def generate(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        params = [self._vllm.SamplingParams(n=r.n, temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                                            max_tokens=r.sampling.max_new_tokens, stop=list(r.sampling.stop) or None,
                                            seed=r.seed) for r in requests]
        prompts = [{"prompt_token_ids": self.tokenizer(self.render(r), add_special_tokens=False)["input_ids"]}
                   for r in requests]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        return [[Completion(o.text, o.finish_reason or "stop", len(out.prompt_token_ids), len(o.token_ids))
                 for o in out.outputs] for out in outs]

    def close(self) -> None:
        """Give the GPU back: shut the engine down (its worker processes exit), destroy vLLM's model-parallel and
        distributed state, collect garbage and empty torch's CUDA cache. Dropping the reference alone leaves the
        memory allocated until the process exits (vllm-project/vllm issues 1908, 3281, 16543). What was done is
        kept in `released` (and shown by `describe()`)."""
        if self.llm is None:
            return
        self.tokenizer = None
        self.released = release_engine(self, self._vllm)


def _shut_down(llm) -> list[str]:
    """Call the engine's shutdown (the first this vLLM version has); in a frame of its own, so that no reference to
    the engine outlives it."""
    engine = getattr(llm, "llm_engine", None)
    for owner, label in ((llm, "LLM.shutdown"), (engine, "llm_engine.shutdown"),
                         (getattr(engine, "engine_core", None), "llm_engine.engine_core.shutdown")):
        shutdown = getattr(owner, "shutdown", None)
        if callable(shutdown):
            shutdown()
            return [label]
    return []


def release_engine(holder, vllm_module) -> list[str]:
    """Shut the `vllm.LLM` of `holder.llm` down and free what it held (`holder.llm` becomes None, and no reference
    to the engine is left when garbage is collected and the CUDA cache emptied); returns the steps taken (each
    skipped where this vLLM version lacks it)."""
    import gc

    done = _shut_down(holder.llm)
    holder.llm = None
    try:
        from vllm.distributed import parallel_state
    except ImportError:
        parallel_state = getattr(getattr(vllm_module, "distributed", None), "parallel_state", None)
    for name in ("destroy_model_parallel", "destroy_distributed_environment"):
        fn = getattr(parallel_state, name, None)
        if callable(fn):
            fn()
            done.append(name)
    gc.collect()
    done.append("gc.collect")
    try:
        import torch
    except ImportError:
        return done
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
        done.append("torch.distributed.destroy_process_group")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        done.append("torch.cuda.empty_cache")
    return done
