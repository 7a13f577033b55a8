#!/usr/bin/env bash
# Runs a benchmark binary once with a tiny time budget, so that benchmarks build and run in the
# default test suite and cannot rot. The figures themselves are not checked here.
set -euo pipefail
exec "$1" --benchmark_min_time=0.001 --benchmark_repetitions=1
