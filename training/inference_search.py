"""Inference-time tree search (paper Figure 5, the "w/ tree search" row): the actor answers, the refiner judges the
answer, and an answer judged a majority No is refined by the same BFS/DFS search used for training data; the
search's returned node (the first that passes, else the best node found) replaces the answer before scoring.

The first judgment follows the official `get_value`: a tie (#Yes = #No, no valid judgment included) is judged again
with a new seed, up to `1 + tie_retries` attempts in all. The search's root critique is the first judgment agreeing
with a No majority, as in negative collection. An answer whose judgments stay tied is, like a tied response in the
official collection, no negative: it is kept as written and counted (`unresolved_ties`), never searched with an
empty critique.
"""

from __future__ import annotations

from typing import Callable, Sequence

from evaluators.judging import Vote, get_parser, judge_messages, majority_vote
from harness.backends.base import derive_seed
from harness.types import ChatRequest, Completion
from training.tree_search import Root, SearchConfig, run_batched, search

Generate = Callable[[list[ChatRequest]], list[list[Completion]]]


def _first_seed(cfg: SearchConfig, key: str, attempt: int) -> int:
    # attempt 0 keeps the seed of the single first judgment spar used to make (cached runs stay valid)
    return derive_seed(cfg.seed, key, "first") if attempt == 0 else derive_seed(cfg.seed, key, "first", attempt)


def first_votes(keys: Sequence[str], prompts: Sequence[str], answers: Sequence[str], cfg: SearchConfig,
                generate: Generate) -> tuple[list[Vote], list[int]]:
    """Majority votes on the answers, re-judging ties (each attempt its own seed); and the attempts each took."""
    parser = get_parser(cfg.parser)
    votes: list[Vote | None] = [None] * len(keys)
    attempts = [0] * len(keys)
    todo = list(range(len(keys)))
    for attempt in range(cfg.tie_retries + 1):
        if not todo:
            break
        replies = generate([ChatRequest(judge_messages(prompts[i], answers[i]), cfg.judge_sampling,
                                        seed=_first_seed(cfg, keys[i], attempt), n=cfg.votes) for i in todo])
        retry = []
        for i, comps in zip(todo, replies):
            votes[i] = majority_vote([c.text for c in comps], parser)
            attempts[i] = attempt + 1
            if votes[i].tie:
                retry.append(i)
        todo = retry
    return votes, attempts  # type: ignore[return-value]


def refine_answers(prompts: Sequence[str], answers: Sequence[str], cfg: SearchConfig, generate: Generate
                   ) -> tuple[list[str], list[dict | None], dict]:
    """New answers, per-answer details (None where the first judgment was a Yes; `searched: false` where it stayed
    tied) and counts."""
    keys = [f"answer-{i}" for i in range(len(prompts))]
    votes, attempts = first_votes(keys, prompts, answers, cfg, generate)
    roots = [Root(k, p, a, v.critique) for k, p, a, v in zip(keys, prompts, answers, votes) if v.label == 0]
    results = {r.key: r for r in run_batched([search(root, cfg) for root in roots], generate)}
    out, details = [], []
    for key, answer, vote, tries in zip(keys, answers, votes, attempts):
        res = results.get(key)
        if vote.label == 1:
            out.append(answer)
            details.append(None)
        elif res is None:  # still tied after every attempt
            out.append(answer)
            details.append({"first_vote": vote.to_dict(), "first_attempts": tries, "searched": False,
                            "reason": "tied judgments", "original_response": answer})
        else:
            out.append(res.final_node.response)
            details.append({"first_vote": vote.to_dict(), "first_attempts": tries, "searched": True,
                            "passed": res.passed, "nodes": len(res.nodes) - 1, "final_value": res.final_node.value,
                            "original_response": answer})
    counts = {"answers": len(answers), "accepted_as_is": sum(v.label == 1 for v in votes), "searched": len(roots),
              "unresolved_ties": sum(v.tie for v in votes), "passed": sum(r.passed for r in results.values()),
              "refinements": sum(r.refinements for r in results.values())}
    return out, details, counts
