"""A deterministic in-memory backend: each answer is a function of the request and its seed."""

from __future__ import annotations

import hashlib

from harness.types import ChatRequest, Completion


class EchoBackend:
    name = "echo"

    def __init__(self, identity: str = "echo-v1", batch_size: int = 4):
        self.identity, self.batch_size = identity, batch_size
        self.calls: list[int] = []  # batch sizes seen

    def render(self, request: ChatRequest) -> str:
        return "|".join(f"{m.role}:{m.content}" for m in request.messages)

    def generate(self, requests):
        self.calls.append(len(requests))
        out = []
        for r in requests:
            row = []
            for j in range(r.n):
                tag = hashlib.sha256(f"{self.render(r)}/{r.seed}/{j}/{r.sampling}".encode()).hexdigest()[:8]
                row.append(Completion(f"answer {tag}", "stop", 1, 2))
            out.append(row)
        return out

    def describe(self) -> dict:
        return {"backend": self.name}

    def close(self) -> None:
        pass
