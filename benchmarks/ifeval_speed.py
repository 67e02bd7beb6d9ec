"""IFEval speed benchmarks (measure, do not assert):

1. scoring: `spar score ifeval` (harness.suite.runner.run_score) against lm-eval's own IFEval loop
   (`lm_eval.tasks.ifeval.utils.process_results` per response, then the four accuracies), on the same responses,
   in one process; prints both times and the ratio, and checks both give the same four accuracies (up to the two
   prompts where lm-eval draws a random letter).
2. caching: `spar eval` cold (empty generation cache) against the same command re-run (every sample cached).

    python benchmarks/ifeval_speed.py --data ../shared/data/ifeval/input_data.jsonl [--responses R.jsonl]

Without --responses, synthetic responses are made from the prompts (8 shapes, see tests/test_real_data.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluators.ifeval import METRICS, IFEvalEvaluator  # noqa: E402
from harness.suite.config import load_eval_config  # noqa: E402
from harness.suite.runner import run_eval, run_score  # noqa: E402


def synthetic_responses(rows: list[dict]) -> list[dict]:
    shapes = [lambda p: p, str.upper, lambda p: p.lower().replace(",", ""), lambda p: f"Sure!\n{p}\nThanks",
              lambda p: f"*{p}*\n\n***\n\n{p}", lambda p: json.dumps({"answer": p}), lambda p: f'"{p}"',
              lambda p: ""]
    return [{"prompt": r["prompt"], "response": shapes[i % len(shapes)](r["prompt"])} for i, r in enumerate(rows)]


def lm_eval_loop(rows_by_prompt: dict[str, dict], responses: list[dict]) -> dict:
    from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

    results = [process_results(rows_by_prompt[r["prompt"]], [r["response"]]) for r in responses]
    return {"prompt_level_strict_acc": statistics.mean(r["prompt_level_strict_acc"] for r in results),
            "inst_level_strict_acc": agg_inst_level_acc([r["inst_level_strict_acc"] for r in results]),
            "prompt_level_loose_acc": statistics.mean(r["prompt_level_loose_acc"] for r in results),
            "inst_level_loose_acc": agg_inst_level_acc([r["inst_level_loose_acc"] for r in results])}


def best_of(repeats: int, fn):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_scoring(data: str, responses_path: str | None, repeats: int) -> None:
    rows = [json.loads(line) for line in open(data, encoding="utf-8") if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        if responses_path is None:
            responses_path = os.path.join(tmp, "responses.jsonl")
            with open(responses_path, "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in synthetic_responses(rows))
        responses = [json.loads(line) for line in open(responses_path, encoding="utf-8") if line.strip()]
        by_prompt = {r["prompt"]: r for r in rows}
        IFEvalEvaluator().score_one(IFEvalEvaluator().load(data, limit=1).items[0], "warm up")  # NLTK, langdetect
        lm_eval_loop(by_prompt, responses[:5])
        t_ours, result = best_of(repeats, lambda: run_score("ifeval", responses_path, os.path.join(tmp, "out"),
                                                            load_eval_config(data=data)))
        t_theirs, theirs = best_of(repeats, lambda: lm_eval_loop(by_prompt, responses))
    ours = result.metrics["ifeval"]
    print(f"scoring {len(responses)} responses (best of {repeats}):")
    print(f"  spar score ifeval        {t_ours:8.3f} s  (load + match + score + write)")
    print(f"  lm-eval process_results  {t_theirs:8.3f} s  (score only)")
    print(f"  ratio lm-eval / spar     {t_theirs / t_ours:8.2f}x")
    for m in METRICS:
        print(f"  {m:24s} spar {ours[m]:.6f}  lm-eval {theirs[m]:.6f}")


def bench_cache(model: str, data: str, limit: int, max_new_tokens: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"model.name": model, "benchmarks": "ifeval", "data": data, "limit": limit,
               "max_new_tokens": max_new_tokens, "cache": os.path.join(tmp, "gen.sqlite")}
        t0 = time.perf_counter()
        cold = run_eval(load_eval_config(**cfg, output=os.path.join(tmp, "cold")))
        t1 = time.perf_counter()
        warm = run_eval(load_eval_config(**cfg, output=os.path.join(tmp, "warm")))
        t2 = time.perf_counter()
    assert cold.metrics == warm.metrics
    hits = warm.record["benchmarks"]["ifeval"]["generation_stats"]["cache_hits"]
    print(f"spar eval --model {model} --limit {limit} --max-new-tokens {max_new_tokens}:")
    print(f"  cold (empty cache)       {t1 - t0:8.3f} s")
    print(f"  re-run (all {hits} cached) {t2 - t1:8.3f} s")
    print(f"  ratio cold / cached      {(t1 - t0) / (t2 - t1):8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.path.join(os.environ.get("SPAR_DATA_DIR", "../shared/data"), "ifeval", "input_data.jsonl")
    parser.add_argument("--data", default=default_data, help="IFEval input_data.jsonl")
    parser.add_argument("--responses", default=None, help="JSONL of prompt/response (default: synthetic)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model for the cache benchmark")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--skip-cache", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bench_scoring(args.data, args.responses, args.repeats)
    if not args.skip_cache:
        bench_cache(args.model, args.data, args.limit, args.max_new_tokens)


if __name__ == "__main__":
    main()
