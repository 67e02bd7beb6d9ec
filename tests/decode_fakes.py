"""A counting fake for decoding at a budget (`--backend tests.decode_fakes:CountingBackend --model FOLDER/SCRIPT`):
every request the backend receives is logged (`RECEIVED`), so tests compare a run's record with what was asked.

Scripts: `always-no` (every judgment a parseable No, every refinement unwraps), `never-parses` (no judgment has a
verdict), `flaky-refiner` (always No; every third refine reply has no [[start]] marker), `prefers-2` (Yes only for the
third best-of-n candidate). Actor answers end with finish reason "length" and 100 + j tokens (candidate j);
refinements with "stop" and as many tokens as the reply has characters, so a record can tell them apart.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.backends.fake import JUDGE_PREFIX, REFINE_MARK, FakeBackend, _h, _quoted_output, render
from harness.core.types import ChatRequest, Completion

RECEIVED: list[ChatRequest] = []
SCRIPTS = ("always-no", "never-parses", "flaky-refiner", "prefers-2")

NO = "Step-by-step verification: it misses a constraint.\nFinal Judgement (if the Output accurately follows the Prompt): No"
YES = "Step-by-step verification: fine.\nFinal Judgement (if the Output accurately follows the Prompt): Yes"


def kind(request: ChatRequest) -> str:
    """actor, judge or refine."""
    last = request.messages[-1].content
    return "judge" if last.startswith(JUDGE_PREFIX) else "refine" if last.startswith(REFINE_MARK) else "actor"


class CountingBackend(FakeBackend):
    """Built by the harness from a model folder (any folder with a config.json) named after its script."""

    name = "counting"

    def __init__(self, model=None, batch_size: int = 8, **_):
        script = Path(getattr(model, "path", "always-no")).name
        super().__init__(script, script, 8 if batch_size == "auto" else int(batch_size), reply=lambda r, j: "")
        self.identity = f"counting:{script}"

    def completion(self, request: ChatRequest, j: int) -> Completion:
        what, h = kind(request), _h(render(request), request.seed, j)
        if what == "actor":
            return Completion(f"answer {h % 10007} cand{j}", "length", 10, 100 + j)
        if what == "refine":
            if self.script == "flaky-refiner" and h % 3 == 0:
                return Completion("I would refine it but forget the markers.", "stop", 10, 5)
            reply = f"Reflection: fix it.\nFinal Refined Output: [[start]] {_quoted_output(request.messages[0].content)}" \
                    f" +{h % 97} [[end]]"
            return Completion(reply, "stop", 10, len(reply))
        if self.script == "never-parses":
            return Completion("I cannot tell.", "stop", 10, 4)
        if self.script == "prefers-2":
            return Completion(YES if "cand2" in request.messages[-1].content else NO, "stop", 10, 20)
        return Completion(NO, "stop", 10, 20)

    def generate(self, requests):
        RECEIVED.extend(requests)
        return [[self.completion(r, j) for j in range(r.n)] for r in requests]
