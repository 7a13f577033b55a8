#!/usr/bin/env bash
# vouch-pingpong against a real vouchd (with busy polling on, as the figure in the README is
# taken): both phases run, the JSON has both rows and the ratio. Nothing about timing is asserted.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/testing/vouchd.sh"
start_vouchd --accounts=1000 --busy_poll_us=100
json="${TEST_TMPDIR}/pingpong.json"
"${TEST_SRCDIR}/vouch/tools/pingpong/vouch-pingpong" --port="${port}" --round_trips=500 \
  --json="${json}" || fail "vouch-pingpong exited with $?"
/usr/bin/python3 - "${json}" <<'PY' || fail "the report is wrong"
import json, sys
report = json.load(open(sys.argv[1]))
for row in ("raw_loopback_blocking", "raw_loopback_spinning", "vouch_confirm"):
    assert report[row]["count"] == 500, (row, report[row])
    assert 0 < report[row]["p50_ns"] <= report[row]["max_ns"], (row, report[row])
assert report["p50_ratio"] > 0
print("p50 ratio", report["p50_ratio"])
PY
stop_vouchd
echo "PASS"
