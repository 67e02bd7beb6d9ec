"""The refinement trees of `spar view` as plain data: per self-play iteration, each search of `searches.jsonl`
(nodes nested under their parents, with responses, critiques, values and votes; the final node) and the DPO pair
of `data/dpo.jsonl` made from it, with why a pair was or was not made; iterations without searches list their
pairs."""

from __future__ import annotations

import json
from typing import Any

from evaluators.views import FAIL, PASS
from harness.reports.view.gather import Iteration, Summary, ViewOptions, clip, facets_json, snippet
from harness.reports.view.samples import STATUS_FACET, filter_bar

COUNTERS = ("refinements", "dropped_ties", "refine_failures", "invalid_judgments", "refine_requests", "judge_requests")


def pair_text(messages: Any) -> str:
    """The last message's text of a DPO pair's prompt, chosen or rejected side."""
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return str(messages[-1].get("content", ""))
    return messages if isinstance(messages, str) else json.dumps(messages, ensure_ascii=False)


def node_data(node: dict, classes: list[str], badges: list[dict], gate: float, limit: int, uid: str) -> dict:
    """One node: value (against the gate), the refiner's votes, badges, response, critique and refiner reply."""
    value = node.get("value")
    value = float(value) if isinstance(value, (int, float)) else None
    status = "na" if value is None else "pass" if value > gate else "fail"
    tally = [node.get(k) or 0 for k in ("yes", "no", "invalid")]
    root = node.get("parent") is None
    votes = (f"yes {tally[0]} · no {tally[1]} · invalid {tally[2]} (refiner's judgments)" if any(tally) else
             "the actor's response that the refiner judged not to follow (the search's root; value 0 by convention)"
             if root else "no judgments recorded")
    critique = None
    if node.get("critique"):
        what = "the judgment that made it a negative" if root else "critique (a judgment agreeing with the majority)"
        critique = {"what": what, "text": clip(str(node["critique"]), limit)}
    return {"uid": uid, "classes": " ".join(classes), "status": status, "id": node.get("id"),
            "depth": node.get("depth"), "value_text": "no value" if value is None else f"value {value:.2f}",
            "width": 0 if value is None else max(0, min(100, round(100 * value))), "votes": votes, "badges": badges,
            "response": clip(str(node.get("response") or ""), limit), "critique": critique,
            "refine_cot": clip(str(node["refine_cot"]), limit) if node.get("refine_cot") else None, "children": []}


def _pair_nodes(nodes: list[dict], by_id: dict, root: dict | None, final: Any, pair: dict | None) -> tuple[Any, Any]:
    """The ids of the nodes whose responses are the pair's chosen and rejected texts (None when not in the tree)."""
    if pair is None:
        return None, None
    chosen_text, rejected_text = pair_text(pair.get("chosen")), pair_text(pair.get("rejected"))
    chosen_id = final if final in by_id and by_id[final].get("response") == chosen_text else next(
        (n.get("id") for n in nodes if n.get("response") == chosen_text), None)
    rejected_id = root.get("id") if root and root.get("response") == rejected_text else next(
        (n.get("id") for n in nodes if n.get("response") == rejected_text), None)
    return chosen_id, rejected_id


def _why(tree: dict, pair: dict | None, has_pairs: bool, gate: float, ids: tuple[Any, Any], root: dict | None,
         by_id: dict) -> tuple[str, str]:
    """Why this search made a DPO pair or not, and the `pair` facet's value."""
    final = tree.get("final")
    final_node = by_id.get(final)
    if pair is not None:
        chosen_id, rejected_id = ids
        return (f"DPO pair made: chosen = node #{chosen_id if chosen_id is not None else '?'} (the search passed: "
                f"value above the gate {gate:g}), rejected = node #{rejected_id if rejected_id is not None else '?'} "
                "(the root: the actor's response judged not to follow the instruction).", "pair made")
    if not has_pairs:
        return "No data/dpo.jsonl in this iteration (the data stage has not run).", "no pair file"
    if not tree.get("passed"):
        best = f"node #{final}" + (f" (value {final_node['value']:.2f})" if final_node and
                                   isinstance(final_node.get("value"), (int, float)) else "")
        return (f"No DPO pair: the search did not pass (no node above the gate {gate:g}; the best is {best}).",
                "no pair: search failed")
    if final_node is not None and root is not None and final_node.get("response") == root.get("response"):
        return "No DPO pair: the final response equals the root's (no preference).", "no pair: same text"
    return "No DPO pair in data/dpo.jsonl for this search.", "no pair"


def _nest(tree: dict, nodes: list[dict], root: dict | None, pair: dict | None, ids: tuple[Any, Any], gate: float,
          limit: int, uid: str) -> tuple[dict | None, list[dict]]:
    """The root's node data with its descendants nested under `children` (a node met twice is an empty entry,
    None), and the nodes whose parent is not in the tree."""
    final, passed = tree.get("final"), bool(tree.get("passed"))
    children: dict[Any, list[dict]] = {}
    for n in nodes:
        if n is not root:
            children.setdefault(n.get("parent"), []).append(n)
    seen: set = set()

    def nest(node: dict) -> dict | None:
        nid = node.get("id")
        if nid in seen:
            return None
        seen.add(nid)
        classes, badges = [], []
        if node is root:
            classes.append("root")
            badges.append({"text": "root", "cls": "b-root"})
        if nid == final:
            classes.append("final")
            badges.append({"text": "final" + (" · passed" if passed else " · best, failed"), "cls": "b-final"})
        if pair is not None and nid == ids[0]:
            classes.append("chosen")
            badges.append({"text": "DPO chosen", "cls": "b-chosen"})
        if pair is not None and nid == ids[1]:
            classes.append("rejected")
            badges.append({"text": "DPO rejected", "cls": "b-rejected"})
        data = node_data(node, classes, badges, gate, limit, f"{uid}-n{nid}")
        data["children"] = [nest(c) for c in children.get(nid, [])]
        return data

    top = nest(root) if root else None
    orphans = [node_data(n, ["orphan"], [], gate, limit, f"{uid}-n{n.get('id')}") for n in nodes
               if n.get("id") not in seen]
    return top, orphans


def tree_data(tree: dict, pair: dict | None, has_pairs: bool, gate: float, limit: int, uid: str) -> dict:
    """One search as a filterable item: head (key, outcome, pair), why, instruction, counters, nodes, and the pair's
    texts when they are not nodes of the tree."""
    nodes = [n for n in tree.get("nodes") or [] if isinstance(n, dict)]
    by_id = {n.get("id"): n for n in nodes}
    passed = bool(tree.get("passed"))
    root = next((n for n in nodes if n.get("parent") is None), nodes[0] if nodes else None)
    ids = _pair_nodes(nodes, by_id, root, tree.get("final"), pair)
    why, pair_facet = _why(tree, pair, has_pairs, gate, ids, root, by_id)
    top, orphans = _nest(tree, nodes, root, pair, ids, gate, limit, uid)
    depth = max((int(n.get("depth") or 0) for n in nodes), default=0)
    counters = ", ".join(f"{k.replace('_', ' ')} {tree[k]}" for k in COUNTERS if isinstance(tree.get(k), int))
    facets = {STATUS_FACET: ["passed" if passed else "failed"], "pair": [pair_facet], "depth": [f"depth {depth}"],
              "nodes": [f"{len(nodes)} nodes"]}
    pair_texts = None
    if pair is not None and (ids[0] is None or ids[1] is None):
        pair_texts = {"chosen": clip(pair_text(pair.get("chosen")), limit),
                      "rejected": clip(pair_text(pair.get("rejected")), limit)}
    return {"uid": uid, "status": PASS if passed else FAIL, "facets": facets, "facets_json": facets_json(facets),
            "key": tree.get("key", ""), "passed": passed, "pair_facet": pair_facet, "pair_made": pair is not None,
            "n_nodes": len(nodes), "depth": depth, "snippet": snippet(tree.get("prompt")), "why": why,
            "prompt": clip(str(tree.get("prompt") or ""), limit), "counters": counters, "root": top,
            "orphans": orphans, "pair_texts": pair_texts}


def _trees_of(it: Iteration, pairs: dict[str, dict], opts: ViewOptions, uid: str, summary: Summary) -> dict:
    searches = it.searches or []
    shown = searches[: opts.max_trees]
    left = len(searches) - len(shown)
    summary.trees_shown += len(shown)
    summary.trees_left_out += left
    gate = it.end_gate
    trees = [tree_data(tree, pairs.get(str(tree.get("key"))), it.pairs is not None, gate, opts.max_chars,
                       f"{uid}-t{k}") for k, tree in enumerate(shown)]
    facets = [(STATUS_FACET, "search"), ("pair", "DPO pair"), ("depth", "deepest level"), ("nodes", "size")]
    passed = sum(bool(t.get("passed")) for t in searches)
    return {"kind": "trees", "filters": filter_bar(facets, [t["facets"] for t in trees], len(shown)), "trees": trees,
            "left_out": (f"{left} more of {len(searches)} trees not shown (the first {len(shown)} are; raise the cap "
                         f"with --max-trees {len(searches)})") if left else "",
            "meta": (f"{len(searches)} trees · {passed} passed · "
                     f"{len(it.pairs) if it.pairs is not None else 'no'} DPO pairs")}


def _pairs_of(it: Iteration, opts: ViewOptions, uid: str) -> dict:
    all_pairs = it.pairs or []
    shown = all_pairs[: opts.max_trees]
    rows = []
    for k, pair in enumerate(shown):
        prompt = pair_text(pair.get("prompt"))
        rows.append({"uid": f"{uid}-p{k}", "key": pair.get("key", k), "snippet": snippet(prompt),
                     "prompt": clip(prompt, opts.max_chars),
                     "chosen": clip(pair_text(pair.get("chosen")), opts.max_chars),
                     "rejected": clip(pair_text(pair.get("rejected")), opts.max_chars)})
    left = len(all_pairs) - len(shown)
    return {"kind": "pairs", "filters": filter_bar([], [{} for _ in shown], len(shown)), "pairs": rows,
            "left_out": (f"{left} more of {len(all_pairs)} pairs not shown (--max-trees {len(all_pairs)})"
                         if left else ""),
            "meta": f"no searches.jsonl · {len(all_pairs)} DPO pairs"}


def iteration_block(it: Iteration, opts: ViewOptions, uid: str, summary: Summary) -> dict:
    """One iteration's browser: its trees (or, without searches, its pairs), with filters and what was left out."""
    base = {"uid": uid, "label": it.label, "notes": list(it.notes)}
    if it.searches is not None:
        pairs = {str(p.get("key")): p for p in it.pairs or [] if isinstance(p, dict)}
        return dict(base, **_trees_of(it, pairs, opts, uid, summary))
    if it.pairs is not None:
        return dict(base, **_pairs_of(it, opts, uid))
    return dict(base, kind="none", meta="no searches")
