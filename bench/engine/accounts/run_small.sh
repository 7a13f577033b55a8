#!/usr/bin/env bash
# Runs the N = 1,000 cases of the accounts benchmark once (the million-account ones take
# minutes; run them by hand, docs/BENCHMARKS.md).
set -euo pipefail
exec "$1" --benchmark_filter='/1000(/|$)' --benchmark_min_time=0.001 --benchmark_repetitions=1
