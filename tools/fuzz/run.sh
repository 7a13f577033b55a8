#!/usr/bin/env bash
# Long fuzzing run of one target (docs/RELIABILITY.md "Fuzzing"):
#   tools/fuzz/run.sh <frame_decoder|message_handler|journal_recovery> [seconds=600] [jobs=2]
# Builds the target with --config=fuzz, fuzzes with `jobs` parallel workers from the committed
# seed corpus plus a working corpus kept across runs (/tmp/vouch-fuzz/<target>/corpus), then
# prints executions, exec/s and coverage per worker. With MERGE=1 it then merges into the seed
# corpus only the inputs that add coverage to it (review and commit them). Crashes are written to /tmp/vouch-fuzz/<target>/; add each one, once
# fixed, to tests/fuzz/corpus/<target>_fuzzer/ as regression-<what>.
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${1:?usage: tools/fuzz/run.sh <frame_decoder|message_handler|journal_recovery> [seconds] [jobs]}"
seconds="${2:-600}"
jobs="${3:-2}"
name="${target%_fuzzer}_fuzzer"
seeds="tests/fuzz/corpus/$name"
[ -d "$seeds" ] || { echo "run.sh: no target $target (no $seeds)" >&2; exit 2; }
work="/tmp/vouch-fuzz/${target%_fuzzer}"
mkdir -p "$work/corpus"

bazel build --config=fuzz "//tests/fuzz:$name"
binary="$(bazel info --config=fuzz bazel-bin)/tests/fuzz/$name"
dictionary=()
if [ -f "tests/fuzz/${target%_fuzzer}.dict" ]; then
  dictionary=(-dict="$PWD/tests/fuzz/${target%_fuzzer}.dict")
fi

# -jobs runs `jobs` workers, each logging to fuzz-<n>.log in $work; -max_total_time bounds each.
seeds_abs="$PWD/$seeds"
(cd "$work" && "$binary" -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
   -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
   -artifact_prefix="$work/" "${dictionary[@]}" "$work/corpus" "$seeds_abs") || true

echo "== $name: $seconds s x $jobs jobs"
for log in "$work"/fuzz-*.log; do
  grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec" "$log" || true
  grep -E "ERROR: |SUMMARY: |Test unit written" "$log" || true
done
if [ "${MERGE:-0}" = 1 ]; then
  "$binary" -merge=1 "$seeds" "$work/corpus" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
fi
ls "$work"/crash-* "$work"/timeout-* "$work"/oom-* 2>/dev/null && exit 1 || exit 0
