# Sourced by sh_tests that run the real vouchd (which must be in the test's data):
#   start_vouchd [vouchd flags]   starts it on an ephemeral port; sets vouchd_pid and port
#   fail "why"                    prints the reason and the server's log tail, exits 1
#   stop_vouchd                   SIGTERM; fails unless it exits 0 within SHUTDOWN_TIMEOUT_S
# The server is killed on exit whatever happens, so no test leaves one behind.
readonly VOUCHD_STARTUP_TIMEOUT_S=10
readonly VOUCHD_SHUTDOWN_TIMEOUT_S=15  # vouchd drains outcomes (5 s) and flushes (2 s) at most.
vouchd_log="${TEST_TMPDIR}/vouchd.log"
vouchd_pid=""
port=""

fail() {
  echo "FAIL: $*" >&2
  echo "--- vouchd log (last 40 lines) ---" >&2
  tail -n 40 "${vouchd_log}" >&2 || true
  exit 1
}

start_vouchd() {
  local port_file="${TEST_TMPDIR}/vouchd.port"
  rm -f "${port_file}"
  "${TEST_SRCDIR}/vouch/tools/vouchd/vouchd" --port=0 --port_file="${port_file}" "$@" \
    >"${vouchd_log}" 2>&1 &
  vouchd_pid=$!
  trap 'kill -KILL "${vouchd_pid}" 2>/dev/null || true' EXIT
  for _ in $(seq $((VOUCHD_STARTUP_TIMEOUT_S * 10))); do
    kill -0 "${vouchd_pid}" 2>/dev/null || fail "vouchd exited before writing ${port_file}"
    if [[ -s "${port_file}" ]]; then
      port="$(tr -d '[:space:]' <"${port_file}")"
      [[ "${port}" =~ ^[0-9]+$ ]] && break
      port=""
    fi
    sleep 0.1
  done
  [[ -n "${port}" ]] || fail "vouchd wrote no port to ${port_file} in ${VOUCHD_STARTUP_TIMEOUT_S} s"
  grep -q "listening on 127.0.0.1:${port}" "${vouchd_log}" \
    || fail "vouchd never printed 'vouchd: listening on 127.0.0.1:${port}'"
}

stop_vouchd() {
  kill -TERM "${vouchd_pid}"
  for _ in $(seq $((VOUCHD_SHUTDOWN_TIMEOUT_S * 10))); do
    kill -0 "${vouchd_pid}" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "${vouchd_pid}" 2>/dev/null \
    && fail "vouchd still running ${VOUCHD_SHUTDOWN_TIMEOUT_S} s after SIGTERM"
  local exit_code=0
  wait "${vouchd_pid}" || exit_code=$?
  [[ "${exit_code}" -eq 0 ]] || fail "vouchd exited with ${exit_code} after SIGTERM, not 0"
  grep -q "vouchd: shut down in .*: drained" "${vouchd_log}" \
    || fail "vouchd did not report a complete drain"
}
