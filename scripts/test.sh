#!/usr/bin/env bash
# The project's checks after setup: the test suite and the embedded-leaderboard reproduction,
# run side by side, each on one thread. Why side by side: the models here are tiny, so torch
# gains nothing from a second thread (measured: a 5-episode GeNIe run takes 26.1 s on 2 threads,
# 26.6 s on 1), while two single-threaded jobs use both cores of a 2-core CI machine: CI's
# wall time becomes the longer job instead of their sum. Both run to the end; the script fails
# if either failed, after printing the leaderboard log.
#   scripts/test.sh [PYTEST_ARGS...]      (default: -q -m "not slow and not gpu")
set -uo pipefail
cd "$(dirname "$0")/.."
py=${GENIE_PYTHON:-.venv/bin/python}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
start=$(date +%s)
bash scripts/check_leaderboard.sh >"$log" 2>&1 &
board=$!
if [ $# -eq 0 ]; then set -- -q -m "not slow and not gpu"; fi
GENIE_FAIL_ON_SKIP=${GENIE_FAIL_ON_SKIP:-1} "$py" -m pytest "$@"
tests_rc=$?
echo "tests: exit $tests_rc after $(( $(date +%s) - start )) s; waiting for the leaderboard check"
wait "$board"
board_rc=$?
cat "$log"
echo "leaderboard check: exit $board_rc; both done after $(( $(date +%s) - start )) s"
[ "$tests_rc" -eq 0 ] && [ "$board_rc" -eq 0 ]
