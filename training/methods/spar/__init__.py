"""SPaR (Cheng et al., ICLR 2025): self-play with tree-search refinement.

Stages of one iteration (then the driver's train_actor, train_refiner, eval_actor, eval_refiner):
- `collect` (SPaR §1.3a): the actor samples k responses per prompt, the refiner judges each n times with SPaR's
  judge prompt, majority vote; one majority-No response per prompt (with its critique) becomes a search root
  (`collected.jsonl`);
- `search` (§1.3b): BFS/DFS tree-search refinement of each root by the refiner (`searches.jsonl`);
- `data` (§1.3c-d): DPO pairs (the node that passed > the root negative, `data/dpo.jsonl`) and the refiner's RFT
  records (`data/rft.jsonl`).

The building blocks are training.collect, training.tree_search and training.build_data; SPaR's judge and refine
prompts are evaluators.judging (LLMBar scores the refiner with the same judge prompt).
"""

from __future__ import annotations

from typing import Literal

from harness.core.options import option, options
from training.build_data import DataConfig
from training.collect import CollectConfig
from training.methods import Method
from training.methods.spar.stages import stage_collect, stage_data, stage_search
from training.tree_search import SearchConfig


@options
class SparConfig:
    """SPaR's own options (top-level keys of a SPaR config, or a `spar:` section)."""

    collect: CollectConfig = option(CollectConfig(), "negative collection")
    search: SearchConfig = option(SearchConfig(), "tree-search refinement")
    search_driver: Literal["batched", "sequential"] = option(
        "batched", "batched (all trees together: lock-step or async, see search.scheduler) or sequential (node "
                   "at a time)")
    data: DataConfig = option(DataConfig(), "training data building")


def summary(stages: dict) -> dict:
    return {"negatives": stages["collect"]["negatives"], "searches_passed": stages["search"]["passed"],
            "searches_failed": stages["search"]["failed"], "dpo_pairs": stages["data"]["dpo_pairs"],
            "rft_records": stages["data"]["rft_records"]}


METHOD = Method(
    name="spar", label="SPaR", Config=SparConfig,
    stages=(("collect", stage_collect), ("search", stage_search), ("data", stage_data)),
    judge="refiner", trains_refiner=True, summary=summary,
    description="actor DPO on refined > negative pairs from tree search; refiner RFT on its own judgments and "
                "refinements")
