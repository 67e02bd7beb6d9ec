"""Self-Rewarding Language Models (Yuan et al., 2024) on the shared driver (baselines.md §1).

One iteration with model M_t (actor and judge are the same model):
- `sample`: N = 4 candidate responses per prompt at T 0.7, top-p 0.9 (`candidates.jsonl`);
- `judge`: M_t scores every candidate with the additive 5-point LLM-as-a-Judge prompt (byte-exact, paper Figure 2:
  evaluators.score_judge.SCORE_JUDGE_TEMPLATE), 3 sampled judgments with the same decoding; a candidate's score is the
  mean of its parseable judgments; a judgment without a parseable `Score:` is dropped and counted, never scored 0
  (`judged.jsonl`: every candidate, its judgment texts and parsed scores, null where unparseable);
- `data`: per prompt, chosen = the highest mean score, rejected = the lowest (the first candidate on equal means);
  a prompt whose extremes tie is dropped (counted), as is one with fewer than two scored candidates
  (`data/pairs.jsonl` for auditing, `data/dpo.jsonl` for the trainer);
then the driver's DPO (beta 0.1; M_{t+1} starts from M_t) and eval stages. Optional IFT/EFT seed SFT: `init.actor_data`.

The stage functions here (sample, judge, the pair helpers) are shared with Meta-Rewarding (meta_rewarding.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal, Sequence

from evaluators.score_judge import get_score_parser, mean_score, score_judge_prompt
from harness.core.backends.base import derive_seed
from harness.core.data import read_jsonl
from harness.core.options import PositiveInt, option, options
from harness.core.types import ChatRequest, Message, SamplingParams
from training.methods import Method

JUDGE_PROMPT = "Self-Rewarding additive 5-point LLM-as-a-Judge (Yuan et al. 2024, Figure 2)"


@options
class SelfRewardingConfig:
    """Self-Rewarding's options (a `self_rewarding:` section); defaults are the paper's."""

    candidates: PositiveInt = option(4, "candidate responses per prompt (paper: N = 4)")
    actor_sampling: SamplingParams = option(SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=2048),
                                            "candidate decoding (paper: T 0.7, top-p 0.9; budget as SPaR's actor)")
    judgments: PositiveInt = option(3, "judgments sampled per candidate and averaged (paper: 3)")
    judge_sampling: SamplingParams = option(SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=2048),
                                            "judgment decoding (paper: the same settings as the candidates)")
    score_parser: Literal["strict", "lenient"] = option(
        "strict", "strict: the usual `Score:\\s*([0-9.]+)` (last occurrence, 0-5); lenient (small models, not the "
                  "paper's): also 'score of k', 'k/5', 'k points'")


# -- stages shared with Meta-Rewarding -------------------------------------------------------------------------------

def stage_sample(run) -> dict:
    """The actor's candidates: `candidates.jsonl` (key, prompt, candidates [{response, finish_reason}])."""
    o = run.options
    requests = [ChatRequest((Message("user", text),), o.actor_sampling, n=o.candidates,
                            seed=derive_seed(run.iteration_seed, key, "actor")) for key, text in run.prompts]
    samples = run.generate(run.actor, "actor samples")(requests)
    rows = [{"key": key, "prompt": text,
             "candidates": [{"response": c.text.strip(), "finish_reason": c.finish_reason} for c in comps]}
            for (key, text), comps in zip(run.prompts, samples)]
    run.write_jsonl("candidates.jsonl", rows)
    cands = [c for r in rows for c in r["candidates"]]
    return {"prompts": len(rows), "candidates": len(cands),
            "empty_candidates": sum(not c["response"] for c in cands),
            "truncated_candidates": sum(c["finish_reason"] == "length" for c in cands)}


def stage_judge(run) -> dict:
    """The model scores every candidate `judgments` times: `judged.jsonl`, one row per candidate."""
    o = run.options
    parser = get_score_parser(o.score_parser)
    items = [(row, i, cand) for row in read_jsonl(run.dir / "candidates.jsonl")
             for i, cand in enumerate(row["candidates"])]
    requests = [ChatRequest((Message("user", score_judge_prompt(row["prompt"], cand["response"])),),
                            o.judge_sampling, n=o.judgments,
                            seed=derive_seed(run.iteration_seed, row["key"], "judge", i))
                for row, i, cand in items]
    judged = run.generate(run.judge, "judgments")(requests)
    out = []
    for (row, i, cand), comps in zip(items, judged):
        texts = [c.text.strip() for c in comps]
        mean, scores = mean_score(texts, parser)
        out.append({"key": row["key"], "prompt": row["prompt"], "index": i, "response": cand["response"],
                    "chars": len(cand["response"]), "finish_reason": cand["finish_reason"], "judgments": texts,
                    "judgment_finish_reasons": [c.finish_reason for c in comps], "scores": scores,
                    "valid": sum(s is not None for s in scores), "mean_score": mean})
    run.write_jsonl("judged.jsonl", out)
    return judge_summary(out, o.score_parser)


def judge_summary(rows: Sequence[dict], parser: str) -> dict:
    scores = [s for r in rows for s in r["scores"]]
    valid = [s for s in scores if s is not None]
    return {"candidates": len(rows), "judgments": len(scores), "unparseable_judgments": len(scores) - len(valid),
            "unscored_candidates": sum(r["mean_score"] is None for r in rows),
            "score_histogram": histogram(valid), "mean_score": _mean(valid), "score_parser": parser,
            "judge_prompt": JUDGE_PROMPT}


def histogram(scores: Sequence[float]) -> dict[str, int]:
    """Count per score value ("4", "3.5"), in score order."""
    counts = Counter(scores)
    return {_label(v): counts[v] for v in sorted(counts)}


def _label(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def by_prompt(rows: Sequence[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["key"], []).append(row)
    return groups


def best_worst(cands: Sequence[dict]) -> tuple[dict, dict] | str:
    """Self-Rewarding's pair: (highest mean score, lowest mean score), the first candidate on equal means; or why
    there is none: "too_few_scored" (fewer than two candidates with a score), "tie" (the extremes are equal),
    "identical" (the two texts are the same)."""
    scored = [c for c in cands if c["mean_score"] is not None]
    if len(scored) < 2:
        return "too_few_scored"
    hi = max(scored, key=lambda c: c["mean_score"])
    lo = min(scored, key=lambda c: c["mean_score"])
    if hi["mean_score"] == lo["mean_score"]:
        return "tie"
    if hi["response"] == lo["response"]:
        return "identical"
    return hi, lo


def actor_pair(key: str, chosen: dict, rejected: dict) -> dict:
    """The audit row of an actor pair (data/pairs.jsonl)."""
    return {"key": key, "kind": "actor", "prompt": chosen["prompt"], "chosen": chosen["response"],
            "rejected": rejected["response"], "chosen_score": chosen["mean_score"],
            "rejected_score": rejected["mean_score"], "chosen_index": chosen["index"],
            "rejected_index": rejected["index"], "chosen_chars": len(chosen["response"]),
            "rejected_chars": len(rejected["response"])}


def dpo_record(key: str, kind: str, user: str, chosen: str, rejected: str) -> dict:
    """A conversational preference record for the trainer (data/dpo.jsonl)."""
    return {"key": key, "kind": kind, "prompt": [{"role": "user", "content": user}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def length_stats(pairs: Sequence[dict], prefix: str = "") -> dict[str, Any]:
    """Mean chosen / rejected length in characters and mean scores of `pairs` (audit rows)."""
    return {f"{prefix}mean_chosen_chars": _mean([len(p["chosen"]) for p in pairs]),
            f"{prefix}mean_rejected_chars": _mean([len(p["rejected"]) for p in pairs]),
            f"{prefix}mean_chosen_score": _mean([p["chosen_score"] for p in pairs]),
            f"{prefix}mean_rejected_score": _mean([p["rejected_score"] for p in pairs])}


def write_pairs(run, pairs: Sequence[dict], records: Sequence[dict]) -> None:
    run.write_jsonl("data/pairs.jsonl", pairs)
    run.write_training_data("dpo", records)


def stage_data(run) -> dict:
    groups = by_prompt(read_jsonl(run.dir / "judged.jsonl"))
    pairs, records, dropped = [], [], Counter()
    for key, cands in groups.items():
        pick = best_worst(cands)
        if isinstance(pick, str):
            dropped[pick] += 1
            continue
        chosen, rejected = pick
        pairs.append(actor_pair(key, chosen, rejected))
        records.append(dpo_record(key, "actor", chosen["prompt"], chosen["response"], rejected["response"]))
    write_pairs(run, pairs, records)
    return {"prompts": len(groups), "pairs": len(pairs), "pairs_by_kind": {"actor": len(pairs)},
            "tie_dropped_prompts": dropped["tie"], "too_few_scored_prompts": dropped["too_few_scored"],
            "identical_dropped_prompts": dropped["identical"], **length_stats(pairs)}


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


def summary(stages: dict) -> dict:
    j, d = stages["judge"], stages["data"]
    return {"candidates": j["candidates"], "judgments": j["judgments"], "unparseable": j["unparseable_judgments"],
            "mean_score": j["mean_score"], "tie_dropped": d["tie_dropped_prompts"],
            "actor_pairs": d["pairs_by_kind"].get("actor", 0), "judge_pairs": d["pairs_by_kind"].get("judge", 0),
            "chosen_chars": _round(d["mean_chosen_chars"]), "rejected_chars": _round(d["mean_rejected_chars"])}


#: the LLMBar eval of a score judge: the 5-point prompt, Yes at a mean score >= 4 (recorded in the config)
SCORE_JUDGE_EVAL = {"llmbar": {"judge_prompt": "score5", "score_threshold": 4.0}}

METHOD = Method(
    name="self_rewarding", label="Self-Rewarding", Config=SelfRewardingConfig,
    stages=(("sample", stage_sample), ("judge", stage_judge), ("data", stage_data)),
    judge="actor", trains_refiner=False, summary=summary, eval_bench=SCORE_JUDGE_EVAL,
    description="the model judges its own candidates with the 5-point prompt; DPO on best > worst")
