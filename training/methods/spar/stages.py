"""SPaR's data-building stages (collect, search, data); each takes the driver's `IterationRun` and returns its
summary. Also used by the SPaR ablations (training/methods/spar_no_tree_search.py)."""

from __future__ import annotations

from dataclasses import asdict, replace

from harness.core.data import read_jsonl
from training.build_data import dpo_pairs, rft_records
from training.collect import CollectedPrompt, collect
from training.tree_search import (Root, SearchResult, resolve_scheduler, run_async, run_batched, run_sequential,
                                  search)


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
    with run.reporter.stage(f"iter {run.t} tree search ({len(trees)} trees)", len(trees)) as advance:
        done = [0]

        def on_step(_requests: int, finished: int) -> None:
            advance(finished - done[0])
            done[0] = finished

        results, scheduling = _drive_search(run, [search(root, scfg) for root in trees], scfg.scheduler, on_step)
    run.write_jsonl("searches.jsonl", [r.to_dict() for r in results])
    passed = sum(r.passed for r in results)
    return {"searches": len(results), "passed": passed, "failed": len(results) - passed,
            "refinements": sum(r.refinements for r in results),
            "refine_failures": sum(r.refine_failures for r in results),
            "dropped_ties": sum(r.dropped_ties for r in results),
            "unparseable_judgments": sum(r.invalid_judgments for r in results),
            "driver": o.search_driver, **scheduling}


def _drive_search(run, searches: list, scheduler: str, on_step) -> tuple[list[SearchResult], dict]:
    """Run the searches with the configured driver; `search.scheduler` (auto: async for a server backend, else
    lockstep) is decided here, at stage start, and returned for the record with the in-flight limit of async."""
    if run.options.search_driver == "sequential":
        return run_sequential(searches, run.counting(run.refiner, "tree search"), on_step), {"scheduler": None}
    chosen = resolve_scheduler(scheduler, run.backend(run.refiner))
    if chosen == "lockstep":
        return run_batched(searches, run.counting(run.refiner, "tree search"), on_step), {"scheduler": chosen}
    with run.stream(run.refiner, "tree search") as stream:
        results = run_async(searches, stream, on_step)
    return results, {"scheduler": chosen, "max_in_flight": stream.max_in_flight,
                     "peak_in_flight": stream.peak_in_flight}


def stage_data(run) -> dict:
    """DPO pairs (passed node > root negative) and the refiner's RFT records: `data/dpo.jsonl`, `data/rft.jsonl`."""
    items = collected(run)
    results = [SearchResult.from_dict(d) for d in read_jsonl(run.dir / "searches.jsonl")]
    pairs = dpo_pairs(results, {r.key: r.response for r in roots(items)})
    records, counts = rft_records(items, results, replace(run.options.data, seed=run.iteration_seed))
    run.write_training_data("dpo", pairs)
    run.write_training_data("rft", records)
    return {"dpo_pairs": len(pairs), "rft_records": len(records), "rft_by_source": counts}
