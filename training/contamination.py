"""Contamination check: do the training prompts (and, optionally, responses) overlap the benchmarks' prompts?

SPaR's self-play prompts are evolved from seed tasks; an IFEval-like constraint set in training and in the test
alike inflates the measured gain. This module compares training texts with each benchmark's prompts (loaded by the
benchmark's own evaluator: IFEval `prompt`, FollowBench `instruction`, LLMBar `input`, ...) in two ways:

- **exact match after normalisation**: the two normalised word sequences are equal;
- **n-gram overlap** (n = 13 by default, as in the GPT-3 and LLaMA contamination reports): the two texts share at
  least one n-word sequence.

Normalisation (lm-eval's decontamination `Janitor`, after GPT-3): ASCII punctuation deleted, lower-cased, split on
whitespace. A text with fewer than n words has no n-gram; `short` says how it is compared: `contained` (default)
= it overlaps when its whole word sequence occurs inside the other text (an n-gram test with n lowered to its
length), provided it has at least `min_words` words (8, GPT-3's smallest n); a shorter text, or any short text under
`exact`, counts only on an exact match.

Used by `spar contamination` (any prompt file) and at the start of `spar run` (the run's prompt pool against the
benchmarks it evaluates: a note, and the figures in the run's records).
"""

from __future__ import annotations

import string
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.core.errors import DataError, SparError
from harness.core.options import PositiveInt, option, options
from training.sources import BUILTIN_PROMPTS, PROMPT_FIELDS, read_rows

NORMALISATION = "ASCII punctuation deleted, lower-cased, split on whitespace (lm-eval's Janitor, after GPT-3)"
#: the benchmarks `spar contamination` compares with when none are named (the ones SPaR evaluates on)
DEFAULT_BENCHMARKS = "ifeval,followbench,llmbar"
RESPONSE_FIELDS = ("response", "output", "completion", "chosen", "rejected")
_KEY_FIELDS = ("subset", "category", "key", "example_id", "index", "level")
_PUNCT = str.maketrans("", "", string.punctuation)


@options
class ContaminationConfig:
    """The contamination check of `spar run` (and the defaults of `spar contamination`)."""

    check: bool = option(True, "at the start of spar run, compare the prompt pool with the prompts of the benchmarks "
                               "the run evaluates (a note when they overlap; the figures go into the records)")
    n: PositiveInt = option(13, "n-gram length in normalised words (13 as in the GPT-3 / LLaMA reports)")
    short: Literal["contained", "exact"] = option(
        "contained", "a text shorter than n words: contained = overlaps when its whole word sequence occurs inside "
                     "the other text (if it has at least min_words words); exact = only an exact match counts")
    min_words: PositiveInt = option(8, "short: contained: texts with fewer words than this count only on an exact "
                                       "match (GPT-3's smallest n)")


def normalise(text: str) -> tuple[str, ...]:
    """The words compared: ASCII punctuation deleted, lower-cased, split on whitespace."""
    return tuple(text.translate(_PUNCT).lower().split())


@dataclass(frozen=True)
class Text:
    """One compared text: a training prompt or response, or a benchmark prompt."""

    key: str
    text: str
    field: str = "prompt"
    words: tuple[str, ...] = ()

    @staticmethod
    def of(key: str, text: str, field: str = "prompt") -> "Text":
        return Text(key, text, field, normalise(text))


@dataclass(frozen=True)
class Overlap:
    """A training text that overlaps one benchmark prompt. `kind`: exact | ngram | contained (a text shorter than n
    words found whole inside the other); `shared`: distinct shared n-grams (ngram), else the matched length."""

    benchmark: str
    benchmark_key: str
    training_key: str
    training_field: str
    kind: str
    shared: int
    example: str
    training_text: str
    benchmark_text: str


@dataclass
class BenchmarkFigures:
    """Per benchmark: how many of its prompts a training text overlaps, and how many training texts overlap it."""

    items: int
    items_exact: int = 0
    items_overlapping: int = 0  # exact, n-gram and contained together
    training_exact: int = 0
    training_overlapping: int = 0
    source: dict = field(default_factory=dict)


@dataclass
class ContaminationReport:
    """What `check` found: settings, per-benchmark figures and every overlapping pair."""

    n: int
    short: str
    min_words: int
    training: dict
    benchmarks: dict[str, BenchmarkFigures]
    pairs: list[Overlap]
    skipped: dict[str, str] = field(default_factory=dict)  # benchmark -> why it was not compared
    seconds: float = 0.0
    normalisation: str = NORMALISATION

    def figures(self) -> dict:
        """The record's summary (the pairs go to their own file)."""
        out = asdict(self)
        out.pop("pairs")
        return out

    def overlapping(self) -> dict[str, BenchmarkFigures]:
        return {name: f for name, f in self.benchmarks.items() if f.items_overlapping}


# -- comparing -----------------------------------------------------------------------------------------------------
def _ngrams(words: tuple[str, ...], n: int) -> set[tuple[str, ...]]:
    return {words[i:i + n] for i in range(len(words) - n + 1)}


def _padded(words: tuple[str, ...]) -> str:
    return " " + " ".join(words) + " "


def _contained(short: list[tuple[int, Text]], long: list[Text]) -> dict[tuple[int, int], int]:
    """(short index, long index) -> length, for each short text whose whole word sequence occurs in a long text."""
    found: dict[tuple[int, int], int] = {}
    padded = [_padded(t.words) for t in long]
    everything = "\n".join(padded)
    for i, text in short:
        needle = _padded(text.words)
        if needle not in everything:  # one scan rules most texts out
            continue
        for j, hay in enumerate(padded):
            if needle in hay:
                found[(i, j)] = len(text.words)
    return found


Found = dict[tuple[int, int], tuple[str, int, str]]  # (training index, benchmark index) -> (kind, shared, example)


def _exact(training: list[Text], bench: list[Text], pairs: Found) -> None:
    by_words: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j, b in enumerate(bench):
        if b.words:
            by_words[b.words].append(j)
    for i, t in enumerate(training):
        for j in by_words.get(t.words, ()):
            pairs[(i, j)] = ("exact", len(t.words), " ".join(t.words))


def _shared_ngrams(training: list[Text], bench: list[Text], n: int, pairs: Found) -> None:
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j, b in enumerate(bench):
        for gram in _ngrams(b.words, n):
            index[gram].append(j)
    for i, t in enumerate(training):
        shared: dict[int, list] = defaultdict(list)
        for gram in _ngrams(t.words, n):
            for j in index.get(gram, ()):
                shared[j].append(gram)
        for j, grams in shared.items():
            pairs.setdefault((i, j), ("ngram", len(grams), " ".join(min(grams))))


def _short_contained(training: list[Text], bench: list[Text], n: int, min_words: int, pairs: Found) -> None:
    """Texts of min_words..n-1 words (no n-gram) found whole inside a text of the other side."""
    short_training = [(i, t) for i, t in enumerate(training) if min_words <= len(t.words) < n]
    for (i, j), k in _contained(short_training, bench).items():
        pairs.setdefault((i, j), ("contained", k, " ".join(training[i].words)))
    short_bench = [(j, b) for j, b in enumerate(bench) if min_words <= len(b.words) < n]
    for (j, i), k in _contained(short_bench, training).items():
        pairs.setdefault((i, j), ("contained", k, " ".join(bench[j].words)))


def compare(name: str, training: list[Text], bench: list[Text], n: int = 13, short: str = "contained",
            min_words: int = 8) -> list[Overlap]:
    """Every (training text, benchmark prompt) pair that overlaps: exact matches first, then by shared n-grams."""
    pairs: Found = {}
    _exact(training, bench, pairs)
    _shared_ngrams(training, bench, n, pairs)
    if short == "contained":
        _short_contained(training, bench, n, min_words, pairs)
    order = sorted(pairs, key=lambda p: (pairs[p][0] != "exact", -pairs[p][1], p))  # exact, then most shared
    return [Overlap(name, bench[j].key, training[i].key, training[i].field, *pairs[(i, j)], training[i].text,
                    bench[j].text) for i, j in order]


def figures_of(pairs: list[Overlap], items: int, source: dict | None = None) -> BenchmarkFigures:
    """One benchmark's counts from its overlapping pairs (a benchmark prompt or training text counted once)."""
    exact = [p for p in pairs if p.kind == "exact"]
    return BenchmarkFigures(items=items, items_exact=len({p.benchmark_key for p in exact}),
                            items_overlapping=len({p.benchmark_key for p in pairs}),
                            training_exact=len({(p.training_key, p.training_field) for p in exact}),
                            training_overlapping=len({(p.training_key, p.training_field) for p in pairs}),
                            source=source or {})


def check(training: list[Text], benchmarks: dict[str, tuple[list[Text], dict]], n: int = 13,
          short: str = "contained", origin: str = "", min_words: int = 8) -> ContaminationReport:
    """Compare the training texts with each benchmark's prompts ({name: (texts, source)})."""
    started = time.perf_counter()
    figures, pairs = {}, []
    for name, (texts, source) in benchmarks.items():
        found = compare(name, training, texts, n, short, min_words)
        figures[name] = figures_of(found, len(texts), source)
        pairs += found
    counts = defaultdict(int)
    for t in training:
        counts[t.field] += 1
    return ContaminationReport(n=n, short=short, min_words=min_words,
                               training={"source": origin, "texts": dict(counts)},
                               benchmarks=figures, pairs=pairs, seconds=round(time.perf_counter() - started, 3))


# -- reading the texts ---------------------------------------------------------------------------------------------
def _get(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _item_key(item: Any, i: int) -> str:
    parts = [str(v) for v in (_get(item, f) for f in _KEY_FIELDS) if v is not None]
    return ":".join(parts) if parts else str(i)


class NoPromptTexts(SparError):
    """A benchmark whose items carry no prompt text to compare (e.g. an lm-eval task that drives itself)."""


def benchmark_texts(name: str, source: str | None = None, bench_options: Any = None) -> tuple[list[Text], dict]:
    """A benchmark's prompts, read by its own evaluator (its data source as `spar eval --data`, default the local
    data folder or the hub), and where they came from."""
    from evaluators import get_evaluator

    data = get_evaluator(name, bench_options).load(source)
    texts = []
    for i, item in enumerate(data.items):
        text = next((v for v in (_get(item, f) for f in PROMPT_FIELDS) if isinstance(v, str)), None)
        if text is None:
            raise NoPromptTexts(f"contamination: benchmark {name}: its items have no prompt text "
                                f"({', '.join(PROMPT_FIELDS)}); it cannot be compared")
        texts.append(Text.of(_item_key(item, i), text))
    if not texts:
        raise SparError(f"contamination: benchmark {name}: no items")
    return texts, data.source


def _turns(value: Any, role: str) -> list[str]:
    if not isinstance(value, list):
        return []
    return [t["content"] for t in value if isinstance(t, dict) and t.get("role") == role
            and isinstance(t.get("content"), str)]


def _row_texts(row: dict, key: str, responses: bool) -> tuple[str | None, list[Text]]:
    """(prompt, [responses]) of one training row: a prompt/instruction/input string or the user turns of a
    `prompt` / `messages` list; responses from response/output/completion/chosen/rejected (strings or assistant
    turns) and the assistant turns of `messages`."""
    prompt = next((row[f] for f in PROMPT_FIELDS if isinstance(row.get(f), str) and row[f].strip()), None)
    if prompt is None:
        users = _turns(row.get("prompt"), "user") or _turns(row.get("messages"), "user")
        prompt = "\n".join(users) or None
    out = []
    if responses:
        for f in (*RESPONSE_FIELDS, "messages"):
            value = row.get(f)
            for text in ([value] if isinstance(value, str) else _turns(value, "assistant")):
                out.append(Text.of(key, text, f"response:{f}"))
    return prompt, out


def training_texts(source: str, responses: bool = False) -> tuple[list[Text], str]:
    """The training prompts (and responses) of a JSON/JSONL file, hub id or `builtin` (the self-play prompts)."""
    rows, origin = read_rows(str(BUILTIN_PROMPTS) if source == "builtin" else source)
    texts: list[Text] = []
    answers: list[Text] = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(origin, "expected an object", i)
        key = str(row.get("key", row.get("id", f"line {i}")))
        prompt, found = _row_texts(row, key, responses)
        if prompt is None:
            raise DataError(origin, f"no prompt text (one of {', '.join(PROMPT_FIELDS)}, or user turns in "
                                    "prompt/messages)", i, PROMPT_FIELDS[0])
        texts.append(Text.of(key, prompt))
        answers += found
    if not texts:
        raise SparError(f"{origin}: no prompts")
    if responses and not answers:
        raise SparError(f"{origin}: --responses: no responses found ({', '.join(RESPONSE_FIELDS)} or assistant "
                        "turns in messages)")
    return texts + answers, origin


def check_prompt_pool(pool: list[tuple[str, str]], benchmarks: list[str], sources: dict[str, str | None],
                      cfg: ContaminationConfig, origin: str = "", bench_options: dict | None = None
                      ) -> ContaminationReport:
    """`spar run`: the (key, prompt) pool against the benchmarks it evaluates; a benchmark whose items have no
    prompt text, or whose data cannot be read here, is not compared and is listed in `skipped` with the reason."""
    texts = [Text.of(key, text) for key, text in pool]
    loaded, skipped = {}, {}
    for name in dict.fromkeys(benchmarks):
        try:
            loaded[name] = benchmark_texts(name, sources.get(name), (bench_options or {}).get(name))
        except SparError as exc:
            skipped[name] = str(exc)
    report = check(texts, loaded, cfg.n, cfg.short, origin, cfg.min_words)
    report.skipped = skipped
    return report


def note(report: ContaminationReport) -> str | None:
    """One line for the start of `spar run` when the pool overlaps a benchmark; None when it does not."""
    hits = report.overlapping()
    if not hits:
        return None
    parts = [f"{name}: {f.items_overlapping} of {f.items} prompts ({f.items_exact} exact)" for name, f in hits.items()]
    return (f"contamination: the prompt pool overlaps benchmarks it is evaluated on ({report.n}-gram or exact "
            f"match after normalisation): {'; '.join(parts)}")
