"""Prompt construction by taxonomy evolution (SPaR §1.1; the official `src/instruction_evolve.py`).

Each seed prompt gets one main constraint sub-type drawn uniformly from the 14 of the taxonomy; a model (any backend;
the paper used gpt-4o-mini at T=0.7) rewrites the prompt with that constraint plus 1-3 others and answers between
[[start]] and [[end]]. Math and coding prompts come back as `None` and are dropped. The message text matches the
official code byte for byte (trailing spaces included).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

from evaluators.judging import parse_refinement
from harness.core.backends.base import derive_seed
from harness.core.types import ChatRequest, Completion, Message, SamplingParams

# (group, [(sub-type, [options])]) in the official order
TAXONOMY: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("Format", (
        ("Length", ("Number of characters", "Words", "Sentences", "Paragraphs", "Sections")),
        ("Text format", ("JSON", "Markdown", "List", "Table", "Bullets", "Postscript")),
        ("Character format", ("Uppercase", "Lowercase", "Mixed", "Frequency")),
        ("Template", ("Example", "Multiple-choice", "Special template")),
        ("Punctuation", ("Without", "Frequency", "Start with", "End with")),
        ("Numeric format", ("Integer", "Float", "Scientific notation", "Ordinal number")),
    )),
    ("Content", (
        ("Keyword", ("Include", "Exclude", "Frequency")),
        ("Symbol", ("Title mark", "Emoji", "Placeholder", "Custom symbol")),
        ("Sentence", ("Start with", "End with", "Include", "Syntax")),
        ("Genre", ("Poetry", "Novel", "Script", "Letter", "Speech", "Diary", "Tweet")),
    )),
    ("General", (
        ("Language", ("English", "Chinese", "Thai", "German", "Marathi", "Spanish")),
        ("Situation", ("Role-play", "Reasoning", "Topic")),
        ("Language style", ("Formality", "Writing style", "Literary style", "Humor", "Era", "Job")),
        ("Sentiment", ("Positive", "Negative", "Hopeful", "Fascinating")),
    )),
)

SYSTEM = ("You are ChatGPT, a large language model trained by OpenAI. Follow the user's instructions carefully to "
          "provide accurate and helpful content.")

_NOTES = (
    "1. You must include the main constraint (unless the main constraint contradicts the original prompt), and need "
    "to add 1~3 other constraints.",
    "2. You need to ensure that these constraints are reasonable and do not conflict with each other. ",
    "3. The added constraints need to make sense with the original prompt and not conflict with it. ",
    "4. Please ensure the constraints as much diverse as possible, you can add new types not mentioned in the "
    "taxonomy above.",
    "5. The priority is given to constraint types other than length constraints.",
    "6. Do not list the added constraints in points.",
    "7. Don't give the response to your refined prompt.",
    "8. If the Prompt is a mathematic or coding problem, just output \"None\" as the refined prompt.",
    "9. Never involve visual elements.",
)


def subtype_block(name: str, options: Sequence[str]) -> str:
    return f"  - {name}: \n" + "\n".join(f"    * {o}" for o in options)


SUBTYPES: tuple[str, ...] = tuple(subtype_block(n, o) for _, subs in TAXONOMY for n, o in subs)


def _taxonomy_text() -> str:
    return "\n\n".join(f"{i}. {group}\n" + "\n".join(subtype_block(n, o) for n, o in subs)
                       for i, (group, subs) in enumerate(TAXONOMY, 1))


def evolve_message(seed_prompt: str, main_constraint: str) -> str:
    return ("In this task, you need to refine the prompt to make it more specific and complex. Transfer the prompt to "
            "an instruction-following task.\n\n\nTo enhance specificity, refer to constraints from the following "
            f"taxonomy:\n\n{_taxonomy_text()}\n\n\nprompt: [[start]]{seed_prompt}[[end]]\n\nMain constraint:\n"
            f"{main_constraint}\n\n\nNote:\n" + "\n".join(_NOTES) + "\n\noutput in the following format:\n"
            "[[start]]{your refined prompt}[[end]]")


@dataclass(frozen=True)
class EvolveConfig:
    sampling: SamplingParams = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=1024)
    seed: int = 0


def evolve(seeds: Sequence[tuple[str, str]], cfg: EvolveConfig,
           generate: Callable[[list[ChatRequest]], list[list[Completion]]]) -> tuple[list[dict], dict]:
    """Evolved prompts (one record per kept seed) and counts: kept, dropped as math/code (`None`), unparseable."""
    mains = [SUBTYPES[random.Random(derive_seed(cfg.seed, key, "main")).randrange(len(SUBTYPES))]
             for key, _ in seeds]
    requests = [ChatRequest((Message("system", SYSTEM), Message("user", evolve_message(text, main))), cfg.sampling,
                            seed=derive_seed(cfg.seed, key, "evolve")) for (key, text), main in zip(seeds, mains)]
    answers = generate(requests)
    records, counts = [], {"seeds": len(seeds), "kept": 0, "dropped_none": 0, "unparseable": 0}
    for (key, text), main, comps in zip(seeds, mains, answers):
        refined = parse_refinement(comps[0].text)
        if refined is None:
            counts["unparseable"] += 1
        elif refined.strip().strip('"').lower() == "none":
            counts["dropped_none"] += 1
        else:
            counts["kept"] += 1
            records.append({"key": key, "prompt": refined, "seed_prompt": text,
                            "main_constraint": main.split(":")[0].strip(" -"), "raw": comps[0].text})
    return records, counts
