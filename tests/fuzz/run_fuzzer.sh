#!/usr/bin/env bash
# The test of one fuzz target: run_fuzzer.sh <fuzz binary> <seed corpus dir> [dictionary].
# Built with --config=fuzz, the binary is a libFuzzer target: it fuzzes for FUZZ_SECONDS (20)
# starting from the seed corpus, and fails on the first crash, sanitizer report, leak, timeout
# or oversized allocation; the input that did it is saved under the test's undeclared outputs
# (bazel-testlogs/.../test.outputs). Built with the default config, the binary is the
# standalone driver, which replays the seed corpus once and ignores the libFuzzer flags.
set -euo pipefail
binary="$1"
corpus="$2"
dictionary="${3:-}"
seconds="${FUZZ_SECONDS:-20}"
outputs="${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-/tmp}}"
new_inputs="${TEST_TMPDIR:-/tmp}/new_inputs"  # libFuzzer adds what it finds to its first dir.
mkdir -p "$new_inputs"
flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512
       -print_final_stats=1 -artifact_prefix="$outputs/")
if [ -n "$dictionary" ]; then flags+=(-dict="$dictionary"); fi
exec "$binary" "${flags[@]}" "$new_inputs" "$corpus"
