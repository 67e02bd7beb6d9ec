"""transformers backend: CPU or GPU, left-padded batches, chat templates applied here."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Sequence

from harness.core.backends.base import derive_seed, truncate_at_stop
from harness.core.errors import SparError
from harness.core.models import ResolvedModel
from harness.core.types import ChatRequest, Completion

DTYPES = ("auto", "float32", "bfloat16", "float16")
#: `batch_size: auto`: on CPU the batch spar always used; on CUDA chosen from free memory within these bounds
CPU_BATCH = 8
AUTO_MAX_BATCH = 256  # one H200, SmolLM2-135M judging: 1,636 tok/s against 652 at 64 (the largest size measured)
AUTO_MEMORY_FRACTION = 0.5  # of the memory free after loading the weights (the rest: allocator slack, other stages)
AUTO_SEQUENCE_TOKENS = 4096  # prompt + new tokens a sequence is sized for


@dataclass(frozen=True)
class BatchChoice:
    """The generation batch and why (recorded by `describe()`)."""

    size: int
    source: str  # "explicit" | "auto: cpu" | "auto: free memory"
    free_bytes: int | None = None
    bytes_per_sequence: int | None = None
    sequence_tokens: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def bytes_per_sequence(config, dtype_bytes: int, tokens: int = AUTO_SEQUENCE_TOKENS) -> int:
    """GPU memory one sequence of `tokens` needs while generating: its key/value cache (2 x layers x KV heads x head
    dim per token), the float32 logits of a step, and one MLP activation of its prefill."""
    layers = getattr(config, "num_hidden_layers", None) or 32
    heads = getattr(config, "num_attention_heads", None) or 32
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    hidden = getattr(config, "hidden_size", None) or 4096
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    inner = getattr(config, "intermediate_size", None) or 4 * hidden
    vocab = getattr(config, "vocab_size", None) or 32000
    return 2 * layers * kv_heads * head_dim * dtype_bytes * tokens + 4 * vocab + inner * tokens * dtype_bytes


def choose_batch_size(requested: int | str, device: str, free_bytes: int | None = None,
                      per_sequence: int | None = None, fraction: float = AUTO_MEMORY_FRACTION,
                      largest: int = AUTO_MAX_BATCH) -> BatchChoice:
    """The generation batch: an explicit number as given; `auto` is `CPU_BATCH` off CUDA, and on CUDA the largest
    power of two whose sequences fit in `fraction` of the free memory, at most `largest` (at least 1)."""
    if requested != "auto":
        return BatchChoice(int(requested), "explicit")
    if not str(device).startswith("cuda") or not free_bytes or not per_sequence:
        return BatchChoice(CPU_BATCH, "auto: cpu")
    fits = max(1, min(largest, int(free_bytes * fraction) // per_sequence))
    return BatchChoice(1 << (fits.bit_length() - 1), "auto: free memory", free_bytes, per_sequence,
                       AUTO_SEQUENCE_TOKENS)


class HFBackend:
    name = "hf"

    def __init__(self, model: ResolvedModel, dtype: str = "auto", device: str = "auto",
                 batch_size: int | str = "auto", share_prefill: bool = True):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if dtype not in DTYPES:
            raise SparError(f"--dtype {dtype!r}: choose from {', '.join(DTYPES)}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.model_ref, self.device, self.dtype, self._torch = model, device, dtype, torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model.path)
            self.model = AutoModelForCausalLM.from_pretrained(model.path, dtype=getattr(torch, dtype)).to(device)
        except (OSError, ValueError) as exc:
            raise SparError(f"--model {model.spec}: cannot load it with transformers: {str(exc).splitlines()[0]}") from None
        self.model.eval()
        self.batch = self._choose_batch(batch_size)
        self.batch_size = self.batch.size
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.has_chat_template = bool(self.tokenizer.chat_template)
        self.share_prefill = share_prefill
        self.identity = f"{model.identity}|dtype={dtype}"

    def render(self, request: ChatRequest) -> str:
        messages = request.messages_as_dicts()
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # A base model without a template sees the turns' contents joined; recorded in describe().
        return "\n\n".join(m["content"] for m in messages)

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model_ref.to_dict(), "dtype": self.dtype, "device": self.device,
                "batch_size": self.batch_size, "batch": self.batch.to_dict(), "chat_template": self.has_chat_template}

    def _choose_batch(self, requested: int | str) -> BatchChoice:
        """`choose_batch_size` with this device's free memory (after the weights are loaded) and this model's shape."""
        if requested != "auto" or not self.device.startswith("cuda"):
            return choose_batch_size(requested, self.device)
        torch = self._torch
        free, _ = torch.cuda.mem_get_info(torch.device(self.device))
        per_seq = bytes_per_sequence(self.model.config, torch.finfo(getattr(torch, self.dtype)).bits // 8)
        return choose_batch_size(requested, self.device, free, per_seq)

    def generate(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        # Requests sharing sampling settings go through generate() together; per-batch seeds depend only on the
        # batch's own requests, so the same batch gives the same text however the run was interrupted before.
        results: list[list[Completion] | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault((req.sampling, req.n), []).append(i)
        for (sampling, n), idx in groups.items():
            # a size chosen from free memory counts sequences: n samples per request take n of them (an explicit or
            # CPU size stays a number of requests, so that batches, and so their seeds, are what they always were)
            step = max(1, self.batch_size // n) if self.batch.source == "auto: free memory" else self.batch_size
            for start in range(0, len(idx), step):
                chunk = idx[start:start + step]
                outs = self._generate_batch([requests[i] for i in chunk], sampling, n)
                for i, out in zip(chunk, outs):
                    results[i] = out
        return results  # type: ignore[return-value]

    def _generate_batch(self, requests, sampling, n) -> list[list[Completion]]:
        torch = self._torch
        texts = [self.render(r) for r in requests]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not self.has_chat_template)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, num_return_sequences=n,
                      pad_token_id=self.tokenizer.pad_token_id)
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            torch.manual_seed(derive_seed(json.dumps([[r.seed, t] for r, t in zip(requests, texts)])))
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            shareable = n > 1 or len(set(texts)) < len(texts)
            out = self._shared_prefix_generate(enc, kwargs, n, texts) if shareable and self.share_prefill else None
            if out is None:
                out = self.model.generate(**enc, **kwargs)
        prompt_len = enc["input_ids"].shape[1]
        new = out[:, prompt_len:].tolist()
        eos = set(_as_list(self.model.generation_config.eos_token_id)) | {self.tokenizer.eos_token_id}
        eos.add(self.tokenizer.pad_token_id)  # finished rows are padded; pad tokens are never content
        results = []
        for b, req in enumerate(requests):
            prompt_tokens = int(enc["attention_mask"][b].sum())
            row = []
            for j in range(n):
                ids = new[b * n + j]
                end = next((k for k, t in enumerate(ids) if t in eos), None)
                ids = ids[:end] if end is not None else ids
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                text, stopped = truncate_at_stop(text, sampling.stop)
                reason = "stop" if (end is not None or stopped or len(ids) < sampling.max_new_tokens) else "length"
                row.append(Completion(text, reason, prompt_tokens, len(ids)))
            results.append(row)
        return results

    def _shared_prefix_generate(self, enc: dict, kwargs: dict, n: int, texts: list[str]):
        """Each distinct prompt of the batch encoded once: prefill the distinct rows, repeat their cache for every
        sample that continues them (n per request, and requests with the same prompt, such as a tree node's
        sibling refinements), then sample exactly as transformers' own path would (same rows in the same order, same
        random draws). That path encodes every row separately, which dominates the cost of short judgments of long
        prompts (SPaR's n-vote judging). Returns None (the caller falls back) where this transformers version or
        model does not support it."""
        torch = self._torch
        try:
            from transformers import DynamicCache

            cache_arg = self._cache_kwarg()
            ids, mask = enc["input_ids"], enc["attention_mask"]
            if cache_arg is None or ids.shape[1] < 2:
                return None
            slot: dict[str, int] = {}  # distinct prompt -> its row in the prefilled cache
            distinct: list[int] = []  # the batch row that prefills each distinct prompt
            for i, text in enumerate(texts):
                if text not in slot:
                    slot[text] = len(distinct)
                    distinct.append(i)
            rows = torch.tensor([slot[t] for t in texts for _ in range(n)], device=ids.device)
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            cache = DynamicCache(config=self.model.config)
            # the last prompt token is left for generate(), which needs at least one uncached token
            self.model(input_ids=ids[distinct, :-1], attention_mask=mask[distinct, :-1],
                       position_ids=positions[distinct, :-1], use_cache=True, **{cache_arg: cache})
            cache.batch_select_indices(rows)
            return self.model.generate(input_ids=ids.repeat_interleave(n, 0), attention_mask=mask.repeat_interleave(n, 0),
                                       **{**kwargs, "num_return_sequences": 1, cache_arg: cache})
        except (TypeError, ValueError, AttributeError, NotImplementedError, IndexError):
            self.share_prefill = False  # unsupported here: use transformers' own path from now on
            return None

    def _cache_kwarg(self) -> str | None:
        import inspect

        params = inspect.signature(self.model.forward).parameters
        return next((name for name in ("cache", "past_key_values") if name in params), None)

    def close(self) -> None:
        """Drop the weights; on CUDA also hand the allocator's cached blocks back, so the next stage (training, a
        server) finds the memory free."""
        self.model = None
        if str(self.device).startswith("cuda"):
            import gc

            gc.collect()
            self._torch.cuda.empty_cache()


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
