"""Training data from one iteration (SPaR §1.3c-d): actor DPO pairs and refiner RFT records.

Pairs: chosen = the node that passed the search, rejected = the root negative (the official `process_dpo_data`).
RFT records follow the official `process_rft_data` (thu-coai/SPaR `src/process_data.py`): each a chat ending in the
refiner's target turn, from five sources in this order: refinement steps of successful searches (parent -> final
node, 4 turns), one non-unanimous majority-Yes and one non-unanimous majority-No tree node per tree, and
non-unanimous collection judgments (majority No, then majority Yes). Each source is shuffled and CUT TO ITS CAP
FIRST, then de-duplicated by the first user turn against everything kept before (first source wins), and the whole
set is shuffled. A collection record's target is the official `good_res`: the last majority-agreeing judgment seen
before the first point where both an agreeing and a dissenting judgment have been seen.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Literal, Sequence

from evaluators.judging import REFINE_INSTRUCTION, REFINE_INSTRUCTION_RFT, judge_prompt
from harness.core.backends.base import derive_seed
from harness.core.options import NonNegativeInt, option, options
from training.collect import CollectedPrompt, JudgedResponse
from training.tree_search import SearchResult

RFT_SOURCES = ("refinement", "tree_yes", "tree_no", "collect_no", "collect_yes")


@options
class RFTCaps:
    """Per-source caps of refiner RFT records (the official constants), applied before de-duplication."""

    refinement: NonNegativeInt = option(4000, "refinement steps of successful searches (4-turn records)")
    tree_yes: NonNegativeInt = option(1500, "tree nodes judged a non-unanimous Yes (0.5 < value < 1), one per tree")
    tree_no: NonNegativeInt = option(1000, "tree nodes judged a non-unanimous No (0 < value < 0.5), one per tree")
    collect_no: NonNegativeInt = option(500, "collection judgments with a non-unanimous majority No")
    collect_yes: NonNegativeInt = option(2500, "collection judgments with a non-unanimous majority Yes")


@options
class DataConfig:
    """How an iteration's searches and judgments become DPO pairs and RFT records."""

    caps: RFTCaps = option(RFTCaps(), "per-source caps of the refiner's RFT records")
    rft_refine_prompt: Literal["official_rft", "search"] = option(
        "official_rft", "refine instruction in the 4-turn RFT records: official_rft (the official records' variant "
                        "with 4-space indents) or search (the exact instruction used during tree search)")
    seed: int = option(0, "seed of the per-tree node draws and the shuffles")


def dpo_pairs(results: Sequence[SearchResult], roots: dict[str, str]) -> list[dict]:
    """Conversational preference records for TRL; `roots` maps a search key to its root negative response.

    The official code keeps `final_node.value > 0.5` (a passed search); spar also skips a pair whose chosen text
    equals the rejected one (it carries no preference)."""
    pairs = []
    for res in results:
        if res.passed and res.final_node.response != roots[res.key]:
            pairs.append({"key": res.key, "prompt": [{"role": "user", "content": res.prompt}],
                          "chosen": [{"role": "assistant", "content": res.final_node.response}],
                          "rejected": [{"role": "assistant", "content": roots[res.key]}]})
    return pairs


def _judgment_record(prompt: str, response: str, critique: str) -> dict:
    return {"prompt": [{"role": "user", "content": judge_prompt(prompt, response)}],
            "completion": [{"role": "assistant", "content": critique}]}


def official_target_judgment(judgments: Sequence[str], labels: Sequence[int | None], label: int) -> str | None:
    """The official `good_res` of a non-unanimous collection vote: walk the judgments in order, remembering the
    latest one agreeing with `label` and the latest dissenting one, and stop as soon as both are set; None when the
    vote is unanimous (no dissent) or has no agreeing judgment."""
    good = bad = None
    for text, lab in zip(judgments, labels):
        if good and bad:
            break
        if lab == label:
            good = text
        elif lab == 1 - label:
            bad = text
    return good if good and bad else None


def _collection_target(r: JudgedResponse) -> str | None:
    if r.label is None or r.yes == 0 or r.no == 0:
        return None  # only non-unanimous majorities: the self-consistency filter
    if r.labels and len(r.labels) == len(r.judgments):
        return official_target_judgment(r.judgments, r.labels, r.label)
    return r.critique  # collected before per-judgment labels were stored: the first agreeing judgment


def merge_sources(by_source: dict[str, list[dict]], caps: RFTCaps) -> tuple[list[dict], dict[str, int]]:
    """The official merge of already-shuffled sources: `rows[:cap]` per source, in RFT_SOURCES order, each row kept
    only if its first user turn was not kept before. Returns the records (tagged with their source) and the count
    kept per source."""
    records, seen, counts = [], set(), {}
    for source in RFT_SOURCES:
        kept = 0
        for row in by_source.get(source, [])[: getattr(caps, source)]:
            first = row["prompt"][0]["content"]
            if first in seen:
                continue
            seen.add(first)
            records.append(dict(row, source=source))
            kept += 1
        counts[source] = kept
    return records, counts


def rft_records(collected: Sequence[CollectedPrompt], results: Sequence[SearchResult], cfg: DataConfig
                ) -> tuple[list[dict], dict[str, int]]:
    """Prompt-completion chat records (the completion is the refiner's target turn) and the count per source."""
    refine_text = REFINE_INSTRUCTION_RFT if cfg.rft_refine_prompt == "official_rft" else REFINE_INSTRUCTION
    by_source: dict[str, list[dict]] = {s: [] for s in RFT_SOURCES}
    for res in results:
        rng = random.Random(derive_seed(cfg.seed, res.key, "rft-nodes"))
        if res.passed:
            final = res.final_node
            parent = res.nodes[final.parent] if final.parent is not None else None
            if parent is not None and parent.critique and final.refine_cot:
                by_source["refinement"].append({
                    "prompt": [{"role": "user", "content": judge_prompt(res.prompt, parent.response)},
                               {"role": "assistant", "content": parent.critique},
                               {"role": "user", "content": refine_text}],
                    "completion": [{"role": "assistant", "content": final.refine_cot}]})
        judged = [n for n in res.nodes[1:] if n.value is not None and n.critique]
        for source, keep in (("tree_yes", lambda v: 0.5 < v < 1.0), ("tree_no", lambda v: 0.0 < v < 0.5)):
            pool = [n for n in judged if keep(n.value)]
            if pool:
                node = rng.choice(pool)
                by_source[source].append(_judgment_record(res.prompt, node.response, node.critique))
    for item in collected:
        for r in item.responses:
            target = _collection_target(r)
            if target is not None:
                source = "collect_yes" if r.label == 1 else "collect_no"
                by_source[source].append(_judgment_record(item.prompt, r.response, target))
    for source in RFT_SOURCES:
        random.Random(derive_seed(cfg.seed, source)).shuffle(by_source[source])
    records, counts = merge_sources(by_source, cfg.caps)
    random.Random(derive_seed(cfg.seed, "rft-shuffle")).shuffle(records)
    return records, counts


def describe(cfg: DataConfig) -> dict:
    return asdict(cfg)
