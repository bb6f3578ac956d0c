#!/bin/sh
# scripts/bench_rows.py as users call it (scripts/bench --rows / --compare): one cheap row with
# this build, a ratio row, a comparison of the build with itself (a ratio line), and bad arguments (exit 2).
# Times are not asserted: speed is judged from ratios measured on a quiet machine.
set -eu
build=$(dirname "$1")
repo=$2
rows="/usr/bin/python3 $repo/scripts/bench_rows.py --build $build"
out=$($rows --rows --only fast_8b_batch1_bytes --repeat 1)
echo "$out"
echo "$out" | grep -Eq '^fast_8b_batch1_bytes +[0-9.]+ +5\.000 +(met|not met) +TB/s$'
# A ratio row: two runs back to back, the first's wall time over the second's.
out=$($rows --rows --only every_rank_70b_tp8_vs_shortcut --repeat 1)
echo "$out"
echo "$out" | grep -Eq '^every_rank_70b_tp8_vs_shortcut +[0-9.]+ +3\.000 +(met|not met) +ratio$'
out=$($rows --compare "$build" --only decode_70b_tp8_256_steps --repeat 1 2>&1 || true)
echo "$out" | grep -Eq '^decode_70b_tp8_256_steps +[0-9.]+ +[0-9.]+ +[0-9.]+x +s$' || {
  echo "no ratio line: $out"; exit 1; }
set +e
$rows --rows --only no_such_row 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "unknown row: exit $rc, want 2"; exit 1; }
$rows --compare /nonexistent --only fast_8b_batch1_bytes 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "missing reference build: exit $rc, want 2"; exit 1; }
$rows --rows --repeat 0 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "--repeat 0: exit $rc, want 2"; exit 1; }
echo "bench_rows: ok"
