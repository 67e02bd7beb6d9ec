"""Tree search against the official code's semantics (thu-coai/SPaR `src/ToT/*.py`, `src/models/get_response.py`):
refine unwrapping and its nested retries, tie re-judging, the budget, and the fallback node of a failed search."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.core.backends.fake import JUDGE_PREFIX, REFINE_MARK, FakeBackend, selfplay_reply
from tests.fakes import SelfPlayBackend
from harness.core.cache import GenerationCache
from harness.core.concurrent import CompletionStream
from training.tree_search import (Node, Root, SearchConfig, _Tree, run_async, run_batched, run_sequential, search,
                                  unwrap_refinement)

ROOT = Root("k0", "Write item 0 in bullet points.", "bad answer 0", "Final Judgement: No")


def _direct(backend):
    return lambda requests: backend.generate(requests)


def _is_judge(request) -> bool:
    return request.messages[-1].content.startswith(JUDGE_PREFIX)


def _is_refine(request) -> bool:
    return request.messages[-1].content.startswith(REFINE_MARK)


def _backend(reply) -> FakeBackend:
    """The scripted self-play model with some replies replaced: `reply(request, j, default) -> str`."""
    return FakeBackend(reply=lambda r, j: reply(r, j, selfplay_reply(r, j)))


@pytest.mark.parametrize("reply, expected", [
    ("Reflection: fix.\nFinal Refined Output: [[start]] new text [[end]]", "new text"),
    ("no markers at all", None),  # the official call raises: re-asked inside get_refine
    ("[[start]] [[start]] real text [[end]]", ""),  # empty: re-asked by the search loop, never accepted
    ("a [[start]] b [[start]] c [[end]]", "b"),  # a second [[start]] ends the refinement
    ("[[start]] x [[end]] tail [[start]] y [[end]]", "x"),
    ("[[start]] no end marker", "no end marker"),  # a missing [[end]] is accepted
    ("[[start]]   [[end]]", ""),
])
def test_unwrap_is_the_official_split(reply, expected):
    assert unwrap_refinement(reply) == expected


def test_official_defaults():
    cfg = SearchConfig()
    assert (cfg.algorithm, cfg.branch, cfg.select_branch, cfg.max_depth, cfg.budget, cfg.end_gate, cfg.votes) == \
        ("bfs", 3, 2, 3, 15, 0.5, 5)
    assert 1 + cfg.tie_retries == 3  # get_value: cnt = 3
    assert (1 + cfg.refine_retries) * (1 + cfg.refine_parse_retries) == 9  # BFS/DFS cnt = 3 x get_refine cnt = 3


def test_config_refuses_bad_values():
    from pydantic import ValidationError

    for bad in ({"algorithm": "mcts"}, {"branch": 0}, {"end_gate": 1.5}, {"tie_retries": -1},
                {"refine_parser": "strict"}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            SearchConfig(**bad)


def _refiner(reply):
    """Refine replies `reply(seed, refined_text)`; records them in `.refine_replies`."""
    replies = []

    def answer(r, j, default):
        if not _is_refine(r):
            return default
        text = reply(r.seed, f"{r.messages[0].content.split(chr(0x201c))[-1][:12]} +{r.seed % 97}")
        replies.append(text)
        return text

    backend = _backend(answer)
    backend.refine_replies = replies
    return backend


def test_a_double_start_reply_is_reasked_not_accepted():
    # about half the replies hold [[start]] twice in a row: the official unwrap gives "" and the loop asks again
    backend = _refiner(lambda seed, body: f"[[start]] [[start]] {body} [[end]]" if seed % 2 else
                       f"Final Refined Output: [[start]] {body} [[end]]")
    [res] = run_batched([search(ROOT, SearchConfig(votes=3, max_depth=1, refine_retries=10))], _direct(backend))
    doubled = sum(r.startswith("[[start]] [[start]]") for r in backend.refine_replies)
    assert doubled > 0 and res.refinements == 3 and res.refine_failures == 0
    assert res.refine_requests == 3 + doubled  # each doubled reply cost exactly one more request
    assert all("[[start]]" not in n.response for n in res.nodes)


def test_refine_retry_counts_are_the_official_ones():
    # empty unwraps are re-asked by the search loop only: 3 requests per child; replies without [[start]] are
    # re-asked 3 times inside each of the 3 get_refine calls: 9 per child
    [res] = run_batched([search(ROOT, SearchConfig(votes=3))], _direct(_refiner(lambda seed, body: "[[start]][[end]]")))
    assert res.refine_requests == 3 * 3 and res.refine_failures == 3 and len(res.nodes) == 1
    [res] = run_batched([search(ROOT, SearchConfig(votes=3))], _direct(_refiner(lambda seed, body: "no markers")))
    assert res.refine_requests == 3 * 9 and res.refine_failures == 3
    cfg = SearchConfig(votes=3, refine_retries=0, refine_parse_retries=1)
    [res] = run_batched([search(ROOT, cfg)], _direct(_refiner(lambda seed, body: "no markers")))
    assert res.refine_requests == 3 * 2


def test_each_tie_rejudging_attempt_is_a_new_request():
    seeds = []

    def tied(r, j, default):
        if _is_judge(r):
            seeds.append(r.seed) if j == 0 else None
            return "Final Judgement: " + ("Yes" if j % 2 else "No")
        return default

    [res] = run_batched([search(ROOT, SearchConfig(votes=2, max_depth=1, refine_retries=10))],
                        _direct(_backend(tied)))
    assert res.dropped_ties == 3 and res.judge_requests == 9
    assert len(set(seeds)) == 9  # 3 texts x 3 attempts, every one its own seed


def test_a_tied_text_met_again_is_judged_afresh():
    # the refiner writes the same text for every child; its first judging (3 attempts) ties, so the official code
    # drops the first child without caching the text and judges it again for the second child
    seeds = Counter()

    def same_text(r, j, default):
        if _is_judge(r):
            if j == 0:
                seeds[r.seed] += 1
            tie_phase = len(seeds) <= 3
            return "Final Judgement: " + ("Yes" if tie_phase and j % 2 else "No")
        if _is_refine(r):
            return "Final Refined Output: [[start]] the same text [[end]]"
        return default

    [res] = run_batched([search(ROOT, SearchConfig(votes=2, max_depth=1))], _direct(_backend(same_text)))
    assert res.dropped_ties == 1
    assert [n.response for n in res.nodes[1:]] == ["the same text"] * 2  # children 2 and 3: judged once, then cached
    assert len(seeds) == 4 and set(seeds.values()) == {1}  # 3 tied attempts + 1 fresh judging, all distinct


def test_budget_counts_kept_nodes_and_dfs_checks_it_after_each_sibling_set():
    # official DFS_sub never checks the budget on entry: with 10, the root, A and A1 take 9, A2 takes 1 (budget 0),
    # then the root's second child B still gets one node: 11
    zero = lambda marks: 0.0  # noqa: E731
    [res] = run_batched([search(ROOT, SearchConfig(algorithm="dfs", votes=3, budget=10, refine_retries=10))],
                        _direct(SelfPlayBackend(p_yes=zero)))
    assert len(res.nodes) - 1 == 11
    assert Counter(n.depth for n in res.nodes[1:]) == {1: 3, 2: 3 + 1, 3: 3 + 1}
    # BFS stops exactly at the budget
    [res] = run_batched([search(ROOT, SearchConfig(votes=3, budget=4, refine_retries=10))],
                        _direct(SelfPlayBackend(p_yes=zero)))
    assert len(res.nodes) - 1 == 4 and [n.depth for n in res.nodes[1:]] == [1, 1, 1, 2]


def test_failed_search_returns_the_last_best_node_in_preorder():
    # all values 0: getBestV's `>=` walks the tree in pre-order and keeps the last node, here the root's third child
    # (children 1..3, then 4..9 under 1 and 2, then 10..15 under 4 and 5)
    [res] = run_batched([search(ROOT, SearchConfig(votes=3, refine_retries=10))],
                        _direct(SelfPlayBackend(p_yes=lambda marks: 0.0)))
    assert not res.passed and len(res.nodes) == 16
    assert res.final == 3 and res.final_node.depth == 1

    tree = _Tree(ROOT, SearchConfig())
    values = {0: 0.0, 1: 0.4, 2: 0.2, 3: 0.1, 4: 0.4, 5: 0.0}  # 4 and 5 are children of 1
    parents = {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}
    tree.nodes = [Node(i, parents.get(i), 0 if i == 0 else 1 + (i > 3), f"r{i}", "c", v) for i, v in values.items()]
    assert tree.last_best().id == 4  # 1 and 4 share the top value; 4 comes later in pre-order
    tree.nodes[3].value = 0.4
    assert tree.last_best().id == 3  # pre-order 1, 4, 5, 2, 3: node 3 is the last with 0.4


@pytest.mark.parametrize("algorithm", ["bfs", "dfs"])
def test_drivers_agree_with_ties_duplicates_and_reasks(algorithm, tmp_path):
    def noisy(r, j, default):
        """Deterministic in (request, seed): ties, texts repeated across children, double [[start]] replies."""
        h = (r.seed // 7 + j) % 7
        if _is_judge(r) and h == 0:
            return "Final Judgement: " + ("Yes" if j % 2 else "No")
        if "[[start]]" in default and h == 1:
            return "[[start]] [[start]] oops [[end]]"
        if "[[start]]" in default and h == 2:
            return "Final Refined Output: [[start]] a shared text [[end]]"
        return default

    roots = [Root(f"k{i}", f"Write item {i}.", f"bad {i}", "Final Judgement: No") for i in range(6)]
    cfg = SearchConfig(algorithm=algorithm, votes=4, budget=12)
    batched = run_batched([search(r, cfg) for r in roots], _direct(_backend(noisy)))
    sequential = run_sequential([search(r, cfg) for r in roots], _direct(_backend(noisy)))
    assert [r.to_dict() for r in batched] == [r.to_dict() for r in sequential]
    with CompletionStream(_backend(noisy), GenerationCache(tmp_path / "c.sqlite"), max_in_flight=4) as stream:
        asynchronous = run_async([search(r, cfg) for r in roots], stream)  # each tree at its own pace
    assert [r.to_dict() for r in asynchronous] == [r.to_dict() for r in batched]
    assert sum(r.dropped_ties for r in batched) > 0
