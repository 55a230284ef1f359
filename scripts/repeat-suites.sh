#!/usr/bin/env bash
# Runs the Python suite and ctest side by side (each loads the machine for the other) N times in a
# row and prints one line per round with the load average: a flaky test shows up here before CI.
# Usage: scripts/repeat-suites.sh [ROUNDS] [BUILD_DIR]   (after scripts/test.sh or a release build
# and `pip install .`); exits 1 if any round failed. Logs go to $TMPDIR/foxml-repeat.
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
build=${2:-build/release}
logs=${TMPDIR:-/tmp}/foxml-repeat
mkdir -p "$logs"
failed=0
for i in $(seq 1 "$rounds"); do
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  python3 -m pytest tests/python -q -p no:cacheprovider >"$logs/py_$i.log" 2>&1 &
  py=$!
  ctest --test-dir "$build" -j "$(nproc)" >"$logs/ct_$i.log" 2>&1 &
  ct=$!
  wait $py; py_rc=$?
  wait $ct; ct_rc=$?
  ((py_rc || ct_rc)) && failed=1
  echo "round $i load [$load] pytest rc=$py_rc: $(tail -n 1 "$logs/py_$i.log") | ctest rc=$ct_rc: $(grep 'tests passed' "$logs/ct_$i.log")"
done
exit $failed
