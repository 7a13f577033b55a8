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
readonly ACCOUNTS=1000
source "${TEST_SRCDIR}/vouch/tests/testing/vouchd.sh"

start_vouchd --accounts="${ACCOUNTS}"

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

stop_vouchd
echo "PASS: vouch-load reported every outcome; vouchd exited 0 on SIGTERM"
