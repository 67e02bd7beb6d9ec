"""Decoding at a budget (paper Figure 5 / Table 10): greedy, best-of-N, iterative refinement and SPaR's BFS/DFS tree
search at test time, the refiner judging (and refining) the actor's responses before scoring.

The budget is one number for every strategy: the candidate responses a strategy may generate per prompt, the
actor's samples plus every refinement request (failed ones included). Judge calls are not part of it; they are
counted and reported beside it (`judge_requests`, each `cfg.votes` judgments). Every strategy spends at most the
budget; one that stops earlier says why in its `reason` (judged Yes, a node passed, a tree with nothing left to
expand, judgments that never became a majority). Judgments that do not parse are counted per sample and in the
totals.

Judging follows the official `get_value`: a tie (#Yes = #No, no valid judgment included) is judged again with a new
seed, up to `1 + tie_retries` attempts in all. The tree search's root critique is the first judgment agreeing with a
No majority, as in negative collection. An answer whose judgments stay tied is, like a tied response in the official
collection, no negative: it is kept as written (`tied judgments`, or `no valid judgment` when none parsed), never
searched with an empty critique. The tree grows with the budget (`grow_tree`): with `growth: depth` it is deepened
(branch and kept children unchanged) until it can ask `budget - 1` refinements, else it stays as configured and a
budget it cannot hold is marked `capped`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from evaluators.judging import Vote, get_parser, judge_messages, majority_vote, refine_messages
from harness.core.backends.base import derive_seed
from harness.core.options import to_dict
from harness.core.types import ChatRequest, Completion
from training.tree_search import REFINE_UNWRAPPERS, Root, SearchConfig, run_batched, search

Generate = Callable[[list[ChatRequest]], list[list[Completion]]]
STRATEGIES = ("greedy", "best-of-n", "iterative", "bfs", "dfs")
Growth = Literal["depth", "none"]

JUDGED_YES = "judged Yes"
TIED = "tied judgments"
NO_VALID = "no valid judgment"
BUDGET_SPENT = "budget spent"
ONLY_ANSWER = "budget 1: the answer is the only generation"


@dataclass
class Decoded:
    """A strategy's answers for a batch of prompts: the responses, one detail dict per prompt (strategy,
    generations, judge_requests, invalid_judgments, reason, and the returned answer's finish_reason and
    completion_tokens), the totals, and the settings the strategy used."""

    responses: list[str]
    details: list[dict]
    counts: dict
    settings: dict


@dataclass
class Judged:
    """A majority vote after the tie re-judgings, with what it cost."""

    vote: Vote
    attempts: int  # judge requests made (1 + re-judgings of a tie)
    invalid: int  # judgments that did not parse, over every attempt

    @property
    def undecided(self) -> str:
        """Why the vote decided nothing ('' when it did): tied, or no judgment parsed at all."""
        if not self.vote.tie:
            return ""
        return NO_VALID if self.vote.yes + self.vote.no == 0 else TIED


def judge_until_untied(items: Sequence[tuple[str, str]], cfg: SearchConfig, generate: Generate,
                       seed: Callable[[int, int], int]) -> list[Judged]:
    """Majority votes on (prompt, response) items, re-judging ties (item index, attempt -> its seed)."""
    parser = get_parser(cfg.parser)
    out: list[Judged | None] = [None] * len(items)
    invalid = [0] * len(items)
    todo = list(range(len(items)))
    for attempt in range(cfg.tie_retries + 1):
        if not todo:
            break
        replies = generate([ChatRequest(judge_messages(*items[i]), cfg.judge_sampling, seed=seed(i, attempt),
                                        n=cfg.votes) for i in todo])
        retry = []
        for i, comps in zip(todo, replies):
            vote = majority_vote([c.text for c in comps], parser)
            invalid[i] += vote.invalid
            out[i] = Judged(vote, attempt + 1, invalid[i])
            if vote.tie:
                retry.append(i)
        todo = retry
    return out  # type: ignore[return-value]


def _returned(completion: Completion) -> dict:
    return {"finish_reason": completion.finish_reason, "completion_tokens": completion.completion_tokens}


def _counts(details: list[dict], **extra: int) -> dict:
    return {"answers": len(details), "generations": sum(d["generations"] for d in details),
            "judge_requests": sum(d["judge_requests"] for d in details),
            "invalid_judgments": sum(d["invalid_judgments"] for d in details),
            "no_valid_judgment": sum(d["reason"].startswith(NO_VALID) for d in details),
            "reasons": dict(Counter(d["reason"] for d in details)), **extra}


# -- best-of-N --------------------------------------------------------------------------------------------------

def best_of_n(prompts: Sequence[str], candidates: Sequence[Sequence[Completion]], cfg: SearchConfig,
              generate: Generate) -> Decoded:
    """The refiner judges every candidate once (`cfg.votes` judgments, no re-judging); the highest Yes fraction
    wins, ties to the earlier candidate; a candidate with no valid judgment ranks below every judged one, and when
    none has one the first candidate is kept (`reason: no valid judgment`). A single candidate is not judged."""
    parser = get_parser(cfg.parser)
    flat = [(i, j) for i, cands in enumerate(candidates) if len(cands) > 1 for j in range(len(cands))]
    replies = generate([ChatRequest(judge_messages(prompts[i], candidates[i][j].text), cfg.judge_sampling,
                                    seed=derive_seed(cfg.seed, "best-of-n", i, j), n=cfg.votes) for i, j in flat])
    votes: list[list[Vote]] = [[] for _ in candidates]
    for (i, _), comps in zip(flat, replies):
        votes[i].append(majority_vote([c.text for c in comps], parser))
    out, details = [], []
    for cands, cand_votes in zip(candidates, votes):
        values = [v.value for v in cand_votes]
        judged = [j for j, v in enumerate(values) if v is not None]
        best = max(judged, key=lambda j: (values[j], -j)) if judged else 0
        reason = ("highest Yes fraction" if judged else f"{NO_VALID}: the first candidate") if cand_votes \
            else ONLY_ANSWER  # one candidate: nothing to choose, nothing judged
        out.append(cands[best].text)
        details.append({"strategy": "best-of-n", "generations": len(cands), "judge_requests": len(cand_votes),
                        "invalid_judgments": sum(v.invalid for v in cand_votes), "chosen": best, "values": values,
                        "reason": reason, **_returned(cands[best])})
    settings = {"votes": cfg.votes, "parser": cfg.parser, "judge_sampling": to_dict(cfg.judge_sampling),
                "seed": cfg.seed}
    return Decoded(out, details, _counts(details), settings)


# -- iterative refinement ---------------------------------------------------------------------------------------

def _iterative_seed(cfg: SearchConfig, i: int, step: int, attempt: int) -> int:
    # attempt 0 keeps the seed of the single judgment per step spar used to make (cached runs stay valid)
    parts = (i, step) if attempt == 0 else (i, step, attempt)
    return derive_seed(cfg.seed, "iterative-judge", *parts)


def iterative_refine(prompts: Sequence[str], answers: Sequence[Completion], cfg: SearchConfig, budget: int,
                     generate: Generate) -> Decoded:
    """Judge the current response; while the majority says No and the budget allows, refine it once with the
    majority critique (a request whose reply does not unwrap still counts and leaves the response as it was) and
    judge again. The last response is the answer; a response is not judged once the budget is spent."""
    unwrap = REFINE_UNWRAPPERS[cfg.refine_parser]
    current = list(answers)
    texts = [a.text for a in answers]
    gens = [1] * len(prompts)
    judge_requests, invalid, failures = [0] * len(prompts), [0] * len(prompts), [0] * len(prompts)
    chains: list[list[float | None]] = [[] for _ in prompts]
    reasons = [ONLY_ANSWER if budget <= 1 else "" for _ in prompts]
    active = [i for i in range(len(prompts)) if budget > 1]
    step = 0
    while active:
        ids, at = tuple(active), step  # the seed function is called before either changes
        judged = judge_until_untied([(prompts[i], texts[i]) for i in ids], cfg, generate,
                                    lambda k, attempt: _iterative_seed(cfg, ids[k], at, attempt))
        refine = []
        for i, j in zip(active, judged):
            judge_requests[i] += j.attempts
            invalid[i] += j.invalid
            chains[i].append(j.vote.value)
            if j.undecided:
                reasons[i] = j.undecided
            elif j.vote.label == 1:
                reasons[i] = JUDGED_YES
            else:
                refine.append((i, j.vote.critique or ""))
        if not refine:
            break
        outs = generate([ChatRequest(refine_messages(prompts[i], texts[i], critique), cfg.refine_sampling,
                                     seed=derive_seed(cfg.seed, "iterative-refine", i, step))
                         for i, critique in refine])
        active = []
        for (i, _), comps in zip(refine, outs):
            gens[i] += 1
            refined = unwrap(comps[0].text)
            if refined:
                texts[i], current[i] = refined, comps[0]
            else:
                failures[i] += 1
            if gens[i] >= budget:
                reasons[i] = BUDGET_SPENT
            else:
                active.append(i)
        step += 1
    details = [{"strategy": "iterative", "generations": gens[i], "judge_requests": judge_requests[i],
                "invalid_judgments": invalid[i], "refine_failures": failures[i], "values": chains[i],
                "changed": texts[i] != answers[i].text, "reason": reasons[i], **_returned(current[i])}
               for i in range(len(prompts))]
    settings = {"votes": cfg.votes, "parser": cfg.parser, "tie_retries": cfg.tie_retries,
                "refine_parser": cfg.refine_parser, "judge_sampling": to_dict(cfg.judge_sampling),
                "refine_sampling": to_dict(cfg.refine_sampling), "seed": cfg.seed}
    counts = _counts(details, refined=sum(d["changed"] for d in details), refine_failures=sum(failures))
    return Decoded(texts, details, counts, settings)


# -- tree search (BFS / DFS) ------------------------------------------------------------------------------------

def tree_capacity(cfg: SearchConfig, depth: int) -> int:
    """Children a tree of `depth` levels asks for when no child passes (one request each if every reply unwraps):
    BFS branch + (depth - 1) x kept x branch, DFS branch + kept x (the same at depth - 1)."""
    keep = min(cfg.select_branch, cfg.branch)
    if cfg.algorithm == "bfs":
        return cfg.branch + (depth - 1) * keep * cfg.branch
    return cfg.branch + (keep * tree_capacity(cfg, depth - 1) if depth > 1 else 0)


def grow_tree(cfg: SearchConfig, budget: int, growth: Growth) -> tuple[SearchConfig, dict]:
    """The search settings for `budget` generations per prompt (the answer plus `budget - 1` refine requests) and
    what the rule did. `depth`: the smallest depth >= `cfg.max_depth` whose tree holds `budget - 1` children;
    `none`: the configured tree, `capped` when it holds fewer. The node budget is set to `budget - 1` (it never
    binds before the request budget does)."""
    wanted = budget - 1
    depth = cfg.max_depth
    if growth == "depth":
        while tree_capacity(cfg, depth) < wanted:
            depth += 1
    grown = dataclasses.replace(cfg, max_depth=depth, budget=max(wanted, 1))
    capacity = tree_capacity(grown, depth)
    return grown, {"growth": growth, "configured_max_depth": cfg.max_depth, "max_depth": depth,
                   "capacity": capacity, "capped": capacity < wanted}


def _first_seed(cfg: SearchConfig, key: str, attempt: int) -> int:
    # attempt 0 keeps the seed of the single first judgment spar used to make (cached runs stay valid)
    return derive_seed(cfg.seed, key, "first") if attempt == 0 else derive_seed(cfg.seed, key, "first", attempt)


def _recording(generate: Generate, seen: dict[str, Completion]) -> Generate:
    """`generate` that remembers each reply's completion by its text (to describe the returned refinement)."""
    def wrapped(requests: list[ChatRequest]) -> list[list[Completion]]:
        answers = generate(requests)
        for comps in answers:
            for c in comps:
                seen.setdefault(c.text, c)
        return answers

    return wrapped


def _search_reason(res, limit: int) -> str:
    if res.passed:
        return "passed: the first node above the gate"
    if res.refine_requests >= limit:
        return f"{BUDGET_SPENT}: the best node"
    return "tree exhausted: the best node (no node left to expand under the search's rules)"


def refine_answers(prompts: Sequence[str], answers: Sequence[Completion], cfg: SearchConfig, generate: Generate,
                   budget: int | None = None, growth: Growth = "depth") -> Decoded:
    """Tree-search refinement of the answers judged a majority No, at `budget` generations per prompt (None: the
    configured tree and node budget, no request limit). Details say `searched: false` where the first judgment
    was a Yes or stayed tied; `generations` = the answer plus every refine request of its search."""
    if budget is not None and budget <= 1:
        details = [{"strategy": cfg.algorithm, "generations": 1, "judge_requests": 0, "invalid_judgments": 0,
                    "searched": False, "reason": ONLY_ANSWER, **_returned(a)} for a in answers]
        return Decoded([a.text for a in answers], details, _counts(details, searched=0),
                       {**to_dict(cfg), "tree": {"growth": growth, "capacity": 0, "capped": False}})
    tree_info: dict = {}
    limit = None
    if budget is not None:
        cfg, tree_info = grow_tree(cfg, budget, growth)
        limit = budget - 1
    keys = [f"answer-{i}" for i in range(len(prompts))]
    texts = [a.text for a in answers]
    judged = judge_until_untied(list(zip(prompts, texts)), cfg, generate,
                                lambda i, attempt: _first_seed(cfg, keys[i], attempt))
    roots = [Root(k, p, a, j.vote.critique) for k, p, a, j in zip(keys, prompts, texts, judged)
             if j.vote.label == 0]
    seen: dict[str, Completion] = {}
    results = {r.key: r for r in run_batched([search(root, cfg, limit) for root in roots],
                                             _recording(generate, seen))}
    out, details = [], []
    for key, answer, j in zip(keys, answers, judged):
        res = results.get(key)
        first = {"strategy": cfg.algorithm, "first_vote": j.vote.to_dict(), "first_attempts": j.attempts}
        if res is None:  # judged Yes, or still tied after every attempt
            out.append(answer.text)
            details.append({**first, "generations": 1, "judge_requests": j.attempts, "invalid_judgments": j.invalid,
                            "searched": False, "reason": j.undecided or JUDGED_YES, **_returned(answer)})
            continue
        final = res.final_node
        returned = seen.get(final.refine_cot or "", answer) if final.id else answer
        out.append(final.response)
        details.append({**first, "generations": 1 + res.refine_requests,
                        "judge_requests": j.attempts + res.judge_requests,
                        "invalid_judgments": j.invalid + res.invalid_judgments, "searched": True,
                        "passed": res.passed, "nodes": len(res.nodes) - 1, "final_value": final.value,
                        "refine_requests": res.refine_requests, "refine_failures": res.refine_failures,
                        "dropped_ties": res.dropped_ties,
                        "reason": _search_reason(res, limit if limit is not None else float("inf")),
                        "original_response": answer.text, **_returned(returned)})
    counts = _counts(details, accepted_as_is=sum(j.vote.label == 1 for j in judged), searched=len(roots),
                     unresolved_ties=sum(j.vote.tie for j in judged),
                     passed=sum(r.passed for r in results.values()),
                     refinements=sum(r.refinements for r in results.values()),
                     refine_requests=sum(r.refine_requests for r in results.values()))
    return Decoded(out, details, counts, {**to_dict(cfg), **({"tree": tree_info} if tree_info else {})})


# -- one entry point --------------------------------------------------------------------------------------------

def decode(strategy: str, prompts: Sequence[str], completions: Sequence[Sequence[Completion]], cfg: SearchConfig,
           budget: int, generate: Generate, growth: Growth = "depth") -> Decoded:
    """Answers by `strategy` at `budget` generations per prompt from the actor's completions (best-of-n: the
    `budget` candidates of each prompt; the others: the first completion is the answer)."""
    if strategy == "best-of-n":
        return best_of_n(prompts, completions, cfg, generate)
    answers = [comps[0] for comps in completions]
    if strategy == "iterative":
        return iterative_refine(prompts, answers, cfg, budget, generate)
    if strategy in ("bfs", "dfs"):
        return refine_answers(prompts, answers, dataclasses.replace(cfg, algorithm=strategy), generate, budget, growth)
    raise ValueError(f"unknown decoding strategy {strategy!r} (one of {', '.join(STRATEGIES[1:])})")
