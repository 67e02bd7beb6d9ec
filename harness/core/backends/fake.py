"""A deterministic fake model (`--backend fake`), as inspect_ai ships `mockllm`: dry-run a config, test a pipeline.

Answers depend only on the request, its seed and the sample index, so runs are reproducible and resumable. What it
answers is chosen by `script` (`--set model.script=...`):
- `echo` (default): "answer <hash>" for every request;
- `selfplay`: a scripted SPaR actor/judge/refiner: judge prompts get a step-by-step text and a `Final Judgement:`
  Yes with a probability that grows with the number of `+` marks in the judged output (each refinement adds one),
  with some unparseable replies; refine prompts get a refinement between [[start]] and [[end]] (now and then a
  reply without markers); anything else gets an actor answer;
- a JSONL or YAML file of rules `{match: REGEX, reply: TEXT}` tried in order on the last user message (the first
  match answers; `reply` may use `{n}` for the sample index; no match -> the echo answer);
- `module:function`: a Python function `(request: ChatRequest, sample_index: int) -> str`, imported from the
  installed packages or the current directory (`tests.rewarding_fake:reply` from the project folder).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Callable, Sequence

from harness.core.errors import SparError
from harness.core.paths import import_user_module
from harness.core.types import ChatRequest, Completion

Reply = Callable[[ChatRequest, int], str]

JUDGE_PREFIX = "Please act an expert"
REFINE_MARK = "Based on your judgement, refine the Output"


def _h(*parts: object) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def render(request: ChatRequest) -> str:
    return "|".join(f"{m.role}:{m.content}" for m in request.messages)


def echo_reply(request: ChatRequest, j: int) -> str:
    tag = hashlib.sha256(f"{render(request)}/{request.seed}/{j}/{request.sampling}".encode()).hexdigest()[:8]
    return f"answer {tag}"


def _quoted_output(text: str) -> str:
    return text.split("Output: \u201c", 1)[1].rsplit("\u201d", 1)[0] if "Output: \u201c" in text else text


def selfplay_reply(request: ChatRequest, j: int, p_yes: Callable[[int], float] | None = None) -> str:
    """The scripted SPaR actor / judge / refiner (see the module docstring)."""
    p_yes = p_yes or (lambda marks: min(0.05 + 0.1 * marks, 0.95))
    msgs = request.messages
    rendered = render(request)
    h = _h(rendered, request.seed, j)
    if msgs[-1].content.startswith(REFINE_MARK):
        if h % 11 == 0:
            return "I would refine it but forget the markers."
        response = _quoted_output(msgs[0].content)
        return f"Reflection on how to refine the Output: fix it.\nFinal Refined Output: [[start]] {response} +{h % 97} [[end]]"
    if msgs[-1].content.startswith(JUDGE_PREFIX):
        if h % 13 == 0:
            return "Step-by-step verification: hmm."
        yes = (h % 1000) / 1000 < p_yes(_quoted_output(msgs[-1].content).count("+"))
        return (f"Step-by-step verification: checked {h % 100}.\nFinal Judgement (if the Output accurately follows "
                f"the Prompt): {'Yes' if yes else 'No'}")
    return f"answer {_h(rendered, request.seed, j) % 10007}"


def _rules_reply(path: Path) -> Reply:
    if path.suffix in (".yaml", ".yml"):
        import yaml

        rules = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    else:
        from harness.core.data import read_jsonl

        rules = read_jsonl(path)
    compiled = []
    for i, rule in enumerate(rules, 1):
        if not isinstance(rule, dict) or not isinstance(rule.get("match"), str) or not isinstance(rule.get("reply"), str):
            raise SparError(f"{path}: rule {i}: expected {{match: REGEX, reply: TEXT}}")
        try:
            compiled.append((re.compile(rule["match"], re.S), rule["reply"]))
        except re.error as exc:
            raise SparError(f"{path}: rule {i}: bad regex ({exc})") from None

    def reply(request: ChatRequest, j: int) -> str:
        text = request.messages[-1].content
        for pattern, answer in compiled:
            if pattern.search(text):
                return answer.replace("{n}", str(j))
        return echo_reply(request, j)

    return reply


def load_script(script: str) -> Reply:
    if script in ("", "echo"):
        return echo_reply
    if script == "selfplay":
        return selfplay_reply
    path = Path(script)
    if path.is_file():
        return _rules_reply(path)
    if ":" in script:
        module, _, attr = script.partition(":")
        try:
            return getattr(import_user_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise SparError(f"fake backend script {script!r}: cannot import it ({exc}; searched the installed "
                            f"packages and the current directory)") from None
    raise SparError(f"fake backend script {script!r}: use echo, selfplay, a rules file (.jsonl/.yaml) or "
                    "module:function")


class FakeBackend:
    """Deterministic scripted completions; nothing is loaded."""

    name = "fake"

    def __init__(self, model: str = "fake", script: str = "echo", batch_size: int = 8, reply: Reply | None = None):
        self.model, self.script, self.batch_size = model, script or "echo", batch_size
        self._reply = reply or load_script(self.script)
        digest = ""
        if Path(self.script).is_file():
            digest = "@" + hashlib.sha256(Path(self.script).read_bytes()).hexdigest()[:16]
        self.identity = f"fake:{model}:{self.script}{digest}"
        self.calls: list[int] = []  # batch sizes seen (tests look at them)

    def render(self, request: ChatRequest) -> str:
        return render(request)

    def generate(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        self.calls.append(len(requests))
        out = []
        for r in requests:
            out.append([Completion(self._reply(r, j), "stop", len(render(r)) // 4, 8) for j in range(r.n)])
        return out

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model, "script": self.script, "identity": self.identity}

    def close(self) -> None:
        pass


__all__ = ["FakeBackend", "echo_reply", "load_script", "selfplay_reply"]
