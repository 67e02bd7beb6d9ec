"""SPaR w/o tree search (paper Tables 4 and 5, "w/o Tree Search"): refinement without the search.

Each negative is refined by the refiner without branching or selection: `refine_without_search: single` (default)
asks for one refinement of the negative (the official retry rules for an unparseable or empty reply still apply),
judges it with the search's votes, and keeps it when it passes the gate (Yes fraction > `search.end_gate`), as a
one-node search would; `chain` refines greedily, one child per level, the last refinement again, up to
`search.max_depth` times, stopping at the first that passes (an iterative-refinement reading). spar-paper.md reads
the ablation as "one refinement attempt, or a greedy/iterative chain"; the paper does not say which, so the reading
is a config field and lands in the record (`config.method_config.refine_without_search`, and the search stage's
summary).

Everything else is SPaR's: `collect`, the `search` stage's driver (the constrained search: branch 1, keep 1,
depth 1 or `max_depth`, budget = depth; `searches.jsonl`), and the `data` stage (refinement that passed > the
negative; RFT records from the judgments and the successful refinement steps).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from harness.core.options import option, options
from training.build_data import DataConfig
from training.collect import CollectConfig
from training.methods import Method
from training.methods.spar import summary
from training.methods.spar.stages import stage_collect, stage_data, stage_search
from training.tree_search import SearchConfig

READINGS = ("single", "chain")


@options
class NoTreeSearchConfig:
    """SPaR's options, with the search reduced to refinement without the search (`refine_without_search`)."""

    collect: CollectConfig = option(CollectConfig(), "negative collection (SPaR's)")
    search: SearchConfig = option(SearchConfig(), "judging and refinement settings (votes, gate, parsers, sampling, "
                                                  "retries); branch, select_branch and budget are set by "
                                                  "refine_without_search, max_depth is the chain's length")
    search_driver: Literal["batched", "sequential"] = option(
        "batched", "batched (all negatives' pending calls together) or sequential (one at a time)")
    refine_without_search: Literal["single", "chain"] = option(
        "single", "single: one refinement of each negative, judged, kept if it passes (the default reading of the "
                  "paper's 'w/o Tree Search'); chain: a greedy chain of single refinements up to search.max_depth")
    data: DataConfig = option(DataConfig(), "training data building (SPaR's)")


def search_without_search(cfg: SearchConfig, reading: str) -> SearchConfig:
    """The search settings that make SPaR's tree search a refinement without search: one child per node, one node
    kept, depth 1 (`single`) or `cfg.max_depth` (`chain`), a budget of one judged node per level."""
    depth = 1 if reading == "single" else cfg.max_depth
    return replace(cfg, branch=1, select_branch=1, max_depth=depth, budget=depth)


def stage_refine(run) -> dict:
    """SPaR's search stage on the constrained settings (`searches.jsonl`), with the reading in its summary."""
    options_in = run.options
    used = search_without_search(options_in.search, options_in.refine_without_search)
    run.options = replace(options_in, search=used)
    # SPaR's stage reads run.options.search; the method's own options are put back whatever happens
    try:
        out = stage_search(run)
    finally:
        run.options = options_in
    return {**out, "refine_without_search": options_in.refine_without_search,
            "search_settings": {k: getattr(used, k) for k in ("branch", "select_branch", "max_depth", "budget")}}


METHOD = Method(name="spar_no_tree_search", label="SPaR w/o tree search", Config=NoTreeSearchConfig,
                stages=(("collect", stage_collect), ("search", stage_refine), ("data", stage_data)),
                judge="refiner", trains_refiner=True, summary=summary,
                description="SPaR with one refinement of each negative (or a greedy chain) instead of tree search")
