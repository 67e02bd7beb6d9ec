"""A scripted Self-/Meta-Rewarding model for tests: deterministic answers of varied length, 5-point judgments
(`Score: k`, some unparseable, some over-long) and meta-judgments (`Winner: Judgement A|B`, biased to the first
position, some unparseable). Use it as the packaged fake backend's script (`models.backend: fake`,
`models.script: tests.rewarding_fake:reply`) or as a backend (`models.backend: tests.rewarding_fake:RewardingBackend`,
which is named after the checkpoint it stands in for, logs each call's size to SPAR_FAKE_CALL_LOG and sleeps
SPAR_FAKE_DELAY seconds per call)."""

from __future__ import annotations

import hashlib
import os
import time

from harness.core.backends.fake import FakeBackend, render, selfplay_reply
from harness.core.types import ChatRequest

SCORE_HEAD = "Review the user's question and the corresponding response using the additive 5-point"
META_HEAD = "Review the user's question and the corresponding response, along with two judgments."


def _h(*parts: object) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def reply(request: ChatRequest, j: int) -> str:
    text = request.messages[-1].content
    h = _h(render(request), request.seed, j)
    if text.startswith(SCORE_HEAD):
        if h % 7 == 0:
            return "The response is fine, I suppose."  # no score: dropped and counted
        words = " ".join(["detail"] * (160 if h % 9 == 0 else 5 + h % 20))  # now and then over-long
        return f"The response covers the question ({words}).\nScore: {h % 6}"
    if text.startswith(META_HEAD):
        if h % 11 == 0:
            return "Both judgments have merit."  # unparseable
        return f"Judgment {'A' if h % 3 else 'B'} applies the rubric better.\nWinner: Judgement {'A' if h % 3 else 'B'}"
    return f"answer {h % 997} " + " ".join(["word"] * (h % 25))


class RewardingBackend(FakeBackend):
    name = "rewarding"

    def __init__(self, model=None, batch_size: int = 8, **_):
        super().__init__("rewarding", "tests.rewarding_fake:reply", batch_size, reply=reply)
        self.identity = f"rewarding-v1|{model.identity}" if model is not None else "rewarding-v1"
        self.log = os.environ.get("SPAR_FAKE_CALL_LOG")
        self.delay = float(os.environ.get("SPAR_FAKE_DELAY", "0"))

    def generate(self, requests):
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{len(requests)}\n")
        if self.delay:
            time.sleep(self.delay)
        return super().generate(requests)


def selfplay_even(request: ChatRequest, j: int) -> str:
    """The scripted SPaR actor/judge/refiner (`selfplay`) whose judge says Yes half the time whatever the output."""
    return selfplay_reply(request, j, lambda marks: 0.5)
