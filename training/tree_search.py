"""Tree-search refinement (SPaR §1.3b), BFS and DFS, written once and driven either batched or node-at-a-time.

Each search is a generator: it yields the chat requests it needs next (refinements of nodes, judgments of new
responses) and receives their completions. `run_batched` advances every tree together and sends all their pending
requests to the backend as one batch per step; `run_sequential` answers one request at a time, tree after tree (how
the official code calls its server). Request seeds depend only on a request's place in its tree (tree seed, node,
child, attempt) or, for judgments, on the judged text, never on batch order. So with a backend whose answer is a
function of the request and its seed, both drivers build identical trees.

Reference semantics (thu-coai/SPaR `src/ToT`): a node's value is the Yes fraction of `votes` judgments; a tie
(#Yes = #No, including no valid judgment) is re-judged up to `tie_retries` times, then the node is dropped; an
unparseable refinement is re-asked up to `refine_retries` times. BFS expands the whole frontier `branch` times per
level, stops after a level whose best child has value > `end_gate`, else keeps the best `select_branch`. DFS expands
one node `branch` times, returns when the best child passes, else recurses into the best `select_branch` children in
order. `budget` caps the refinements produced (15 = BFS with 3/2/3; DFS needs it to stay at 15 instead of 21).
Failure returns the best node anywhere, marked not passed (it makes no training pair).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Callable, Generator, Iterable, Sequence

from evaluators.judging import get_parser, get_refine_parser, judge_messages, majority_vote, refine_messages
from harness.backends.base import derive_seed
from harness.errors import SparError
from harness.types import ChatRequest, Completion, SamplingParams

Requests = list[ChatRequest]
Answers = list[list[Completion]]
Search = Generator[Requests, Answers, "SearchResult"]
ALGORITHMS = ("bfs", "dfs")


@dataclass(frozen=True)
class SearchConfig:
    """Tree-search settings; defaults are the official driver's (BFS, 3/2/3, gate 0.5, 5 votes, budget 15)."""

    algorithm: str = "bfs"
    branch: int = 3
    select_branch: int = 2
    max_depth: int = 3
    budget: int = 15
    end_gate: float = 0.5
    votes: int = 5
    tie_retries: int = 3
    refine_retries: int = 3
    parser: str = "official"
    refine_parser: str = "official"  # official: [[start]] ... [[end]]; lenient: also 'Refined Output:' or the reply
    judge_sampling: SamplingParams = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=2048)
    refine_sampling: SamplingParams = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=3072)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise SparError(f"search.algorithm {self.algorithm!r}: choose from {', '.join(ALGORITHMS)}")
        for name in ("branch", "select_branch", "max_depth", "budget", "votes"):
            if getattr(self, name) < 1:
                raise SparError(f"search.{name} must be at least 1, got {getattr(self, name)}")


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
    refinements: int = 0  # refinements produced (what the budget counts)
    refine_failures: int = 0  # replies without a parseable [[start]] ... [[end]] after all retries
    dropped_ties: int = 0  # nodes dropped because their judgments stayed tied
    invalid_judgments: int = 0

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
    values: dict[str, Node] = field(default_factory=dict)  # judged response text -> its vote (the official cache)
    refinements: int = 0
    refine_failures: int = 0
    dropped_ties: int = 0
    invalid_judgments: int = 0

    def seed(self, *parts: object) -> int:
        return derive_seed(self.cfg.seed, self.root.key, *parts)

    def expand(self, parents: Sequence[Node], k: int) -> Generator[Requests, Answers, list[Node]]:
        """Ask for `k` refinements of each parent (all at once), re-asking unparseable ones; judge the new responses;
        return the children that got a value, in (parent, child) order."""
        cfg, parse_refinement = self.cfg, get_refine_parser(self.cfg.refine_parser)
        slots = [(p, c) for p in parents for c in range(k)][: max(0, cfg.budget - self.refinements)]
        got: dict[tuple[int, int], tuple[str, str]] = {}
        todo = list(slots)
        for attempt in range(cfg.refine_retries + 1):
            if not todo:
                break
            requests = [ChatRequest(refine_messages(self.root.prompt, p.response, p.critique or ""),
                                    cfg.refine_sampling, seed=self.seed("refine", p.id, c, attempt))
                        for p, c in todo]
            answers = yield requests
            retry = []
            for (p, c), comps in zip(todo, answers):
                refined = parse_refinement(comps[0].text)
                if refined is None:
                    retry.append((p, c))
                else:
                    got[(p.id, c)] = (refined, comps[0].text)
            todo = retry
        self.refine_failures += len(todo)
        self.refinements += len(got)
        made = [(p, got[(p.id, c)]) for p, c in slots if (p.id, c) in got]
        votes = yield from self.judge([text for _, (text, _) in made])
        children = []
        for (parent, (text, cot)), vote in zip(made, votes):
            if vote is None:
                self.dropped_ties += 1
                continue
            node = Node(len(self.nodes), parent.id, parent.depth + 1, text, vote.critique, vote.value,
                        vote.yes, vote.no, vote.invalid, cot)
            self.nodes.append(node)
            children.append(node)
        return children

    def judge(self, texts: Sequence[str]) -> Generator[Requests, Answers, list]:
        """Votes for `texts` (None where the tie never broke); texts judged before in this tree are not re-asked."""
        cfg, parser = self.cfg, get_parser(self.cfg.parser)
        result: dict[str, object] = {t: self.values[t] for t in texts if t in self.values}
        todo = list(dict.fromkeys(t for t in texts if t not in result))
        for attempt in range(cfg.tie_retries + 1):
            if not todo:
                break
            requests = [ChatRequest(judge_messages(self.root.prompt, t), cfg.judge_sampling, n=cfg.votes,
                                    seed=self.seed("judge", _text_id(t), attempt)) for t in todo]
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
        for text in todo:
            result[text] = None
        return [result[t] for t in texts]

    def result(self, passed_node: Node | None) -> SearchResult:
        if passed_node is not None:
            final, passed = passed_node, True
        else:
            candidates = self.nodes[1:] or self.nodes
            final = max(candidates, key=lambda n: (n.value or 0.0, -n.id))
            passed = False
        return SearchResult(self.root.key, self.root.prompt, self.nodes, final.id, passed, self.refinements,
                            self.refine_failures, self.dropped_ties, self.invalid_judgments)


def _best(nodes: Sequence[Node], k: int) -> list[Node]:
    return sorted(nodes, key=lambda n: (-(n.value or 0.0), n.id))[:k]


def _bfs(tree: _Tree) -> Search:
    cfg = tree.cfg
    frontier = [tree.nodes[0]]
    for _ in range(cfg.max_depth):
        if not frontier or tree.refinements >= cfg.budget:
            break
        children = yield from tree.expand(frontier, cfg.branch)
        if not children:
            break
        best = _best(children, 1)[0]
        if (best.value or 0.0) > cfg.end_gate:
            return tree.result(best)
        frontier = _best(children, min(cfg.select_branch, cfg.branch))
    return tree.result(None)


def _dfs(tree: _Tree) -> Search:
    cfg = tree.cfg

    def visit(node: Node) -> Generator[Requests, Answers, Node | None]:
        if node.depth >= cfg.max_depth or tree.refinements >= cfg.budget:
            return None
        children = yield from tree.expand([node], cfg.branch)
        if not children:
            return None
        best = _best(children, 1)[0]
        if (best.value or 0.0) > cfg.end_gate:
            return best
        for child in _best(children, min(cfg.select_branch, cfg.branch)):
            found = yield from visit(child)
            if found is not None:
                return found
        return None

    found = yield from visit(tree.nodes[0])
    return tree.result(found)


def search(root: Root, cfg: SearchConfig) -> Search:
    """One tree search as a generator of request batches; its return value is the SearchResult."""
    tree = _Tree(root, cfg)
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


def _advance(gens, i, answers, pending, results) -> None:
    try:
        requests = next(gens[i]) if answers is None else gens[i].send(answers)
        while not requests:  # a step that needs nothing (all judged before) goes straight on
            requests = gens[i].send([])
        pending[i] = requests
    except StopIteration as stop:
        pending.pop(i, None)
        results[i] = stop.value
