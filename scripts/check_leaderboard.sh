#!/usr/bin/env bash
# Regenerate the embedded leaderboard from scratch and fail if one number differs from the
# committed benchmarks/leaderboards/embedded.{md,csv}. Used by CI (README's test command).
#   scripts/check_leaderboard.sh [--update]   # --update rewrites the committed files instead
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GENIE_BIN:-.venv/bin/genie}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
"$bin" bench run benchmarks/scenarios/embedded-5w1s.json --out "$tmp/embedded-5w1s.jsonl" \
  --cache "${GENIE_CACHE_DIR:-$tmp}/bench-cache"
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
echo "leaderboard reproduced: benchmarks/leaderboards/embedded.md and .csv match"
