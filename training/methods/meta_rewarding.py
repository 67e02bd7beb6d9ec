"""Meta-Rewarding Language Models (Wu et al., 2024) on the shared driver (baselines.md §2).

One model is actor, judge and meta-judge. One iteration:
- `sample`: K = 7 candidates per prompt at T 0.8, top-p 0.95 (`candidates.jsonl`);
- `judge`: N = 11 judgments per candidate with Self-Rewarding's 5-point prompt; score = mean of the parseable ones
  (unparseable dropped and counted) (`judged.jsonl`);
- `meta_judge` (iterations in `judge_pair_iterations`, default 1 and 2): per prompt, the candidate whose judgment
  scores have the highest variance; its judgments (parseable, not truncated, at most `max_judgment_words` words:
  over-long judgments are filtered so the judge does not learn verbosity) are compared in pairs, each pair in both
  orders, with the meta-judge prompt (byte-exact, paper Figure 2); `Winner: Judgement A|B` (`meta_judged.jsonl`);
- `data`: actor pairs with length control (rho): chosen = the shortest candidate scoring in
  [(1-rho) S_max + rho S_min, S_max], rejected = the longest in [S_min, (1-rho) S_min + rho S_max]; a prompt with
  S_max = S_min is dropped (rho = 0 is Self-Rewarding's max/min selection, shortest/longest on equal scores);
  judge pairs: position-bias weights w1 = win_2nd / (win_1st + win_2nd), w2 = win_1st / (win_1st + win_2nd) over
  the iteration's meta-judgments, battles B_mn = w1 1[r_mn = +1] + w2 1[r_nm = -1], Elo scores by maximum
  likelihood (argmax sum B_mn log sigmoid(e_m - e_n)), chosen = the highest-Elo judgment, rejected = the lowest
  (`data/pairs.jsonl` with kind actor|judge; both kinds go into one DPO run, `data/dpo.jsonl`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal, Sequence

from evaluators.score_judge import score_judge_prompt
from harness.core.backends.base import derive_seed
from harness.core.data import read_jsonl
from harness.core.options import Fraction, NonNegativeFloat, PositiveInt, option, options
from harness.core.types import ChatRequest, Message, SamplingParams
from training.methods import Method
from training.methods.self_rewarding import (SCORE_JUDGE_EVAL, actor_pair, by_prompt, dpo_record, length_stats,
                                             stage_judge, stage_sample, summary, write_pairs)

#: The meta-judge prompt (Meta-Rewarding paper Figure 2; baselines.md §2.3, "Judgement" spelled as in the original).
#: Placeholders {prompt}, {response}, {judgment a}, {judgment b} (filled in one pass by `meta_judge_prompt`).
META_JUDGE_TEMPLATE = (
    "Review the user's question and the corresponding response, along with two judgments.\n"
    "Determine which judgment is more accurate according to the rubric provided below. The\n"
    "rubric used for the initial judgments is as follows:\n"
    "- Add 1 point if the response is relevant and provides some information related to the\n"
    "user's inquiry, even if it is incomplete or contains some irrelevant content.\n"
    "- Add another point if the response addresses a substantial portion of the user's question,\n"
    "but does not completely resolve the query or provide a direct answer.\n"
    "- Award a third point if the response answers the basic elements of the user's question in a\n"
    "useful way, regardless of whether it seems to have been written by an AI Assistant or if it\n"
    "has elements typically found in blogs or search results.\n"
    "- Grant a fourth point if the response is clearly written from an AI Assistant's perspective,\n"
    "addressing the user's question directly and comprehensively, and is well-organized and\n"
    "helpful, even if there is slight room for improvement in clarity, conciseness or focus.\n"
    "- Bestow a fifth point for a response that is impeccably tailored to the user's question by\n"
    "an AI Assistant, without extraneous information, reflecting expert knowledge, and\n"
    "demonstrating a high-quality, engaging, and insightful answer.\n"
    "User: {prompt}\n"
    "Response: {response}\n"
    "Judgment A: {judgment a}\n"
    "Judgment B: {judgment b}\n"
    "After examining the original question, response, and both judgments:\n"
    "- Explain which judgment is more accurate according to the original rubric and why.\n"
    "Consider factors such as adherence to the rubric, accuracy in evaluating the response, and\n"
    "consistency in applying the criteria.\n"
    "- Conclude with a clear statement of which judgment is better using the format:\n"
    "\"Winner: [Judgement A | Judgement B]\""
)
_META_SLOTS = re.compile(r"\{(prompt|response|judgment a|judgment b)\}")
_TEMPLATE_ECHO = re.compile(r"\[?\s*Judge?ment A\s*\|\s*Judge?ment B\s*\]?", re.IGNORECASE)
_WINNER = re.compile(r"Winner\s*:[\s*_\"'`\[(]*Judge?ment\s*([AB])\b", re.IGNORECASE)
_ANY_JUDGMENT = re.compile(r"Judge?ment\s*([AB])\b", re.IGNORECASE)


@options
class MetaRewardingConfig:
    """Meta-Rewarding's options (a `meta_rewarding:` section); defaults are the paper's where it gives them."""

    candidates: PositiveInt = option(7, "candidate responses per prompt (paper: K = 7)")
    actor_sampling: SamplingParams = option(SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=2048),
                                            "candidate decoding (paper: T 0.8, top-p 0.95; budget as SPaR's actor)")
    judgments: PositiveInt = option(11, "judgments per candidate (paper: N = 11); score = mean of the parseable")
    judge_sampling: SamplingParams = option(SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=2048),
                                            "judgment decoding (not given by the paper: the actor's settings, as "
                                            "Self-Rewarding does)")
    score_parser: Literal["strict", "lenient"] = option(
        "strict", "strict: `Score:\\s*([0-9.]+)` (last occurrence, 0-5); lenient: small models, not the paper's")
    length_control: Fraction = option(0.4, "rho of the actor pairs' length control in [0, 1]; 0 = Self-Rewarding's "
                                           "selection (paper Table 4: rho 0.4, the 39.44% LC win-rate run)")
    judge_pair_iterations: list[PositiveInt] = option(
        [1, 2], "iterations that also make judge pairs (paper: the first two; later iterations actor pairs only)")
    meta_judge_sampling: SamplingParams = option(SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=2048),
                                                 "meta-judgment decoding (not given by the paper: the judge's)")
    meta_parser: Literal["strict", "lenient"] = option(
        "strict", "strict: 'Winner: Judgement A|B' (Judgment accepted, last occurrence, the template's own "
                  "'[Judgement A | Judgement B]' ignored); lenient (small models): else the last 'Judgement A|B'")
    max_judgment_words: PositiveInt = option(
        150, "judgments longer than this (words) are filtered from judge pairs, as are truncated ones (the paper "
             "filters over-long judgments without a number; its prompt asks for <= 100 words of justification)")
    max_compared_judgments: PositiveInt | None = option(
        None, "compare at most this many judgments of the chosen response (the first ones kept; null = all: "
              "N(N-1) meta-judgments per prompt)")
    position_bias_scope: Literal["iteration", "prompt"] = option(
        "iteration", "where the position-bias weights are counted: over all meta-judgments of the iteration, or per "
                     "prompt (the paper does not say)")
    elo_l2: NonNegativeFloat = option(1e-3, "L2 term of the Elo fit (keeps it finite when a judgment never loses; "
                                            "0 = plain maximum likelihood)")


# -- pure rules (unit-tested) ----------------------------------------------------------------------------------------

def meta_judge_prompt(prompt: str, response: str, judgment_a: str, judgment_b: str) -> str:
    values = {"prompt": prompt, "response": response, "judgment a": judgment_a, "judgment b": judgment_b}
    return _META_SLOTS.sub(lambda m: values[m.group(1)], META_JUDGE_TEMPLATE)


def parse_winner(text: str, lenient: bool = False) -> str | None:
    """"A" or "B" from a meta-judgment's `Winner: Judgement A|B` (the last one; None when absent)."""
    text = _TEMPLATE_ECHO.sub(" ", text)
    found = _WINNER.findall(text)
    if not found and lenient:
        found = _ANY_JUDGMENT.findall(text)
    return found[-1].upper() if found else None


def position_weights(winners: Sequence[str | None]) -> tuple[float, float, int, int]:
    """(w1, w2, wins of the first-shown judgment, wins of the second): w1 = win_2nd / (win_1st + win_2nd) weighs a
    win in first position, w2 = win_1st / (win_1st + win_2nd) a win in second position (0.5 each with no wins)."""
    first, second = sum(w == "A" for w in winners), sum(w == "B" for w in winners)
    if first + second == 0:
        return 0.5, 0.5, 0, 0
    return second / (first + second), first / (first + second), first, second


def battle_matrix(n: int, battles: Sequence[tuple[int, int, str | None]], w1: float, w2: float) -> list[list[float]]:
    """B[m][n] from (first shown, second shown, winner) meta-judgments: a first-position win adds w1 to B[first]
    [second], a second-position win adds w2 to B[second][first]; ties and parse errors add nothing."""
    b = [[0.0] * n for _ in range(n)]
    for first, second, winner in battles:
        if winner == "A":
            b[first][second] += w1
        elif winner == "B":
            b[second][first] += w2
    return b


def fit_elo(battles: Sequence[Sequence[float]], l2: float = 0.0, max_iter: int = 200, tol: float = 1e-10
            ) -> list[float]:
    """Elo scores e maximising sum_{m,n} B_mn log sigmoid(e_m - e_n) - l2/2 |e|^2 (Newton's method with
    backtracking), centred at 0. With l2 = 0 the fit is plain maximum likelihood (finite when every judgment both
    wins and loses somewhere in a connected comparison graph)."""
    import numpy as np

    b = np.array(battles, dtype=float)
    n = len(b)
    if n == 0:
        return []
    np.fill_diagonal(b, 0.0)
    e = np.zeros(n)

    def objective(x):
        d = x[:, None] - x[None, :]
        return float(-(b * np.logaddexp(0.0, -d)).sum() - 0.5 * l2 * x @ x)

    value = objective(e)
    for _ in range(max_iter):
        s = 1.0 / (1.0 + np.exp(-(e[:, None] - e[None, :])))  # s[k, j] = sigmoid(e_k - e_j)
        grad = (b * (1.0 - s)).sum(1) - (b.T * s).sum(1) - l2 * e
        if np.abs(grad).max() < tol:
            break
        w = (b + b.T) * s * (1.0 - s)
        neg_hessian = np.diag(w.sum(1)) - w + l2 * np.eye(n)
        step = np.linalg.lstsq(neg_hessian, grad, rcond=None)[0]
        size = 1.0
        while size > 1e-8:
            trial = e + size * step
            trial_value = objective(trial)
            if trial_value >= value - 1e-12:
                break
            size /= 2
        else:
            break
        e, value = trial, trial_value
    return [float(x) for x in e - e.mean()]


def length_control(cands: Sequence[dict], rho: float) -> tuple[dict, dict] | str:
    """Meta-Rewarding's actor pair over candidates with a mean score (`mean_score`, `response`): chosen = the
    shortest with score >= (1-rho) S_max + rho S_min, rejected = the longest with score <= (1-rho) S_min + rho S_max
    (the first candidate on equal lengths); or why there is none: "too_few_scored", "tie" (S_max = S_min),
    "overlap" (rho > 0.5 let the two picks coincide or the chosen not score above the rejected), "identical"."""
    scored = [c for c in cands if c["mean_score"] is not None]
    if len(scored) < 2:
        return "too_few_scored"
    s_max = max(c["mean_score"] for c in scored)
    s_min = min(c["mean_score"] for c in scored)
    if s_max == s_min:
        return "tie"
    eps = 1e-9 * max(1.0, abs(s_max))
    high = (1 - rho) * s_max + rho * s_min
    low = (1 - rho) * s_min + rho * s_max
    chosen = min((c for c in scored if c["mean_score"] >= high - eps), key=lambda c: len(c["response"]))
    rejected = max((c for c in scored if c["mean_score"] <= low + eps), key=lambda c: len(c["response"]))
    if chosen is rejected or chosen["mean_score"] <= rejected["mean_score"]:
        return "overlap"
    if chosen["response"] == rejected["response"]:
        return "identical"
    return chosen, rejected


def variance(scores: Sequence[float]) -> float:
    mean = sum(scores) / len(scores)
    return sum((s - mean) ** 2 for s in scores) / len(scores)


def highest_variance(cands: Sequence[dict]) -> tuple[dict, float] | None:
    """The candidate whose parseable judgment scores vary most (population variance; the first on ties; at least
    two parseable scores), or None."""
    best = None
    for c in cands:
        valid = [s for s in c["scores"] if s is not None]
        if len(valid) >= 2:
            v = variance(valid)
            if best is None or v > best[1]:
                best = (c, v)
    return best


def _words(text: str) -> int:
    return len(text.split())


# -- stages ----------------------------------------------------------------------------------------------------------

def _makes_judge_pairs(run) -> bool:
    return run.t in run.options.judge_pair_iterations


def stage_meta_judge(run) -> dict:
    """Meta-judgments of the highest-variance candidate's judgments, every pair in both orders:
    `meta_judged.jsonl`."""
    o = run.options
    if not _makes_judge_pairs(run):
        run.write_jsonl("meta_judged.jsonl", [])
        return {"skipped": f"iteration {run.t} makes no judge pairs (judge_pair_iterations: "
                           f"{list(o.judge_pair_iterations)})", "meta_judgments": 0}
    groups = by_prompt(read_jsonl(run.dir / "judged.jsonl"))
    counts: Counter = Counter()
    selected = []
    for key, cands in groups.items():
        pick = highest_variance(cands)
        if pick is None:
            counts["too_few_scores_prompts"] += 1
            continue
        cand, var = pick
        if var <= 0:
            counts["zero_variance_prompts"] += 1
            continue
        valid = [j for j, s in enumerate(cand["scores"]) if s is not None]
        keep = [j for j in valid if cand["judgment_finish_reasons"][j] != "length"
                and _words(cand["judgments"][j]) <= o.max_judgment_words]
        counts["long_judgments_filtered"] += len(valid) - len(keep)
        if o.max_compared_judgments:
            keep = keep[: o.max_compared_judgments]
        if len(keep) < 2:
            counts["too_few_judgments_prompts"] += 1
            continue
        selected.append((cand, var, keep))
    requests, where = [], []
    for cand, _, keep in selected:
        for a, m in enumerate(keep):
            for n in keep[a + 1:]:
                for first, second in ((m, n), (n, m)):
                    text = meta_judge_prompt(cand["prompt"], cand["response"], cand["judgments"][first],
                                             cand["judgments"][second])
                    seed = derive_seed(run.iteration_seed, cand["key"], "meta", first, second)
                    requests.append(ChatRequest((Message("user", text),), o.meta_judge_sampling, seed=seed))
                    where.append((cand["key"], first, second))
    replies = run.generate(run.judge, "meta-judgments")(requests)
    battles: dict[str, list[dict]] = {}
    for (key, first, second), comps in zip(where, replies):
        text = comps[0].text.strip()
        battles.setdefault(key, []).append({"first": first, "second": second, "text": text,
                                            "winner": parse_winner(text, o.meta_parser == "lenient")})
    rows = [{"key": cand["key"], "prompt": cand["prompt"], "response_index": cand["index"],
             "response": cand["response"], "variance": var, "judgments": keep,
             "battles": battles.get(cand["key"], [])} for cand, var, keep in selected]
    run.write_jsonl("meta_judged.jsonl", rows)
    winners = [b["winner"] for r in rows for b in r["battles"]]
    w1, w2, first_wins, second_wins = position_weights(winners)
    return {"prompts": len(groups), "selected_prompts": len(rows), **{k: counts[k] for k in (
            "zero_variance_prompts", "too_few_scores_prompts", "too_few_judgments_prompts",
            "long_judgments_filtered")}, "meta_judgments": len(winners),
            "unparseable_meta_judgments": winners.count(None), "first_wins": first_wins, "second_wins": second_wins,
            "meta_parser": o.meta_parser}


def judge_pairs(run, judged: dict[str, list[dict]]) -> tuple[list[dict], list[dict], dict]:
    """Judge pairs from `meta_judged.jsonl`: position weights over the iteration, Elo per prompt."""
    o = run.options
    rows = read_jsonl(run.dir / "meta_judged.jsonl")
    w1, w2, first_wins, second_wins = position_weights([b["winner"] for r in rows for b in r["battles"]])
    pairs, records, elo_ties = [], [], 0
    for row in rows:
        if o.position_bias_scope == "prompt":
            w1, w2, _, _ = position_weights([b["winner"] for b in row["battles"]])
        keep = row["judgments"]
        slot = {j: i for i, j in enumerate(keep)}
        matrix = battle_matrix(len(keep), [(slot[b["first"]], slot[b["second"]], b["winner"])
                                           for b in row["battles"]], w1, w2)
        elo = fit_elo(matrix, o.elo_l2)
        hi = max(range(len(keep)), key=lambda i: elo[i])
        lo = min(range(len(keep)), key=lambda i: elo[i])
        cand = next(c for c in judged[row["key"]] if c["index"] == row["response_index"])
        chosen, rejected = cand["judgments"][keep[hi]], cand["judgments"][keep[lo]]
        if elo[hi] - elo[lo] < 1e-9 or chosen == rejected:
            elo_ties += 1
            continue
        pairs.append({"key": row["key"], "kind": "judge", "prompt": row["prompt"], "response": row["response"],
                      "response_index": row["response_index"], "variance": row["variance"],
                      "chosen": chosen, "rejected": rejected, "chosen_score": elo[hi], "rejected_score": elo[lo],
                      "chosen_judgment": keep[hi], "rejected_judgment": keep[lo],
                      "chosen_judgment_score": cand["scores"][keep[hi]],
                      "rejected_judgment_score": cand["scores"][keep[lo]],
                      "elo": dict(zip(map(str, keep), elo))})
        records.append(dpo_record(row["key"], "judge", score_judge_prompt(row["prompt"], row["response"]),
                                  chosen, rejected))
    if o.position_bias_scope == "prompt":
        w1, w2, _, _ = position_weights([b["winner"] for r in rows for b in r["battles"]])  # reported: the overall
    info = {"omega1": w1, "omega2": w2, "position_bias_scope": o.position_bias_scope, "first_wins": first_wins,
            "second_wins": second_wins,
            "elo_tie_prompts": elo_ties, "meta_judged_prompts": len(rows)}
    return pairs, records, info


def stage_data(run) -> dict:
    o = run.options
    groups = by_prompt(read_jsonl(run.dir / "judged.jsonl"))
    pairs, records, dropped = [], [], Counter()
    for key, cands in groups.items():
        pick = length_control(cands, o.length_control)
        if isinstance(pick, str):
            dropped[pick] += 1
            continue
        chosen, rejected = pick
        pairs.append(actor_pair(key, chosen, rejected))
        records.append(dpo_record(key, "actor", chosen["prompt"], chosen["response"], rejected["response"]))
    actor_stats = length_stats(pairs)
    judge: dict = {"skipped": f"iteration {run.t} makes no judge pairs"}
    jpairs: list[dict] = []
    if _makes_judge_pairs(run):
        jpairs, jrecords, judge = judge_pairs(run, groups)
        judge.update(length_stats(jpairs, "judge_"))
        records += jrecords
    write_pairs(run, pairs + jpairs, records)
    return {"prompts": len(groups), "pairs": len(pairs) + len(jpairs),
            "pairs_by_kind": {"actor": len(pairs), "judge": len(jpairs)}, "length_control": o.length_control,
            "tie_dropped_prompts": dropped["tie"], "too_few_scored_prompts": dropped["too_few_scored"],
            "length_control_dropped_prompts": dropped["overlap"], "identical_dropped_prompts": dropped["identical"],
            **actor_stats, "judge": judge}


METHOD = Method(
    name="meta_rewarding", label="Meta-Rewarding", Config=MetaRewardingConfig,
    stages=(("sample", stage_sample), ("judge", stage_judge), ("meta_judge", stage_meta_judge),
            ("data", stage_data)),
    judge="actor", trains_refiner=False, summary=summary, eval_bench=SCORE_JUDGE_EVAL,
    description="Self-Rewarding with length-controlled actor pairs plus judge pairs from a meta-judge (Elo)")
