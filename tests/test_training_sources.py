"""Training inputs: prompt pools and SFT data (released SPaR data or any chat data) in the shapes users have, and
one-line errors naming file, line and field for the rest."""

from __future__ import annotations

import json

import pytest

from harness.core.errors import SparError
from training.sources import load_prompts, load_sft_records


def test_builtin_prompts_and_files(tmp_path):
    prompts, origin = load_prompts("builtin")
    assert len(prompts) == 24 and origin.endswith("selfplay_prompts.jsonl")
    assert len({k for k, _ in prompts}) == 24
    f = tmp_path / "p.json"
    f.write_text(json.dumps([{"instruction": "Do A."}, {"prompt": "Do B.", "key": "b"}]))
    assert load_prompts(str(f))[0] == [("p000001", "Do A."), ("b", "Do B.")]


def test_sft_records_from_messages_sharegpt_and_pairs(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                          {"role": "assistant", "content": "A"}]},
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "R"}]},
            {"instruction": "I", "output": "O"}]
    f = tmp_path / "sft.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    records, _ = load_sft_records(str(f))
    assert records[0] == {"prompt": rows[0]["messages"][:2], "completion": rows[0]["messages"][2:]}
    assert records[1] == {"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "assistant",
                                                                                         "content": "R"}]}
    assert records[2]["completion"][0]["content"] == "O"
    assert len(load_sft_records(str(f), limit=2)[0]) == 2


@pytest.mark.parametrize("row, message", [
    ({"text": "no prompt"}, "sft.jsonl:2: field 'messages': expected `messages`"),
    ({"messages": [{"role": "user", "content": "Q"}]}, "sft.jsonl:2: field 'messages': the last turn must be"),
    ({"messages": [{"role": "bot", "content": "Q"}]}, "sft.jsonl:2: field 'messages': bad turn"),
])
def test_bad_sft_rows_name_file_line_and_field(tmp_path, row, message):
    f = tmp_path / "sft.jsonl"
    f.write_text(json.dumps({"instruction": "I", "output": "O"}) + "\n" + json.dumps(row))
    with pytest.raises(SparError) as err:
        load_sft_records(str(f))
    assert str(err.value).startswith(str(tmp_path / message.split(":")[0]) + ":" + message.split(":", 1)[1])


def test_prompt_file_errors(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "ok"}\n{"prompt": ""}\n')
    with pytest.raises(SparError, match=r"p.jsonl:2: field 'prompt': no prompt text"):
        load_prompts(str(f))
    with pytest.raises(SparError, match="not a JSON or JSONL file"):
        load_prompts(str(tmp_path))
