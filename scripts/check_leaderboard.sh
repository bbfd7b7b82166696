#!/usr/bin/env bash
# Regenerate the embedded leaderboard from scratch (always its own empty augmentation cache)
# and fail if one number differs from the committed benchmarks/leaderboards/embedded.{md,csv}
# or if a committed row of benchmarks/results/embedded-5w1s.jsonl does not reproduce (means,
# CIs, per-episode accuracies, episode-list hash, generation counts). Used by CI.
#   scripts/check_leaderboard.sh [--update]   # --update rewrites the committed files instead
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GENIE_BIN:-.venv/bin/genie}
# Pin the CPU kernels so that the committed figures reproduce across x86 machines: a run on an
# AVX2-only EPYC (CI's machine as of 2026-12) gave genie_ada 68.03 where the committed figures,
# made on another CPU, said 68.00 — one query of 4000 flipped by a different rounding. ATen,
# oneDNN and MKL each pick kernels by the instruction set found; these cap all three at AVX2
# (MKL_CBWR: MKL's conditional numerical reproducibility). No effect on other architectures.
# One thread as well: a reduction split across threads can round differently.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ "$(uname -m)" = x86_64 ]; then
  export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
# own empty cache: a warm GENIE_CACHE_DIR would turn generation counts into cache hits
GENIE_CACHE_DIR="$tmp/genie-cache" "$bin" bench run embedded-5w1s \
  --out "$tmp/embedded-5w1s.jsonl" --cache "$tmp/bench-cache"
"$bin" bench leaderboard "$tmp/embedded-5w1s.jsonl" --out "$tmp/embedded.md" >/dev/null
echo "embedded benchmark: $(( $(date +%s) - start )) s"
if [ "${1:-}" = "--update" ]; then
  mkdir -p benchmarks/leaderboards benchmarks/results
  cp "$tmp/embedded.md" "$tmp/embedded.csv" "$tmp/embedded.png" benchmarks/leaderboards/
  cp "$tmp/embedded-5w1s.jsonl" benchmarks/results/
  echo "updated benchmarks/leaderboards/embedded.{md,csv,png} and benchmarks/results/embedded-5w1s.jsonl"
  exit 0
fi
diff -u benchmarks/leaderboards/embedded.md "$tmp/embedded.md"
diff -u benchmarks/leaderboards/embedded.csv "$tmp/embedded.csv"
"$bin" bench compare benchmarks/results/embedded-5w1s.jsonl "$tmp/embedded-5w1s.jsonl"
echo "leaderboard reproduced: benchmarks/leaderboards/embedded.md and .csv match"
