#!/usr/bin/env bash
# The performance suite in one command: microbenchmarks, the in-process harness (modes and the
# baseline design), vouchd under vouch-load over TCP, and the loopback ping-pong reference.
# Writes JSON inputs, report.json, report.md and latency plots (PNG) into the output directory.
#
#   tools/report/run_report.sh [OUT_DIR]          (default: report-out; ~3 minutes)
#   QUICK=1 tools/report/run_report.sh            (short steps, for a smoke run)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$(realpath -m "${1:-report-out}")"
mkdir -p "${out}"
./tools/setup.sh python3-matplotlib
bazel build -c opt //bench/... //tools/perf:vouch-bench //tools/vouchd //tools/load:vouch-load \
  //tools/pingpong:vouch-pingpong //tools/demo
bin=bazel-out/k8-opt/bin
if [ -n "${QUICK:-}" ]; then
  min_time=0.01; steps="--rates=100000,500000 --duration_s=0.5"; load_s=1
  tcp_rates="100000 300000"
else
  min_time=0.5; steps="--duration_s=2"; load_s=5
  tcp_rates="50000 150000 300000 500000"
fi

echo "report: microbenchmarks" >&2
for binary in $(find "${bin}/bench" -maxdepth 4 -type f -perm -u+x -name '*_benchmark'); do
  name="$(basename "${binary}")"
  "${binary}" --benchmark_min_time="${min_time}" --benchmark_format=json \
    --benchmark_out="${out}/micro_${name}.json" --benchmark_out_format=json >/dev/null 2>&1 ||
    echo "report: ${name} failed" >&2
done

echo "report: in-process harness" >&2
# shellcheck disable=SC2086
"${bin}/tools/perf/vouch-bench" ${steps} --json="${out}/harness.json" >"${out}/harness.txt" ||
  echo "report: vouch-bench reported a failure (see harness.txt)" >&2

echo "report: TCP load and ping-pong" >&2
rm -f "${out}/port"
( exec "${bin}/tools/vouchd/vouchd" --port=0 --port_file="${out}/port" --busy_poll_us=200 \
    >"${out}/vouchd.log" 2>&1 ) &
server=$!
trap 'kill -KILL "${server}" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "${out}/port" ] && break; sleep 0.1; done
port="$(cat "${out}/port")"
"${bin}/tools/pingpong/vouch-pingpong" --port="${port}" --round_trips=20000 \
  --json="${out}/pingpong.json" >"${out}/pingpong.txt" || true
# Stepped open-loop rates over TCP, 4 connections, batches of 50 (one Submit frame per 50).
for rate in ${tcp_rates}; do
  "${bin}/tools/load/vouch-load" --port="${port}" --rate="${rate}" --batch=50 \
    --duration_s="${load_s}" --quiet --json="${out}/load_${rate}.json" >"${out}/load_${rate}.txt" || true
done
kill -TERM "${server}"
wait "${server}" || true

echo "report: demo timeline with a stalled fraud verifier" >&2
mkdir -p "${out}/plots"
"${bin}/tools/demo/demo" --duration_s=8 --timeline="${out}/timeline.json" >"${out}/demo.txt" 2>&1 &&
  /usr/bin/python3 tools/report/plot_timeline.py "${out}/timeline.json" "${out}/plots/timeline.png" ||
  echo "report: the demo timeline failed (see demo.txt)" >&2

/usr/bin/python3 tools/report/make_report.py "${out}"
