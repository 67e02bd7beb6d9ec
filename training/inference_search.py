"""Inference-time tree search (paper Figure 5, the "w/ tree search" row): the actor answers, the refiner judges the
answer, and an answer not judged a majority Yes is refined by the same BFS/DFS search used for training data; the
search's returned node (the first that passes, else the best node found) replaces the answer before scoring."""

from __future__ import annotations

from typing import Callable, Sequence

from evaluators.judging import get_parser, judge_messages, majority_vote
from harness.backends.base import derive_seed
from harness.types import ChatRequest, Completion
from training.tree_search import Root, SearchConfig, run_batched, search

Generate = Callable[[list[ChatRequest]], list[list[Completion]]]


def refine_answers(prompts: Sequence[str], answers: Sequence[str], cfg: SearchConfig, generate: Generate
                   ) -> tuple[list[str], list[dict | None], dict]:
    """New answers, per-answer search summaries (None where the first judgment was already Yes) and counts."""
    parser = get_parser(cfg.parser)
    keys = [f"answer-{i}" for i in range(len(prompts))]
    verdicts = generate([ChatRequest(judge_messages(p, a), cfg.judge_sampling, seed=derive_seed(cfg.seed, k, "first"),
                                     n=cfg.votes) for k, p, a in zip(keys, prompts, answers)])
    votes = [majority_vote([c.text for c in comps], parser) for comps in verdicts]
    roots = [Root(k, p, a, v.critique or "") for k, p, a, v in zip(keys, prompts, answers, votes) if v.label != 1]
    results = {r.key: r for r in run_batched([search(root, cfg) for root in roots], generate)}
    out, details = [], []
    for key, answer, vote in zip(keys, answers, votes):
        res = results.get(key)
        if res is None:
            out.append(answer)
            details.append(None)
            continue
        out.append(res.final_node.response)
        details.append({"first_vote": vote.to_dict(), "passed": res.passed, "nodes": len(res.nodes) - 1,
                        "final_value": res.final_node.value, "original_response": answer})
    counts = {"answers": len(answers), "accepted_as_is": len(answers) - len(roots), "searched": len(roots),
              "passed": sum(r.passed for r in results.values()),
              "refinements": sum(r.refinements for r in results.values())}
    return out, details, counts
