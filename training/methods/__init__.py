"""Training methods on one driver: a method is one module under `training/methods/` plus one line in `BUILTIN`.

A method declares (`Method`):
- `name`: what `method:` in the experiment YAML names; `label`: the name tables print ("Self-Rewarding");
- `Config`: its options, an `harness.core.options.options` dataclass. The YAML sets them in a section named after the
  method (`self_rewarding: {candidates: 4}`) or `method_config:`, or at the top level (how SPaR configs written
  before methods existed spell `collect:`, `search:`, `data:`); every field lands in the record as
  `config.method_config`;
- `stages`: its data-building stages in order, each `(name, function(run) -> summary dict)`. A stage reads and
  writes files in `run.dir` (iter_<t>/) and asks models through `run.generate(model, label)` (cached, so a killed
  stage replays its finished calls); it must end by writing `data/dpo.jsonl` (conversational preference pairs
  for the actor's DPO) and, when the method trains a separate refiner, `data/rft.jsonl` (SFT records);
- `judge`: which model judges: "refiner" (a separate model, SPaR) or "actor" (the actor judges itself: Self-/Meta-
  Rewarding; `models.refiner` is then the actor and the refiner eval scores the actor checkpoint as a judge);
- `trains_refiner`: whether the driver runs `train_refiner` (SFT of the refiner on data/rft.jsonl);
- `summary`: the method's columns of the per-iteration table, from the stage summaries;
- `eval_bench`: default benchmark options of its eval stages (e.g. LLMBar's score5 judge prompt), under any the
  config sets.

The driver (`training/loop.py`) owns everything else: iteration lineage, stage state and resume (state.json), the
generation cache, the record, the DPO/SFT trainers and the launcher, and the eval stages (iteration 0 included).

Adding a method: write `training/methods/<name>.py` with `METHOD = Method(...)` and add one line to `BUILTIN`
(or call `register(METHOD)`, e.g. from a test or your own package).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from harness.core.errors import SparError

#: stage function: (the iteration run, training.loop.IterationRun) -> the stage's summary (lands in record.json)
StageFn = Callable[[Any], dict]
#: summary columns: (stage summaries of one finished iteration) -> {column: value}
SummaryFn = Callable[[dict], dict]


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    Config: type
    stages: tuple[tuple[str, StageFn], ...]
    judge: Literal["refiner", "actor"] = "refiner"
    trains_refiner: bool = False
    summary: SummaryFn | None = None
    eval_bench: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stages)

    def stage(self, name: str) -> StageFn:
        return dict(self.stages)[name]


#: built-in methods: name -> "module:attribute" (imported when first asked for)
BUILTIN: dict[str, str] = {
    "spar": "training.methods.spar:METHOD",
    "spar_no_tree_search": "training.methods.spar_no_tree_search:METHOD",
    "spar_no_refinement": "training.methods.spar_no_refinement:METHOD",
    "self_rewarding": "training.methods.self_rewarding:METHOD",
    "meta_rewarding": "training.methods.meta_rewarding:METHOD",
}
_REGISTERED: dict[str, Method] = {}
#: stage names the driver owns (a method's stages may not reuse them)
DRIVER_STAGES = ("train_actor", "train_refiner", "eval_actor", "eval_refiner")
EVAL_STAGES = ("eval_actor", "eval_refiner")


def iteration_stages(method: Method) -> tuple[str, ...]:
    """All stages of one iteration: the method's, then the driver's training and eval stages."""
    return (*method.stage_names, "train_actor", *(("train_refiner",) if method.trains_refiner else ()), *EVAL_STAGES)


def register(method: Method) -> Method:
    """Add (or replace) a method; checks that its stage names do not clash with the driver's (its option names are
    checked against the run config's keys when a config names it: training.config)."""
    if not method.name.isidentifier():
        raise SparError(f"method name {method.name!r}: use letters, digits and underscores")
    if not method.stages:
        raise SparError(f"method {method.name}: no stages")
    clash = [s for s in method.stage_names if s in DRIVER_STAGES]
    if clash or len(set(method.stage_names)) != len(method.stage_names):
        raise SparError(f"method {method.name}: stage names must be unique and not one of the driver's "
                        f"({', '.join(DRIVER_STAGES)})")
    if not dataclasses.is_dataclass(method.Config):
        raise SparError(f"method {method.name}: Config must be an options dataclass")
    _REGISTERED[method.name] = method
    return method


def names() -> list[str]:
    return list(dict.fromkeys([*BUILTIN, *_REGISTERED]))


def get_method(name: str) -> Method:
    if name not in _REGISTERED:
        if name not in BUILTIN:
            raise SparError(f"method: unknown method {name!r} (choose from {', '.join(names())})")
        module, _, attr = BUILTIN[name].partition(":")
        method = getattr(importlib.import_module(module), attr)
        if method.name != name:
            raise SparError(f"method {name!r}: {BUILTIN[name]} is named {method.name!r}")
        register(method)
    return _REGISTERED[name]


__all__ = ["BUILTIN", "DRIVER_STAGES", "EVAL_STAGES", "Method", "get_method", "iteration_stages", "names",
           "register"]
