"""Tree-search refinement (SPaR §1.3b), BFS and DFS, written once and driven either batched or node-at-a-time.

Each search is a generator: it yields the chat requests it needs next (refinements of nodes, judgments of new
responses) and receives their completions. `run_batched` advances every tree together and sends all their pending
requests to the backend as one batch per step (lock-step); `run_async` lets each tree move on as soon as its own
requests return, with a bounded number in flight across all trees (what keeps a continuous-batching server full);
`run_sequential` answers one request at a time, tree after tree (how the official code calls its server). Request
seeds depend only on a request's place in its tree (tree seed, node, child, attempt) or, for judgments, on the
judged text and how often it was judged afresh, never on batch order or timing. So with a backend whose answer is a
function of the request and its seed, all three drivers build identical trees.

Reference semantics (thu-coai/SPaR `src/ToT/{bfs,dfs,base,task}.py`, `src/models/get_response.py`):
- refine: `unwrap_refine_cot` = `reply.split('[[start]]')[1].split('[[end]]')[0].strip()`. A reply without
  `[[start]]` raises inside `get_refine`, which re-asks (3 requests in all); a reply whose unwrapped text is empty
  (e.g. `[[start]]` twice in a row) is returned empty and re-asked by the BFS/DFS loop (3 calls of `get_refine` in
  all): up to 9 requests per child. A second `[[start]]` ends the refinement (`split(...)[1]`).
- judge (`get_value`): `votes` samples; #Yes == #No (no valid judgment included) is re-asked, 3 attempts in all,
  then the node is dropped. Judged texts are cached per tree; a dropped (tied) text is not cached, so the same text
  met again is judged afresh (here: with new seeds).
- budget: counts nodes kept (judged), not refinements; BFS stops at 0, DFS checks it only after a sibling set, so a
  DFS visit entered with no budget left still adds one node (the official behaviour).
- failure: the best node of the whole tree, the LAST one with the top value in pre-order (`Node.getBestV`, `>=`).
BFS expands the whole frontier `branch` times per level, stops after a level whose best child has value > `end_gate`,
else keeps the best `select_branch`. DFS expands one node `branch` times, returns when the best child passes, else
recurses into the best `select_branch` children in order. A failed search is marked not passed (no training pair).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Callable, Generator, Iterable, Literal, Protocol, Sequence

from evaluators.judging import (get_parser, judge_messages, majority_vote, refine_messages, unwrap_refine_cot,
                               unwrap_refine_lenient)
from harness.core.backends.base import derive_seed
from harness.core.options import Fraction, NonNegativeInt, PositiveInt, option, options
from harness.core.types import ChatRequest, Completion, SamplingParams

Requests = list[ChatRequest]
Answers = list[list[Completion]]
Search = Generator[Requests, Answers, "SearchResult"]
ALGORITHMS = ("bfs", "dfs")


@options
class SearchConfig:
    """Tree-search settings; defaults are the official driver's (BFS, 3/2/3, gate 0.5, 5 votes, budget 15) and the
    official retry counts (3 judging attempts of a tie, 3 x 3 refine requests)."""

    algorithm: Literal["bfs", "dfs"] = option("bfs", "search algorithm (the official driver passes bfs)")
    branch: PositiveInt = option(3, "refinements asked per expanded node")
    select_branch: PositiveInt = option(2, "children kept for the next level (BFS) / visited (DFS)")
    max_depth: PositiveInt = option(3, "deepest level of refinements")
    budget: PositiveInt = option(15, "judged nodes a tree may hold (official: decremented per kept child)")
    end_gate: Fraction = option(0.5, "a child passes when its Yes fraction is strictly above this")
    votes: PositiveInt = option(5, "judgments sampled per node (its value is their Yes fraction)")
    tie_retries: NonNegativeInt = option(2, "re-judgings of a tied node after the first attempt (official get_value: "
                                            "3 attempts in all), then the node is dropped")
    refine_retries: NonNegativeInt = option(2, "re-asks of a child whose unwrapped refinement is empty (the BFS/DFS "
                                               "loop: 3 calls of get_refine in all)")
    refine_parse_retries: NonNegativeInt = option(2, "re-asks inside one get_refine call of a reply without "
                                                     "[[start]] (official: 3 requests in all)")
    parser: Literal["official", "strict", "lenient"] = option("official", "verdict parser of the judgments")
    refine_parser: Literal["official", "lenient"] = option(
        "official", "official: unwrap_refine_cot ([[start]] ... [[end]]); lenient (small models, not the paper's): "
                    "also 'Refined Output:' or the whole reply when there is no [[start]]")
    judge_sampling: SamplingParams = option(SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=2048),
                                            "decoding of the judgments (official: T 0.7, top-p 1.0, 2048 tokens)")
    refine_sampling: SamplingParams = option(SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=3072),
                                             "decoding of the refinements (official: T 0.7, top-p 1.0, 3072 tokens)")
    seed: int = option(0, "base of every request seed")
    scheduler: Literal["auto", "lockstep", "async"] = option(
        "auto", "how the batched driver sends the trees' requests: lockstep (every tree's pending requests as one "
                "batch per step), async (each tree moves on when its own requests return, up to the backend's "
                "max_concurrency in flight; an in-process backend gets one request at a time), auto (async for "
                "server backends (openai), lockstep for hf/vllm/fake); the trees are the same either way")


def unwrap_refinement(reply: str) -> str | None:
    """The official `unwrap_refine_cot` (`evaluators.judging.unwrap_refine_cot`): None when there is no `[[start]]`
    (the official call raises), else the text between the first and the second `[[start]]`, up to the first `[[end]]`
    in it, stripped (possibly empty)."""
    return unwrap_refine_cot(reply)


def unwrap_refinement_lenient(reply: str) -> str | None:
    """The official rule when the reply has `[[start]]`; else 'Refined Output:' or the whole reply up to the first
    `[[end]]` (`evaluators.judging.unwrap_refine_lenient`: never keeps a marker). As with the official rule, an
    empty refinement after `[[start]]` is "" (re-asked by the search loop), a blank reply without it None."""
    refined = unwrap_refine_lenient(reply)
    return refined if refined or "[[start]]" in reply else None


REFINE_UNWRAPPERS: dict[str, Callable[[str], str | None]] = {"official": unwrap_refinement,
                                                            "lenient": unwrap_refinement_lenient}


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    response: str
    critique: str | None  # the first judgment agreeing with the majority
    value: float | None  # Yes fraction of the valid judgments
    yes: int = 0
    no: int = 0
    invalid: int = 0
    refine_cot: str | None = None  # the refiner's full reply that produced this node (None for the root)


@dataclass
class SearchResult:
    key: str
    prompt: str
    nodes: list[Node]
    final: int  # id of the returned node
    passed: bool
    refinements: int = 0  # parsed refinements (kept or dropped by a tie)
    refine_failures: int = 0  # children given up after every refine attempt
    dropped_ties: int = 0  # refinements dropped because their judgments stayed tied
    invalid_judgments: int = 0
    refine_requests: int = 0
    judge_requests: int = 0

    @property
    def final_node(self) -> Node:
        return self.nodes[self.final]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["final_node"] = asdict(self.final_node)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SearchResult":
        d = {k: v for k, v in d.items() if k != "final_node"}
        d["nodes"] = [Node(**n) for n in d["nodes"]]
        return cls(**d)


@dataclass(frozen=True)
class Root:
    """What a search starts from: the instruction, the negative response and its majority critique."""

    key: str
    prompt: str
    response: str
    critique: str


def _text_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class _Tree:
    root: Root
    cfg: SearchConfig
    nodes: list[Node] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)  # judged text -> its vote (the official value cache)
    rounds: dict[str, int] = field(default_factory=dict)  # judged text -> fresh judgings started (ties re-judge)
    refinements: int = 0
    refine_failures: int = 0
    dropped_ties: int = 0
    invalid_judgments: int = 0
    refine_requests: int = 0
    judge_requests: int = 0
    refine_limit: int | None = None  # refine requests the tree may make in all (inference budgets); None: no limit

    def seed(self, *parts: object) -> int:
        return derive_seed(self.cfg.seed, self.root.key, *parts)

    @property
    def kept(self) -> int:
        return len(self.nodes) - 1

    def expand(self, parents: Sequence[Node], k: int) -> Generator[Requests, Answers, list[Node]]:
        """`k` children of each parent, in (parent, child) order as the official loops make them; stops after the
        kept child that spends the budget. Slots go out in chunks of the budget left (one when none is left), so a
        chunk can only spend the budget on its last slot: batching never asks for a child the official loop would
        not have asked for."""
        slots = [(p, c) for p in parents for c in range(k)]
        children: list[Node] = []
        done = 0
        while done < len(slots):
            chunk = slots[done: done + max(self.cfg.budget - self.kept, 1)]
            done += len(chunk)
            made = yield from self.refine(chunk)
            votes = yield from self.judge([text for _, text, _ in made])
            for (parent, text, cot), vote in zip(made, votes):
                if vote is None:
                    self.dropped_ties += 1
                    continue
                node = Node(len(self.nodes), parent.id, parent.depth + 1, text, vote.critique, vote.value,
                            vote.yes, vote.no, vote.invalid, cot)
                self.nodes.append(node)
                children.append(node)
            if self.kept >= self.cfg.budget:
                break
        return children

    def refine(self, slots: Sequence[tuple[Node, int]]) -> Generator[Requests, Answers, list[tuple[Node, str, str]]]:
        """One refinement per slot with the official nested retries: a reply without [[start]] is re-asked inside
        `get_refine` (refine_parse_retries), an empty unwrapped one by the search loop (refine_retries)."""
        cfg, unwrap = self.cfg, REFINE_UNWRAPPERS[self.cfg.refine_parser]
        state = {i: (0, 0) for i in range(len(slots))}  # slot -> (outer attempt, inner attempt)
        got: dict[int, tuple[str, str]] = {}
        while state:
            order = sorted(state)
            if self.refine_limit is not None:  # slots past the limit are never asked (not failures)
                allowed = max(self.refine_limit - self.refine_requests, 0)
                for i in order[allowed:]:
                    state.pop(i)
                order = order[:allowed]
                if not order:
                    break
            requests = [ChatRequest(refine_messages(self.root.prompt, slots[i][0].response, slots[i][0].critique or ""),
                                    cfg.refine_sampling, seed=self.seed("refine", slots[i][0].id, slots[i][1],
                                                                        *state[i]))
                        for i in order]
            self.refine_requests += len(requests)
            answers = yield requests
            for i, comps in zip(order, answers):
                reply = comps[0].text
                refined = unwrap(reply)
                outer, inner = state.pop(i)
                if refined:
                    got[i] = (refined, reply)
                    continue
                if refined is None and inner < cfg.refine_parse_retries:
                    state[i] = (outer, inner + 1)
                elif outer < cfg.refine_retries:
                    state[i] = (outer + 1, 0)
                else:
                    self.refine_failures += 1
        self.refinements += len(got)
        return [(slots[i][0], *got[i]) for i in range(len(slots)) if i in got]

    def judge(self, texts: Sequence[str]) -> Generator[Requests, Answers, list]:
        """Votes for `texts` (None where the tie never broke), as the official per-child `get_step_value` calls would
        give them: a text judged before in this tree comes from the cache; a text whose judging tied is not cached,
        so its next occurrence is judged afresh."""
        out: list = [None] * len(texts)
        pending = list(range(len(texts)))
        while pending:
            fresh: dict[str, int] = {}
            later = []
            for i in pending:
                if texts[i] in self.values:
                    out[i] = self.values[texts[i]]
                elif texts[i] in fresh:
                    later.append(i)
                else:
                    fresh[texts[i]] = i
            if not fresh:
                break
            votes = yield from self.judge_fresh(list(fresh))
            for text, vote in zip(fresh, votes):
                out[fresh[text]] = vote
            pending = later
        return out

    def judge_fresh(self, texts: Sequence[str]) -> Generator[Requests, Answers, list]:
        """One official `get_value` call per text: up to 1 + tie_retries attempts of `votes` samples. Each attempt
        (and each fresh judging of a text met again) is its own seed, so a retry really resamples."""
        cfg, parser = self.cfg, get_parser(self.cfg.parser)
        rounds = {}
        for t in texts:
            rounds[t] = self.rounds.get(t, 0)
            self.rounds[t] = rounds[t] + 1
        result: dict[str, object] = {}
        todo = list(texts)
        for attempt in range(cfg.tie_retries + 1):
            if not todo:
                break
            requests = [ChatRequest(judge_messages(self.root.prompt, t), cfg.judge_sampling, n=cfg.votes,
                                    seed=self.seed("judge", _text_id(t), rounds[t], attempt)) for t in todo]
            self.judge_requests += len(requests)
            answers = yield requests
            retry = []
            for text, comps in zip(todo, answers):
                vote = majority_vote([c.text for c in comps], parser)
                self.invalid_judgments += vote.invalid
                if vote.tie:
                    retry.append(text)
                else:
                    result[text] = self.values[text] = vote
            todo = retry
        return [result.get(t) for t in texts]

    def last_best(self) -> Node:
        """The official `root.getBestV()`: pre-order over children in creation order, `>=`, root value 0."""
        children: dict[int, list[Node]] = {}
        for n in self.nodes[1:]:
            children.setdefault(n.parent, []).append(n)

        def best(node: Node) -> tuple[Node, float]:
            top, top_value = node, node.value or 0.0
            for child in children.get(node.id, []):
                sub, sub_value = best(child)
                if sub_value >= top_value:
                    top, top_value = sub, sub_value
            return top, top_value

        return best(self.nodes[0])[0]

    def result(self, passed_node: Node | None) -> SearchResult:
        final, passed = (passed_node, True) if passed_node is not None else (self.last_best(), False)
        return SearchResult(self.root.key, self.root.prompt, self.nodes, final.id, passed, self.refinements,
                            self.refine_failures, self.dropped_ties, self.invalid_judgments, self.refine_requests,
                            self.judge_requests)


def _best(nodes: Sequence[Node], k: int) -> list[Node]:
    return sorted(nodes, key=lambda n: (-(n.value or 0.0), n.id))[:k]


def _bfs(tree: _Tree) -> Search:
    cfg = tree.cfg
    frontier = [tree.nodes[0]]
    for _ in range(cfg.max_depth):
        children = yield from tree.expand(frontier, cfg.branch)
        if not children:
            break
        best = _best(children, 1)[0]
        if (best.value or 0.0) > cfg.end_gate:  # the gate is checked even on the level that spent the budget
            return tree.result(best)
        if tree.kept >= cfg.budget:
            break
        frontier = _best(children, min(cfg.select_branch, cfg.branch))
    return tree.result(None)


def _dfs(tree: _Tree) -> Search:
    cfg = tree.cfg

    def visit(node: Node) -> Generator[Requests, Answers, Node | None]:
        if node.depth >= cfg.max_depth:
            return None
        children = yield from tree.expand([node], cfg.branch)
        if not children:
            return None
        best = _best(children, 1)[0]
        if (best.value or 0.0) > cfg.end_gate:
            return best
        if tree.kept >= cfg.budget:  # official DFS_sub: `if budget <= 0` only after the gate, never on entry
            return None
        for child in _best(children, min(cfg.select_branch, cfg.branch)):
            found = yield from visit(child)
            if found is not None:
                return found
        return None

    found = yield from visit(tree.nodes[0])
    return tree.result(found)


def search(root: Root, cfg: SearchConfig, refine_limit: int | None = None) -> Search:
    """One tree search as a generator of request batches; its return value is the SearchResult. `refine_limit`
    (inference-time decoding at a budget, never training) caps the refine requests, failed ones included: the search
    ends when they are spent."""
    tree = _Tree(root, cfg, refine_limit=refine_limit)
    tree.nodes.append(Node(0, None, 0, root.response, root.critique, 0.0))  # the official root_value is 0
    return (yield from (_bfs(tree) if cfg.algorithm == "bfs" else _dfs(tree)))


Generate = Callable[[Requests], Answers]


def run_batched(searches: Iterable[Search], generate: Generate,
                on_step: Callable[[int, int], None] | None = None) -> list[SearchResult]:
    """Advance all searches in lockstep: each step sends every pending request of every tree as one batch."""
    gens = list(searches)
    results: list[SearchResult | None] = [None] * len(gens)
    pending: dict[int, Requests] = {}
    for i, gen in enumerate(gens):
        _advance(gens, i, None, pending, results)
    while pending:
        order = sorted(pending)
        batch = [r for i in order for r in pending[i]]
        answers = generate(batch)
        offset = 0
        for i in order:
            n = len(pending[i])
            _advance(gens, i, answers[offset:offset + n], pending, results)
            offset += n
        if on_step:
            on_step(len(batch), sum(r is not None for r in results))
    return results  # type: ignore[return-value]


def run_sequential(searches: Iterable[Search], generate: Generate,
                   on_step: Callable[[int, int], None] | None = None) -> list[SearchResult]:
    """Node-at-a-time: one request per backend call, one tree after another."""
    results = []
    for gen in searches:
        try:
            requests = next(gen)
            while True:
                requests = gen.send([generate([r])[0] for r in requests])
        except StopIteration as stop:
            results.append(stop.value)
        if on_step:
            on_step(1, len(results))
    return results


class Stream(Protocol):
    """What `run_async` drives (harness.core.concurrent.CompletionStream): groups of requests submitted under a tag,
    complete groups handed back as they finish."""

    def submit(self, tag: int, requests: Requests) -> None: ...

    def wait(self) -> list[tuple[int, Answers]]: ...


def run_async(searches: Iterable[Search], stream: Stream,
              on_step: Callable[[int, int], None] | None = None) -> list[SearchResult]:
    """Each tree moves on as soon as its own pending requests are answered; the stream keeps up to its limit of
    calls in flight across all trees. Seeds do not depend on the schedule, so the trees equal `run_batched`'s and
    `run_sequential`'s on a backend whose answer is a function of the request and its seed."""
    gens = list(searches)
    results: list[SearchResult | None] = [None] * len(gens)
    pending: dict[int, Requests] = {}
    for i in range(len(gens)):
        _advance(gens, i, None, pending, results)
        if i in pending:
            stream.submit(i, pending[i])
    while pending:
        answered = 0
        for i, answers in stream.wait():
            answered += len(pending[i])
            _advance(gens, i, answers, pending, results)
            if i in pending:
                stream.submit(i, pending[i])
        if on_step:
            on_step(answered, sum(r is not None for r in results))
    return results  # type: ignore[return-value]


def resolve_scheduler(choice: str, backend: object) -> Literal["lockstep", "async"]:
    """`auto` is `async` for a server backend (one that answers sample by sample: openai) and `lockstep` for the
    in-process ones (hf, vllm, fake), whose own batching is what makes them fast."""
    if choice in ("lockstep", "async"):
        return choice  # type: ignore[return-value]
    from harness.core.concurrent import server_backend

    return "async" if server_backend(backend) else "lockstep"  # type: ignore[arg-type]


def _advance(gens, i, answers, pending, results) -> None:
    try:
        requests = next(gens[i]) if answers is None else gens[i].send(answers)
        while not requests:  # a step that needs nothing (all judged before) goes straight on
            requests = gens[i].send([])
        pending[i] = requests
    except StopIteration as stop:
        pending.pop(i, None)
        results[i] = stop.value
