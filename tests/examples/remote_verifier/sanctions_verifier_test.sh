#!/usr/bin/env bash
# The Python sanctions verifier against the real vouchd (see sanctions_verifier_test.py for the
# method and the four claims). Two servers in turn: a 3 s deadline, so that a killed verifier's
# transactions time out within the test; then a 20 s one, so that those submitted while the
# verifier is down wait for it to come back. Each must drain and exit 0 on SIGTERM.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/client/python/python_env.sh"
source "${TEST_SRCDIR}/vouch/tests/testing/vouchd.sh"

readonly VERIFIER="${RUNFILES}/examples/remote_verifier/sanctions_verifier.py"
readonly DRIVER="${RUNFILES}/tests/examples/remote_verifier/sanctions_verifier_test.py"

for phase in live restart; do
  deadline_ms=3000
  [[ "${phase}" == restart ]] && deadline_ms=20000
  start_vouchd --accounts=1000 --remote_verifiers=sanctions:required --deadline_ms="${deadline_ms}"
  echo "--- phase ${phase}: vouchd (pid ${vouchd_pid}, --deadline_ms=${deadline_ms}) on ${port}"
  "${PYTHON}" "${DRIVER}" --port="${port}" --phase="${phase}" --verifier="${VERIFIER}" \
    --log_dir="${TEST_TMPDIR}" || {
      for log in "${TEST_TMPDIR}"/verifier-*.log; do echo "--- ${log}"; cat "${log}"; done
      fail "phase ${phase} failed"
    }
  stop_vouchd
done
echo "PASS: the sanctions verifier decided outcomes, timed out when killed and resumed"
