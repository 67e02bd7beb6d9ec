"""SFT loss targets of multi-turn records: every assistant turn by default (the official LLaMA-Factory setup trains
the critique and the refinement of an RFT record), only the last with `train_on: last_turn`."""

from __future__ import annotations

import pytest

from evaluators.judging import REFINE_INSTRUCTION_RFT, judge_prompt

CRITIQUE = "Step-by-step verification: the list has 4 items, not 3.\nFinal Judgement: No"
REFINED = "Reflection on how to refine the Output: drop one.\nFinal Refined Output: [[start]] a, b, c [[end]]"
RECORD = {"prompt": [{"role": "user", "content": judge_prompt("List 3 letters.", "a, b, c, d")},
                     {"role": "assistant", "content": CRITIQUE},
                     {"role": "user", "content": REFINE_INSTRUCTION_RFT}],
          "completion": [{"role": "assistant", "content": REFINED}]}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _spans(labels: list[int]) -> list[list[int]]:
    spans, run = [], []
    for t in labels + [-100]:
        if t != -100:
            run.append(t)
        elif run:
            spans.append(run)
            run = []
    return spans


def _turn_tokens(tokenizer, content: str) -> int:
    # SmolLM2's template renders an assistant turn as "<|im_start|>assistant\n" + content + "<|im_end|>\n": the
    # targets are the content, the end-of-turn token and the newline after it
    return len(tokenizer(content, add_special_tokens=False)["input_ids"]) + 2


@pytest.mark.parametrize("train_on, turns", [("all_assistant_turns", [CRITIQUE, REFINED]), ("last_turn", [REFINED])])
def test_target_tokens_are_exactly_the_assistant_turns(tokenizer, train_on, turns):
    from training.trainers import sft_example

    ex = sft_example(tokenizer, RECORD, train_on)
    assert len(ex["labels"]) == len(ex["input_ids"])
    targets = [t for t in ex["labels"] if t != -100]
    assert len(targets) == sum(_turn_tokens(tokenizer, c) for c in turns)
    assert [tokenizer.decode(s) for s in _spans(ex["labels"])] == [c + "<|im_end|>\n" for c in turns]
    assert all(t == i for t, i in zip(ex["labels"], ex["input_ids"]) if t != -100)


def test_default_is_all_turns_and_the_option_is_checked():
    from pydantic import ValidationError

    from training.trainers import SFTStageConfig

    assert SFTStageConfig().train_on == "all_assistant_turns"
    with pytest.raises(ValidationError):
        SFTStageConfig(train_on="assistant")


def test_the_trainer_keeps_the_labels(tiny_model_dir, tokenizer, tmp_path):
    from training.trainers import SFTStageConfig, sft_example, sft_trainer

    single = {"prompt": RECORD["prompt"][:1], "completion": [{"role": "assistant", "content": CRITIQUE}]}
    cfg = SFTStageConfig(global_batch_size=1, per_device_train_batch_size=1)
    trainer = sft_trainer(str(tiny_model_dir), [RECORD, single], tmp_path, cfg, stage="rft")
    rows = [trainer.train_dataset[i] for i in range(2)]
    assert rows[0]["labels"] == sft_example(tokenizer, RECORD)["labels"]
    assert trainer.spar_targets["target_tokens"] == \
        2 * _turn_tokens(tokenizer, CRITIQUE) + _turn_tokens(tokenizer, REFINED)
    assert trainer.spar_targets["train_on"] == "all_assistant_turns"


def test_a_cutoff_before_every_target_is_a_one_line_error(tiny_model_dir, tmp_path):
    from harness.core.errors import SparError
    from training.trainers import SFTStageConfig, sft_trainer

    cfg = SFTStageConfig(global_batch_size=1, per_device_train_batch_size=1, max_length=16)
    with pytest.raises(SparError, match=r"^rft\.max_length 16: every one of the 1 records .* raise rft\.max_length"):
        sft_trainer(str(tiny_model_dir), [RECORD], tmp_path, cfg, stage="rft")
