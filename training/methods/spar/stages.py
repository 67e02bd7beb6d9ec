"""SPaR's data-building stages (collect, search, data); each takes the driver's `IterationRun` and returns its
summary. Also used by the SPaR ablations (training/methods/spar_no_tree_search.py)."""

from __future__ import annotations

from dataclasses import asdict, replace

from harness.data import read_jsonl
from training.build_data import dpo_pairs, rft_records
from training.collect import CollectedPrompt, collect
from training.tree_search import Root, SearchResult, run_batched, run_sequential, search


def stage_collect(run) -> dict:
    """The actor samples, the refiner judges (majority vote), one negative per prompt: `collected.jsonl`."""
    o = run.options
    collected, stats = collect(run.prompts, replace(o.collect, seed=run.iteration_seed),
                               run.generate(run.actor, "actor samples"),
                               run.generate(run.refiner, "refiner judgments"))
    run.write_jsonl("collected.jsonl", [c.to_dict() for c in collected])
    return asdict(stats)


def collected(run) -> list[CollectedPrompt]:
    return [CollectedPrompt.from_dict(d) for d in read_jsonl(run.dir / "collected.jsonl")]


def roots(items: list[CollectedPrompt]) -> list[Root]:
    return [Root(f"{c.key}#{i}", c.prompt, c.responses[i].response, c.responses[i].critique or "")
            for c in items for i in c.negatives]


def stage_search(run) -> dict:
    """Tree-search refinement of every negative by the refiner: `searches.jsonl`."""
    o = run.options
    trees = roots(collected(run))
    scfg = replace(o.search, seed=run.iteration_seed)
    driver = run_batched if o.search_driver == "batched" else run_sequential
    generate = run.counting(run.refiner, "tree search")
    with run.reporter.stage(f"iter {run.t} tree search ({len(trees)} trees)", len(trees)) as advance:
        done = [0]

        def on_step(_requests: int, finished: int) -> None:
            advance(finished - done[0])
            done[0] = finished

        results = driver([search(root, scfg) for root in trees], generate, on_step)
    run.write_jsonl("searches.jsonl", [r.to_dict() for r in results])
    passed = sum(r.passed for r in results)
    return {"searches": len(results), "passed": passed, "failed": len(results) - passed,
            "refinements": sum(r.refinements for r in results),
            "refine_failures": sum(r.refine_failures for r in results),
            "dropped_ties": sum(r.dropped_ties for r in results),
            "unparseable_judgments": sum(r.invalid_judgments for r in results),
            "driver": o.search_driver}


def stage_data(run) -> dict:
    """DPO pairs (passed node > root negative) and the refiner's RFT records: `data/dpo.jsonl`, `data/rft.jsonl`."""
    items = collected(run)
    results = [SearchResult.from_dict(d) for d in read_jsonl(run.dir / "searches.jsonl")]
    pairs = dpo_pairs(results, {r.key: r.response for r in roots(items)})
    records, counts = rft_records(items, results, replace(run.options.data, seed=run.iteration_seed))
    run.write_training_data("dpo", pairs)
    run.write_training_data("rft", records)
    return {"dpo_pairs": len(pairs), "rft_records": len(records), "rft_by_source": counts}
