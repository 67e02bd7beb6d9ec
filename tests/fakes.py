"""A deterministic in-memory backend: each answer is a function of the request and its seed."""

from __future__ import annotations

import hashlib
import os
import time

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


def _h(*parts) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


class SelfPlayBackend(EchoBackend):
    """Scripted actor/judge/refiner, deterministic in (request, seed, sample index).

    Judge prompts get 'Final Judgement: Yes' with a probability that grows with the number of '+' marks in the
    judged output (each refinement adds one), plus some unparseable replies; refine prompts get a refinement between
    [[start]] and [[end]] (or, now and then, a reply without markers); anything else is an actor answer.
    `p_yes(marks)` can be replaced to script a judge."""

    name = "selfplay"

    def __init__(self, identity: str = "selfplay-v1", batch_size: int = 8, p_yes=None, model=None, **_):
        # built by the harness (`--backend tests.fakes:SelfPlayBackend`), it is named after the checkpoint it stands
        # in for; SPAR_FAKE_CALL_LOG (a file) records each call's size, SPAR_FAKE_DELAY slows every call down
        super().__init__(f"{identity}|{model.identity}" if model is not None else identity, batch_size)
        self.p_yes = p_yes or (lambda marks: min(0.05 + 0.1 * marks, 0.95))
        self.log = os.environ.get("SPAR_FAKE_CALL_LOG")
        self.delay = float(os.environ.get("SPAR_FAKE_DELAY", "0"))

    def _one(self, r, j: int) -> str:
        from evaluators.judging import REFINE_INSTRUCTION

        msgs = r.messages
        rendered = self.render(r)
        if msgs[-1].content == REFINE_INSTRUCTION:
            response = msgs[0].content.split("Output: \u201c", 1)[1].rsplit("\u201d", 1)[0]
            h = _h(rendered, r.seed, j)
            if h % 11 == 0:
                return "I would refine it but forget the markers."
            return f"Reflection on how to refine the Output: fix it.\nFinal Refined Output: [[start]] {response} +{h % 97} [[end]]"
        if msgs[-1].content.startswith("Please act an expert"):
            output = msgs[-1].content.split("Output: \u201c", 1)[1].rsplit("\u201d", 1)[0]
            h = _h(rendered, r.seed, j)
            if h % 13 == 0:
                return "Step-by-step verification: hmm."
            yes = (h % 1000) / 1000 < self.p_yes(output.count("+"))
            return f"Step-by-step verification: checked {h % 100}.\nFinal Judgement (if the Output accurately " \
                   f"follows the Prompt): {'Yes' if yes else 'No'}"
        return f"answer {_h(rendered, r.seed, j) % 10007}"

    def generate(self, requests):
        self.calls.append(len(requests))
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{len(requests)}\n")
        if self.delay:
            time.sleep(self.delay)
        return [[Completion(self._one(r, j), "stop", 1, 2) for j in range(r.n)] for r in requests]
