#!/usr/bin/env bash
# Starts the real vouchd on an ephemeral port, runs python_client_test.py (and the example CLI)
# against it over the wire, then stops vouchd with SIGTERM and checks that it drains and exits 0.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/client/python/python_env.sh"

source "${TEST_SRCDIR}/vouch/tests/testing/vouchd.sh"

start_vouchd --accounts=1000
echo "vouchd (pid ${vouchd_pid}) is on port ${port}"

"${PYTHON}" "${RUNFILES}/tests/client/python/python_client_test.py" --port="${port}" \
  || fail "python_client_test.py failed"
# The example in the README must keep working too.
"${PYTHON}" "${RUNFILES}/client/python/submit_example.py" --port="${port}" --count=3 \
  || fail "submit_example.py failed"

stop_vouchd
echo "--- vouchd log (last 10 lines) ---"
tail -n 10 "${vouchd_log}"
echo "PASS: vouchd served the Python client and exited 0 on SIGTERM"
