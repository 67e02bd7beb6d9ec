"""Prompt evolution: the official message byte for byte, main-constraint draws, parsing and dropping `None`."""

from __future__ import annotations

import hashlib
import json

from harness.core.types import Completion
from tests.conftest import run_spar
from training.evolve import SUBTYPES, evolve, evolve_message, EvolveConfig

# sha256 of the official src/instruction_evolve.py message (seed "Tell me about cats.", main constraint = Template)
# and of its 14 sub-type blocks joined by newlines, taken from thu-coai/SPaR @ 6497aba
OFFICIAL_MESSAGE_SHA = "784e5b76ed735413ce6b6a0db7986e25cc5ee83b088c7625b867491c54126863"
OFFICIAL_SUBTYPES_SHA = "8184fa6d5796f3c5cfb8c6ec16fcbbee97fdb87061708c4735c756ff19530062"


def test_message_is_byte_exact():
    assert len(SUBTYPES) == 14
    assert hashlib.sha256("\n".join(SUBTYPES).encode()).hexdigest() == OFFICIAL_SUBTYPES_SHA
    message = evolve_message("Tell me about cats.", SUBTYPES[3])
    assert hashlib.sha256(message.encode()).hexdigest() == OFFICIAL_MESSAGE_SHA


def test_evolve_keeps_parsed_prompts_and_drops_none():
    seeds = [("a", "Tell me about cats."), ("b", "Solve 2x+1=3."), ("c", "Write a poem."), ("d", "Hi")]
    replies = {"a": "[[start]]Tell me about cats in three sentences, all lowercase.[[end]]",
               "b": "[[start]]None[[end]]", "c": "Here is a better prompt without markers", "d": "[[start]] Say hi in German. [[end]]"}

    def generate(requests):
        out = []
        for r in requests:
            seed_text = r.messages[1].content.split("prompt: [[start]]", 1)[1].split("[[end]]", 1)[0]
            key = next(k for k, t in seeds if t == seed_text)
            out.append([Completion(replies[key])])
        return out

    records, counts = evolve(seeds, EvolveConfig(), generate)
    assert counts == {"seeds": 4, "kept": 2, "dropped_none": 1, "unparseable": 1}
    assert [r["prompt"] for r in records] == ["Tell me about cats in three sentences, all lowercase.",
                                              "Say hi in German."]
    assert all(r["main_constraint"] in {s.split(":")[0].strip(" -") for s in SUBTYPES} for r in records)
    again, _ = evolve(seeds, EvolveConfig(), generate)
    assert again == records  # the main-constraint draw is seeded per prompt


def test_cli_evolve_with_a_local_model(tiny_model_dir, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(json.dumps({"prompt": p}) for p in ("Describe rain.", "Name a color.")))
    out = tmp_path / "evolved.jsonl"
    proc = run_spar("prompts", "evolve", "--seeds", str(seeds), "--output", str(out), "--model", str(tiny_model_dir),
                    "--max-new-tokens", "8", "--cache", str(tmp_path / "c.sqlite"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "evolved.record.json").read_text())
    counts = record["extra"]["counts"]
    assert counts["seeds"] == 2 and counts["kept"] + counts["dropped_none"] + counts["unparseable"] == 2
    assert out.exists()
