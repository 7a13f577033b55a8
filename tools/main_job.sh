#!/usr/bin/env bash
# The main job (`./vouch demo`): start vouchd with its embedded defaults, run vouch-load against it
# for a few seconds with a live progress line, print the results, shut the server down cleanly.
#
#   tools/main_job.sh [vouch-load flags]        e.g. --rate=100000 --duration_s=10
#   VOUCHD_FLAGS="--mode=hybrid" tools/main_job.sh
#
# Exits non-zero if the load saw a lost outcome or a protocol error, or the server did not exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."

bazel build //tools/vouchd //tools/load:vouch-load
workdir="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server"; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

# shellcheck disable=SC2086  # VOUCHD_FLAGS is a list of flags.
( exec ./bazel-bin/tools/vouchd/vouchd --port=0 --port_file="$workdir/port" \
    --event_log="$workdir/events.jsonl" ${VOUCHD_FLAGS:-} ) &
server=$!
for _ in $(seq 1 100); do
  [ -s "$workdir/port" ] && break
  kill -0 "$server" 2>/dev/null || { echo "main job: vouchd exited at start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$workdir/port" ] || { echo "main job: vouchd did not start listening within 10 s" >&2; exit 1; }

load_status=0
./bazel-bin/tools/load/vouch-load --port="$(cat "$workdir/port")" --duration_s=5 --rate=20000 "$@" ||
  load_status=$?

kill -TERM "$server"
server_status=0
wait "$server" || server_status=$?
server=""
if [ "$server_status" -ne 0 ]; then echo "main job: vouchd exited with $server_status" >&2; fi
echo "main job: the server's event log has $(grep -c '"late_failure"' "$workdir/events.jsonl" || true) late failures; the last:"
grep '"late_failure"' "$workdir/events.jsonl" | tail -n 2 || true
[ "$load_status" -eq 0 ] && [ "$server_status" -eq 0 ]
