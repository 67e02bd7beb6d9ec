"""Any OpenAI-compatible chat server: `vllm serve`, `transformers serve`, hosted APIs.

Each sample is its own request with n=1 and seed = request seed + sample index: servers differ in whether they
honour `n` (transformers serve does not), and one request per sample maps one-to-one onto cache entries.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from harness.errors import SparError
from harness.types import ChatRequest, Completion

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", api_key_env: str = "OPENAI_API_KEY",
                 max_concurrency: int = 8, max_retries: int = 5, timeout_s: float = 600.0,
                 model_revision: str | None = None, batch_size: int | None = None):
        import httpx

        self.model, self.base_url = model, base_url.rstrip("/")
        self.max_concurrency, self.max_retries, self.timeout_s = max_concurrency, max_retries, timeout_s
        self.batch_size = batch_size or max_concurrency * 4
        self.api_key_env = api_key_env
        headers = {"content-type": "application/json"}
        key = os.environ.get(api_key_env)
        if key:
            headers["authorization"] = f"Bearer {key}"  # the key itself is never recorded
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s,
                                    limits=httpx.Limits(max_connections=max_concurrency))
        self._httpx = httpx
        self.identity = f"openai-model:{model}" + (f"@{model_revision}" if model_revision else "")
        self._check_reachable()

    def _check_reachable(self) -> None:
        try:
            self._client.get("/models", timeout=min(self.timeout_s, 30.0))
        except self._httpx.HTTPError as exc:
            raise SparError(f"--base-url {self.base_url}: server unreachable ({type(exc).__name__}: {exc})") from None

    def render(self, request: ChatRequest) -> str:
        return json.dumps(request.messages_as_dicts(), ensure_ascii=False)

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model, "identity": self.identity, "base_url": self.base_url,
                "api_key_env": self.api_key_env, "max_concurrency": self.max_concurrency,
                "max_retries": self.max_retries, "timeout_s": self.timeout_s}

    def generate(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        jobs = [(i, j) for i, r in enumerate(requests) for j in range(r.n)]
        results: list[list[Completion | None]] = [[None] * r.n for r in requests]
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            for (i, j), comp in zip(jobs, pool.map(lambda ij: self._one(requests[ij[0]], ij[1]), jobs)):
                results[i][j] = comp
        return results  # type: ignore[return-value]

    def _one(self, request: ChatRequest, sample: int) -> Completion:
        s = request.sampling
        body = {"model": self.model, "messages": request.messages_as_dicts(), "temperature": s.temperature,
                "top_p": s.top_p, "max_tokens": s.max_new_tokens, "seed": request.seed + sample, "n": 1}
        if s.stop:
            body["stop"] = list(s.stop)
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._client.post("/chat/completions", json=body)
                if resp.status_code == 200:
                    return _parse(resp.json())
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if resp.status_code not in RETRY_STATUS:
                    break
            except self._httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.max_retries:
                time.sleep(min(30.0, 0.5 * 2**attempt) * (0.5 + random.random()))
        raise SparError(f"{self.base_url}/chat/completions failed after {self.max_retries} retries: {last}")

    def close(self) -> None:
        self._client.close()


def _parse(payload: dict) -> Completion:
    try:
        choice = payload["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError):
        raise SparError(f"server answered without choices[0].message: {json.dumps(payload)[:200]}") from None
    usage = payload.get("usage") or {}
    return Completion(text, choice.get("finish_reason") or "stop", int(usage.get("prompt_tokens") or 0),
                      int(usage.get("completion_tokens") or 0))
