"""Tree-search speed (measure, do not assert): the same search on the same roots and backend, batched (every
pending expansion and judgment of every tree in one backend call per step) against node-at-a-time (one request per
call, tree after tree, as the official code calls its server). Each mode starts from an empty generation cache.

Prints both wall times, the speed ratio, both throughputs (completion tokens/s) and the batched run's share of the
generator's peak batched throughput (one full batch of judge requests, measured in the same process).

    python benchmarks/tree_search_speed.py [--model smollm2-135m-instruct] [--roots 6] [--max-new-tokens 48]

With sampling, the hf backend's batches change its random draws, so the two modes build different (equally valid)
trees; the throughput ratio is the like-for-like figure, the wall ratio the user-facing one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluators.judging import judge_messages  # noqa: E402
from harness.core.cache import GenerationCache  # noqa: E402
from harness.core.generation import cached_generate  # noqa: E402
from harness.core.spec import ModelSpec  # noqa: E402
from harness.core.types import ChatRequest, Message, SamplingParams  # noqa: E402
from training.sources import load_prompts  # noqa: E402
from training.tree_search import Root, SearchConfig, run_batched, run_sequential, search  # noqa: E402

CRITIQUE = ("Step-by-step verification: the Output does not meet every constraint of the Prompt.\n"
            "Final Judgement (if the Output accurately follows the Prompt): No")


def timed_search(driver, backend, roots, cfg, cache_path: Path) -> tuple[float, int, int]:
    cache = GenerationCache(cache_path)
    tokens, calls = [0], [0]

    def generate(requests):
        comps, _ = cached_generate(backend, requests, cache)
        tokens[0] += sum(c.completion_tokens for row in comps for c in row)
        calls[0] += 1
        return comps

    start = time.perf_counter()
    driver([search(r, cfg) for r in roots], generate)
    elapsed = time.perf_counter() - start
    cache.close()
    return elapsed, tokens[0], calls[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--backend", default="hf")
    ap.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    ap.add_argument("--roots", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--votes", type=int, default=3)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    backend = ModelSpec(name=args.model, backend=args.backend, base_url=args.base_url,
                        batch_size=args.batch_size).open()
    prompts, _ = load_prompts("builtin")
    prompts = prompts[: args.roots]
    sampling = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=args.max_new_tokens)
    answers = backend.generate([ChatRequest((Message("user", p),), replace(sampling, temperature=0.0))
                                for _, p in prompts])
    roots = [Root(k, p, a[0].text, CRITIQUE) for (k, p), a in zip(prompts, answers)]
    cfg = SearchConfig(votes=args.votes, max_depth=args.depth, judge_sampling=sampling, refine_sampling=sampling)

    # peak: one full batch of judge requests (n = votes each)
    peak_requests = [ChatRequest(judge_messages(r.prompt, r.response), sampling, seed=i, n=args.votes)
                     for i, r in enumerate((roots * args.batch_size)[: args.batch_size])]
    start = time.perf_counter()
    peak_out = backend.generate(peak_requests)
    peak_tps = sum(c.completion_tokens for row in peak_out for c in row) / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        b_s, b_tok, b_calls = timed_search(run_batched, backend, roots, cfg, Path(tmp) / "batched.sqlite")
        s_s, s_tok, s_calls = timed_search(run_sequential, backend, roots, cfg, Path(tmp) / "sequential.sqlite")
    print(f"model {args.model} ({args.backend}), {len(roots)} trees, BFS depth {args.depth}, branch 3, "
          f"{args.votes} votes, {args.max_new_tokens} new tokens, batch {args.batch_size}")
    print(f"batched:    {b_s:8.1f} s  {b_calls:4d} steps  {b_tok:7d} tokens  {b_tok / b_s:8.1f} tok/s")
    print(f"sequential: {s_s:8.1f} s  {s_calls:4d} calls  {s_tok:7d} tokens  {s_tok / s_s:8.1f} tok/s")
    print(f"speed ratio (wall, sequential / batched): {s_s / b_s:.2f}x")
    print(f"throughput ratio (tok/s, batched / sequential): {(b_tok / b_s) / (s_tok / s_s):.2f}x")
    print(f"generator peak batched throughput: {peak_tps:.1f} tok/s; batched search reaches "
          f"{100 * (b_tok / b_s) / peak_tps:.0f}% of it")
    backend.close()


if __name__ == "__main__":
    main()
