"""SPaR w/o refinement (paper Table 4, "w/o Refinement"): no refinement at all. The actor's DPO pairs are an
independently sampled response the refiner's majority judged Yes > the negative, both from the same `collect` stage
(one Yes response drawn at random per negative; a prompt without one gives no pair): the "interfering pairs" the
paper contrasts refinement pairs with. The refiner's RFT records come from the collection judgments only (there are
no tree nodes or refinement steps). Table 5 has no such row; `spar tables` labels it there as not in the paper.

(Before issue 16 this construction was named `spar_no_tree_search`; "w/o Tree Search" is now refinement without
the search, `training/methods/spar_no_tree_search.py`.)

This module is the whole method: its options, its data stage, its summary; `collect` is SPaR's.
"""

from __future__ import annotations

import random
from dataclasses import replace

from harness.core.backends.base import derive_seed
from harness.core.options import option, options
from training.build_data import DataConfig, rft_records
from training.collect import CollectConfig
from training.methods import Method
from training.methods.spar.stages import collected, stage_collect


@options
class NoRefinementConfig:
    """SPaR's collection and data options (no search section)."""

    collect: CollectConfig = option(CollectConfig(), "negative collection (SPaR's)")
    data: DataConfig = option(DataConfig(), "RFT caps (only the collection sources are filled)")


def stage_data(run) -> dict:
    items = collected(run)
    pairs, without_positive, positives = [], 0, 0
    for c in items:
        yes = [j for j, r in enumerate(c.responses) if r.label == 1 and r.response.strip()]
        positives += bool(yes)
        for i in c.negatives:
            choices = [j for j in yes if c.responses[j].response != c.responses[i].response]
            if not choices:
                without_positive += 1
                continue
            j = random.Random(derive_seed(run.iteration_seed, c.key, "positive", i)).choice(choices)
            pairs.append({"key": f"{c.key}#{i}", "prompt": [{"role": "user", "content": c.prompt}],
                          "chosen": [{"role": "assistant", "content": c.responses[j].response}],
                          "rejected": [{"role": "assistant", "content": c.responses[i].response}],
                          "chosen_index": j, "rejected_index": i})
    records, counts = rft_records(items, [], replace(run.options.data, seed=run.iteration_seed))
    run.write_training_data("dpo", pairs)
    run.write_training_data("rft", records)
    return {"dpo_pairs": len(pairs), "prompts_with_positive": positives, "negatives_without_positive":
            without_positive, "rft_records": len(records), "rft_by_source": counts}


def summary(stages: dict) -> dict:
    return {"negatives": stages["collect"]["negatives"],
            "negatives_without_positive": stages["data"]["negatives_without_positive"],
            "dpo_pairs": stages["data"]["dpo_pairs"], "rft_records": stages["data"]["rft_records"]}


METHOD = Method(name="spar_no_refinement", label="SPaR w/o refinement", Config=NoRefinementConfig,
                stages=(("collect", stage_collect), ("data", stage_data)), judge="refiner", trains_refiner=True,
                summary=summary, description="SPaR with sampled majority-Yes > negative pairs instead of refinements")
