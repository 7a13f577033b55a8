#!/usr/bin/env bash
# Starts the real vouchd on an ephemeral port, runs python_client_test.py (and the example CLI)
# against it over the wire, then stops vouchd with SIGTERM and checks that it drains and exits 0.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/client/python/python_env.sh"

readonly STARTUP_TIMEOUT_S=10
readonly SHUTDOWN_TIMEOUT_S=15  # vouchd drains outcomes (5 s) and flushes (2 s) at most.

port_file="${TEST_TMPDIR}/port"
log="${TEST_TMPDIR}/vouchd.log"
rm -f "${port_file}"
"${RUNFILES}/tools/vouchd/vouchd" --port=0 --port_file="${port_file}" --accounts=1000 \
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

# The port file may hold "PORT" or "HOST:PORT"; it counts once it ends in a number.
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
echo "vouchd (pid ${vouchd_pid}) is on port ${port}"

"${PYTHON}" "${RUNFILES}/tests/client/python/python_client_test.py" --port="${port}" \
  || fail "python_client_test.py failed"
# The example in the README must keep working too.
"${PYTHON}" "${RUNFILES}/client/python/submit_example.py" --port="${port}" --count=3 \
  || fail "submit_example.py failed"

kill -TERM "${vouchd_pid}"
for _ in $(seq $((SHUTDOWN_TIMEOUT_S * 10))); do
  kill -0 "${vouchd_pid}" 2>/dev/null || break
  sleep 0.1
done
kill -0 "${vouchd_pid}" 2>/dev/null && fail "vouchd still running ${SHUTDOWN_TIMEOUT_S} s after SIGTERM"
exit_code=0
wait "${vouchd_pid}" || exit_code=$?
[[ "${exit_code}" -eq 0 ]] || fail "vouchd exited with ${exit_code} after SIGTERM, not 0"
grep -q "listening on 127.0.0.1:${port}" "${log}" \
  || fail "vouchd never printed 'vouchd: listening on 127.0.0.1:${port}'"
echo "--- vouchd log (last 10 lines) ---"
tail -n 10 "${log}"
echo "PASS: vouchd served the Python client and exited 0 on SIGTERM"
