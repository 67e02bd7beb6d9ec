"""Typed requests and completions shared by every backend and evaluator."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness.core.options import PositiveInt, Temperature, TopP, option, options


@options
class SamplingParams:
    """Decoding settings (ranges checked when built, so a config with a bad value fails when it is read).
    temperature 0 means greedy decoding."""

    temperature: Temperature = option(0.0, "sampling temperature; 0 = greedy")
    top_p: TopP = option(1.0, "nucleus sampling p, in (0, 1]")
    max_new_tokens: PositiveInt = option(512, "generation budget in tokens")
    stop: tuple[str, ...] = option((), "stop strings (the text is cut before the first one)")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """One chat conversation to complete `n` times. `seed` makes sampling reproducible."""

    messages: tuple[Message, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0
    n: int = 1

    @classmethod
    def user(cls, text: str, **kw) -> "ChatRequest":
        return cls(messages=(Message("user", text),), **kw)

    def messages_as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Completion":
        return cls(**{k: d[k] for k in ("text", "finish_reason", "prompt_tokens", "completion_tokens") if k in d})
