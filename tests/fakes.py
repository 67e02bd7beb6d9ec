"""Test doubles built on the packaged fake backend (harness.core.backends.fake): deterministic answers, call logging."""

from __future__ import annotations

import os
import time

from harness.core.backends.fake import FakeBackend, selfplay_reply


class EchoBackend(FakeBackend):
    name = "echo"

    def __init__(self, identity: str = "echo-v1", batch_size: int = 4):
        super().__init__("echo", "echo", batch_size)
        self.identity = identity


class SelfPlayBackend(FakeBackend):
    """The scripted SPaR actor/judge/refiner (`script: selfplay`) with a replaceable `p_yes(marks)`.

    Built by the harness (`--backend tests.fakes:SelfPlayBackend`), it is named after the checkpoint it stands in
    for; SPAR_FAKE_CALL_LOG (a file) records each call's size, SPAR_FAKE_DELAY slows every call down."""

    name = "selfplay"

    def __init__(self, identity: str = "selfplay-v1", batch_size: int = 8, p_yes=None, model=None, **_):
        super().__init__("selfplay", "selfplay", batch_size,
                         reply=lambda r, j: selfplay_reply(r, j, p_yes))
        self.identity = f"{identity}|{model.identity}" if model is not None else identity
        self.log = os.environ.get("SPAR_FAKE_CALL_LOG")
        self.delay = float(os.environ.get("SPAR_FAKE_DELAY", "0"))

    def generate(self, requests):
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{len(requests)}\n")
        if self.delay:
            time.sleep(self.delay)
        return super().generate(requests)
