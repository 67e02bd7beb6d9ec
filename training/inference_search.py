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

from evaluators.judging import Vote, get_parser, judge_messages, majority_vote, refine_messages
from harness.backends.base import derive_seed
from harness.types import ChatRequest, Completion
from training.tree_search import REFINE_UNWRAPPERS, Root, SearchConfig, run_batched, search

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
    """New answers, per-answer details (`searched: false` where the first judgment was a Yes or stayed tied;
    `generations` = the first answer plus the refinements the search made) and counts."""
    keys = [f"answer-{i}" for i in range(len(prompts))]
    votes, attempts = first_votes(keys, prompts, answers, cfg, generate)
    roots = [Root(k, p, a, v.critique) for k, p, a, v in zip(keys, prompts, answers, votes) if v.label == 0]
    results = {r.key: r for r in run_batched([search(root, cfg) for root in roots], generate)}
    out, details = [], []
    for key, answer, vote, tries in zip(keys, answers, votes, attempts):
        res = results.get(key)
        if vote.label == 1:
            out.append(answer)
            details.append({"strategy": cfg.algorithm, "generations": 1, "searched": False, "reason": "judged Yes"})
        elif res is None:  # still tied after every attempt
            out.append(answer)
            details.append({"strategy": cfg.algorithm, "generations": 1, "first_vote": vote.to_dict(),
                            "first_attempts": tries, "searched": False, "reason": "tied judgments",
                            "original_response": answer})
        else:
            out.append(res.final_node.response)
            details.append({"strategy": cfg.algorithm, "generations": 1 + res.refinements,
                            "first_vote": vote.to_dict(), "first_attempts": tries, "searched": True,
                            "passed": res.passed, "nodes": len(res.nodes) - 1, "final_value": res.final_node.value,
                            "original_response": answer})
    counts = {"answers": len(answers), "accepted_as_is": sum(v.label == 1 for v in votes), "searched": len(roots),
              "unresolved_ties": sum(v.tie for v in votes), "passed": sum(r.passed for r in results.values()),
              "refinements": sum(r.refinements for r in results.values()),
              "generations": len(answers) + sum(r.refinements for r in results.values())}
    return out, details, counts


# -- decoding strategies at a budget of generated responses (paper Figure 5 / Table 10) ---------------------------

STRATEGIES = ("greedy", "best-of-n", "iterative", "bfs", "dfs")


def best_of_n(prompts: Sequence[str], candidates: Sequence[Sequence[str]], cfg: SearchConfig, generate: Generate
              ) -> tuple[list[str], list[dict], dict]:
    """Best-of-N: the refiner judges every candidate (`cfg.votes` judgments); the candidate with the highest Yes
    fraction wins (ties: the earlier candidate; no valid judgment counts as 0)."""
    parser = get_parser(cfg.parser)
    flat = [(i, j) for i, cands in enumerate(candidates) for j in range(len(cands))]
    replies = generate([ChatRequest(judge_messages(prompts[i], candidates[i][j]), cfg.judge_sampling,
                                    seed=derive_seed(cfg.seed, "best-of-n", i, j), n=cfg.votes) for i, j in flat])
    values: list[list[float]] = [[0.0] * len(c) for c in candidates]
    for (i, j), comps in zip(flat, replies):
        values[i][j] = majority_vote([c.text for c in comps], parser).value or 0.0
    out, details = [], []
    for i, cands in enumerate(candidates):
        best = max(range(len(cands)), key=lambda j: (values[i][j], -j))
        out.append(cands[best])
        details.append({"strategy": "best-of-n", "generations": len(cands), "chosen": best, "values": values[i]})
    counts = {"answers": len(prompts), "generations": sum(len(c) for c in candidates),
              "judge_requests": len(flat)}
    return out, details, counts


def iterative_refine(prompts: Sequence[str], answers: Sequence[str], cfg: SearchConfig, budget: int,
                     generate: Generate) -> tuple[list[str], list[dict], dict]:
    """Iterative refinement: judge the current response; while the majority says No and the budget (generated
    responses, the first answer included) allows, refine it once with the majority critique and judge again.
    The last response is the answer."""
    parser = get_parser(cfg.parser)
    unwrap = REFINE_UNWRAPPERS[cfg.refine_parser]
    current = list(answers)
    generations = [1] * len(prompts)
    chains: list[list[float | None]] = [[] for _ in prompts]
    active = list(range(len(prompts)))
    step = 0
    while active:
        replies = generate([ChatRequest(judge_messages(prompts[i], current[i]), cfg.judge_sampling,
                                        seed=derive_seed(cfg.seed, "iterative-judge", i, step), n=cfg.votes)
                            for i in active])
        refine = []
        for i, comps in zip(active, replies):
            vote = majority_vote([c.text for c in comps], parser)
            chains[i].append(vote.value)
            if vote.label == 0 and vote.critique and generations[i] < budget:
                refine.append((i, vote.critique))
        if not refine:
            break
        outs = generate([ChatRequest(refine_messages(prompts[i], current[i], critique), cfg.refine_sampling,
                                     seed=derive_seed(cfg.seed, "iterative-refine", i, step)) for i, critique in refine])
        active = []
        for (i, _), comps in zip(refine, outs):
            generations[i] += 1
            refined = unwrap(comps[0].text)
            if refined:
                current[i] = refined
            active.append(i)
        step += 1
    details = [{"strategy": "iterative", "generations": g, "values": chain, "changed": c != a}
               for g, chain, c, a in zip(generations, chains, current, answers)]
    counts = {"answers": len(prompts), "generations": sum(generations),
              "refined": sum(d["changed"] for d in details)}
    return current, details, counts
