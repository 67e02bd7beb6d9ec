"""RFT records against the official `process_rft_data` (thu-coai/SPaR `src/process_data.py`): caps before
de-duplication, the target judgment of collection records, and a validated refine-prompt choice."""

from __future__ import annotations

import pytest

from training.build_data import (RFTCaps, DataConfig, merge_sources, official_target_judgment, rft_records)
from training.collect import CollectedPrompt, JudgedResponse


def _row(first: str, target: str = "t") -> dict:
    return {"prompt": [{"role": "user", "content": first}], "completion": [{"role": "assistant", "content": target}]}


def test_each_source_is_cut_to_its_cap_before_deduplication():
    # official: `for i in pos[:1500]: if first turn not in p: keep` -- a duplicate inside the cap uses up a place
    by_source = {"refinement": [_row("A"), _row("B")], "tree_yes": [_row("A"), _row("C")],
                 "tree_no": [_row("D"), _row("D"), _row("E")]}
    records, counts = merge_sources(by_source, RFTCaps(refinement=5, tree_yes=1, tree_no=2))
    assert [r["prompt"][0]["content"] for r in records] == ["A", "B", "D"]
    assert counts == {"refinement": 2, "tree_yes": 0, "tree_no": 1, "collect_no": 0, "collect_yes": 0}
    assert [r["source"] for r in records] == ["refinement", "refinement", "tree_no"]


@pytest.mark.parametrize("labels, label, expected", [
    ([0, 0, 1, 0, 0], 0, "j1"),  # the last agreeing one before both kinds were seen
    ([1, 0, 0, 0, 1], 0, "j1"),
    ([0, None, 0, 1, 0], 0, "j2"),
    ([1, 1, 1, 0, 1], 1, "j2"),
    ([0, 0, 0, None, 0], 0, None),  # unanimous: no dissenting judgment, no record
])
def test_collection_target_is_the_official_good_res(labels, label, expected):
    judgments = [f"j{i}" for i in range(len(labels))]
    assert official_target_judgment(judgments, labels, label) == expected


def test_collection_records_use_the_official_target():
    judgments = ["No 0", "No 1", "Yes 2", "No 3", "No 4"]
    r = JudgedResponse("resp", 0, 1, 4, 0, "No 0", judgments, "stop", [0, 0, 1, 0, 0])
    unanimous = JudgedResponse("resp2", 0, 0, 5, 0, "No 0", judgments, "stop", [0] * 5)
    records, counts = rft_records([CollectedPrompt("k", "Do it.", [r, unanimous], [0])], [], DataConfig())
    assert counts["collect_no"] == 1 and len(records) == 1
    assert records[0]["completion"][0]["content"] == "No 1"


def test_refine_prompt_choice_is_validated():
    from pydantic import ValidationError

    assert DataConfig(rft_refine_prompt="search").rft_refine_prompt == "search"
    with pytest.raises(ValidationError):
        DataConfig(rft_refine_prompt="offical_rft")
    with pytest.raises(ValidationError):
        RFTCaps(tree_yes=-1)
