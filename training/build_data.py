"""Training data from one iteration (SPaR §1.3c-d): actor DPO pairs and refiner RFT records.

Pairs: chosen = the node that passed the search, rejected = the root negative (the official `process_dpo_data`).
RFT records (the official `process_rft_data`), each a chat ending in the refiner's target turn, capped per source:
refinement steps of successful searches (parent -> final node), one non-unanimous majority-Yes and one non-unanimous
majority-No tree node per tree, and non-unanimous collection judgments; de-duplicated by the first user turn (first
source wins, in the order above) and shuffled.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Sequence

from evaluators.judging import REFINE_INSTRUCTION, REFINE_INSTRUCTION_RFT, judge_prompt
from harness.backends.base import derive_seed
from training.collect import CollectedPrompt
from training.tree_search import SearchResult

RFT_SOURCES = ("refinement", "tree_yes", "tree_no", "collect_no", "collect_yes")


@dataclass(frozen=True)
class RFTCaps:
    """Per-source caps of refiner RFT records (the official constants)."""

    refinement: int = 4000
    tree_yes: int = 1500
    tree_no: int = 1000
    collect_no: int = 500
    collect_yes: int = 2500


@dataclass(frozen=True)
class DataConfig:
    caps: RFTCaps = RFTCaps()
    rft_refine_prompt: str = "official_rft"  # official_rft: the indented variant of the official RFT records
    seed: int = 0


def dpo_pairs(results: Sequence[SearchResult], roots: dict[str, str]) -> list[dict]:
    """Conversational preference records for TRL; `roots` maps a search key to its root negative response."""
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
            if r.label is None or r.critique is None or r.yes == 0 or r.no == 0:
                continue  # only non-unanimous majorities: the self-consistency filter
            source = "collect_yes" if r.label == 1 else "collect_no"
            by_source[source].append(_judgment_record(item.prompt, r.response, r.critique))
    records, seen, counts = [], set(), {}
    for source in RFT_SOURCES:
        rows = by_source[source]
        random.Random(derive_seed(cfg.seed, source)).shuffle(rows)
        kept = 0
        for row in rows:
            if kept >= getattr(cfg.caps, source):
                break
            first = row["prompt"][0]["content"]
            if first in seen:
                continue
            seen.add(first)
            records.append(dict(row, source=source))
            kept += 1
        counts[source] = kept
    random.Random(derive_seed(cfg.seed, "rft-shuffle")).shuffle(records)
    return records, counts


def describe(cfg: DataConfig) -> dict:
    return asdict(cfg)
