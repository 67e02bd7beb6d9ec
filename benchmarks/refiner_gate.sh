#!/usr/bin/env bash
# Refiner-accuracy regression gate: the embedded SmolLM2-135M-Instruct judges a fixed slice of LLMBar (the first 2
# pairs of each subset, both outputs of each pair: 20 pointwise judgments in one batch, greedy, 96 new tokens,
# lenient verdict parser), then `spar regress` compares its accuracy and F1 per subset (and the adversarial /
# overall means) with the committed baseline; exit 1 names each metric that dropped by more than the tolerance or
# below the baseline's 95% interval. The judge's 20 generations are committed beside the baseline
# (results/baselines/refiner-gate-cache.sqlite, copied to a temporary file first): the gate replays them in seconds
# and re-checks everything after generation (prompt rendering, cache keys, verdict parsing, voting, metrics); a
# change to the prompt, the model or the decoding misses the cache and regenerates (minutes on CPU).
#
#   benchmarks/refiner_gate.sh            # check (exit 0 ok, 1 regression, 2 usage error)
#   benchmarks/refiner_gate.sh --update   # rewrite the baseline from this run (after an intended change)
#
# Needs the LLMBar data: $SPAR_DATA_DIR (../shared/data); without it the gate says so and skips (exit 0), as the
# real-data tests do. Set SPAR_GATE_OUTPUT to keep the run folder (default: a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
BASELINE="${SPAR_GATE_BASELINE:-results/baselines/refiner-llmbar-smollm2.json}"
if [ -z "${SPAR_DATA_DIR:-}" ] || [ ! -d "${SPAR_DATA_DIR}/llmbar" ]; then
  echo "refiner gate skipped: SPAR_DATA_DIR does not point at the benchmark data (needs \$SPAR_DATA_DIR/llmbar)"
  exit 0
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" HF_DATASETS_OFFLINE="${HF_DATASETS_OFFLINE:-1}"
out="${SPAR_GATE_OUTPUT:-$(mktemp -d)/refiner-gate}"
mkdir -p "$(dirname "$out")"
start=$SECONDS
CACHE_SEED="results/baselines/refiner-gate-cache.sqlite"
cache="$(dirname "$out")/gate-cache.sqlite"
if [ -f "$CACHE_SEED" ]; then cp "$CACHE_SEED" "$cache"; fi
spar eval --benchmarks llmbar --model smollm2-135m-instruct --limit 2 --judge-max-new-tokens 96 --batch-size 20 \
  --judge-parser lenient --cache "$cache" --output "$out" > "$out.log" 2>&1 || { cat "$out.log"; exit 2; }
if [ "${1:-}" = "--update" ]; then cp "$cache" "$CACHE_SEED"; fi
echo "refiner gate: eval took $((SECONDS - start)) s ($out)"
spar regress "$out" --baseline "$BASELINE" "$@"
