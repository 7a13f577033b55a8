#!/usr/bin/env bash
# vouch-load against the real vouchd: a short run must confirm transactions, get an Outcome for
# every one of them and exit 0; a short isolation check must report both phases and a ratio;
# a bad flag must exit 2. Then vouchd must stop gracefully (exit 0) on SIGTERM.
#
# Method: vouchd runs as a child process on an ephemeral port; the checks read vouch-load's JSON
# report with Debian's /usr/bin/python3 (the python3 on PATH may be another). Nothing here
# asserts a latency or a rate: the isolation ratio is reported, not judged.
set -euo pipefail

readonly RUNFILES="${TEST_SRCDIR}/vouch"
readonly PYTHON=/usr/bin/python3
readonly STARTUP_TIMEOUT_S=10
readonly SHUTDOWN_TIMEOUT_S=15  # vouchd drains outcomes (5 s) and flushes (2 s) at most.
readonly ACCOUNTS=1000

port_file="${TEST_TMPDIR}/port"
log="${TEST_TMPDIR}/vouchd.log"
rm -f "${port_file}"
"${RUNFILES}/tools/vouchd/vouchd" --port=0 --port_file="${port_file}" --accounts="${ACCOUNTS}" \
  >"${log}" 2>&1 &
vouchd_pid=$!
# Never leave a server behind, whatever fails below.
trap 'kill -KILL "${vouchd_pid}" 2>/dev/null || true' EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "--- vouchd log (last 40 lines) ---" >&2
  tail -n 40 "${log}" >&2
  exit 1
}

port=""
for _ in $(seq $((STARTUP_TIMEOUT_S * 10))); do
  kill -0 "${vouchd_pid}" 2>/dev/null || fail "vouchd exited before writing ${port_file}"
  if [[ -s "${port_file}" ]]; then
    port="$(tr -d '[:space:]' <"${port_file}")"
    port="${port##*:}"
    [[ "${port}" =~ ^[0-9]+$ ]] && break
    port=""
  fi
  sleep 0.1
done
[[ -n "${port}" ]] || fail "vouchd did not write a port to ${port_file} in ${STARTUP_TIMEOUT_S} s"

load() {
  "${RUNFILES}/tools/load/vouch-load" --port="${port}" --accounts="${ACCOUNTS}" "$@"
}

# 1. A plain run: every confirmed transaction got its Outcome.
json="${TEST_TMPDIR}/load.json"
load --rate=500 --duration_s=2 --json="${json}" || fail "vouch-load exited with $?"
"${PYTHON}" - "${json}" <<'PY' || fail "the report of the plain run is wrong"
import json, sys
report = json.load(open(sys.argv[1]))
phase = report["phases"][0]
assert report["confirmed"] > 0, report["confirmed"]
assert report["missing_outcomes"] == 0, report["missing_outcomes"]
assert report["errors"] == 0, phase["error_messages"]
assert report["passed"] is True
assert phase["sent"] == phase["scheduled"] == 1000, (phase["sent"], phase["scheduled"])
assert phase["answered"] == phase["sent"]
assert phase["outcomes"] == phase["confirmed"] + phase["held"]
counted = sum(sum(by_reason.values()) for by_reason in phase["confirm_counts"].values())
assert counted == phase["answered"], (counted, phase["answered"])
for key in ("confirm_from_intended", "confirm_from_send", "confirm_to_outcome"):
    latency = phase["latency_ns"][key]
    assert latency["count"] > 0 and 0 < latency["p50"] <= latency["p99"] <= latency["max"], latency
print("plain run:", phase["confirmed"], "confirmed,", phase["outcomes"], "outcomes")
PY

# 2. The isolation check: both phases reported, with a ratio; stdout carries the same JSON.
load --rate=300 --duration_s=1 --isolation_check --bad_peers=3 --format=json --quiet \
  >"${TEST_TMPDIR}/isolation.json" || fail "vouch-load --isolation_check exited with $?"
"${PYTHON}" - "${TEST_TMPDIR}/isolation.json" <<'PY' || fail "the isolation report is wrong"
import json, sys
report = json.load(open(sys.argv[1]))
names = [phase["name"] for phase in report["phases"]]
assert names == ["healthy", "with_bad_peers"], names
assert report["missing_outcomes"] == 0 and report["passed"] is True
isolation = report["isolation"]
assert isolation["bad_peers"] == 3 and isolation["ratio"] is not None, isolation
peers = report["phases"][1]["bad_peers"]
assert all(peers[kind]["connections"] >= 1 for kind in ("non_reader", "slowloris", "idle")), peers
print("isolation: ratio", isolation["ratio"])
PY

# 3. A bad flag exits 2.
status=0
load --rate=0 >/dev/null 2>&1 || status=$?
[[ "${status}" -eq 2 ]] || fail "a bad flag exited with ${status}, not 2"

kill -TERM "${vouchd_pid}"
for _ in $(seq $((SHUTDOWN_TIMEOUT_S * 10))); do
  kill -0 "${vouchd_pid}" 2>/dev/null || break
  sleep 0.1
done
kill -0 "${vouchd_pid}" 2>/dev/null && fail "vouchd still running ${SHUTDOWN_TIMEOUT_S} s after SIGTERM"
exit_code=0
wait "${vouchd_pid}" || exit_code=$?
[[ "${exit_code}" -eq 0 ]] || fail "vouchd exited with ${exit_code} after SIGTERM, not 0"
echo "PASS: vouch-load reported every outcome; vouchd exited 0 on SIGTERM"
