#!/usr/bin/env bash
# vouchd and its data directory (issue 12, items 7-11), as an operator meets them: a second
# server, or --check, on a directory in use is refused naming the holder's pid; a restart with
# other bank flags is refused naming the flag; --ack=memory with --data_dir is refused; --check
# writes nothing (the files are byte-identical after it) and a normal start follows; a snapshot
# temporary left by a crash is removed at start.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/testing/vouchd.sh"
vouchd="${TEST_SRCDIR}/vouch/tools/vouchd/vouchd"
cli() { "${TEST_SRCDIR}/vouch/tools/cli/vouch-cli" --port="${port}" "$@"; }
data="${TEST_TMPDIR}/data"

expect_refused() {  # expected-text flags...
  local expected="$1"; shift
  local status=0 output
  # A vouchd that wrongly starts is stopped by the timeout (and fails the test).
  output="$(timeout 10 "${vouchd}" --port=0 --metrics_port=-1 "$@" 2>&1)" || status=$?
  [[ "${status}" -ne 0 ]] || fail "vouchd $* started"
  grep -q -- "${expected}" <<<"${output}" || fail "vouchd $*: no '${expected}' in: ${output}"
}
digest() { (cd "${data}" && find . -type f | sort | xargs md5sum); }

for ack in written durable; do
  rm -rf "${data}"
  bank=(--accounts=1000 --opening_balance_minor=50000 --ack="${ack}" --data_dir="${data}"
        --metrics_port=-1)
  start_vouchd "${bank[@]}"
  for id in 1 2 3 4 5; do cli submit "${id}" 11 12 100 >/dev/null; done
  # Item 7: one server per directory; --check is refused too while the server has it.
  expect_refused "in use by another vouch engine (pid ${vouchd_pid})" "${bank[@]}"
  expect_refused "in use by another vouch engine (pid ${vouchd_pid})" "${bank[@]}" --check
  stop_vouchd

  # Item 8: the bank flags are pinned; the refusal names the flag, and is not DATA_LOSS.
  expect_refused "check --opening_balance_minor" "${bank[@]}" --opening_balance_minor=100000
  expect_refused "check --accounts" "${bank[@]}" --accounts=500
  expect_refused "check --accounts" "${bank[@]}" --accounts=2000
  expect_refused "check --overdraft_limit_minor" "${bank[@]}" --overdraft_limit_minor=10
  output="$(timeout 10 "${vouchd}" --port=0 "${bank[@]}" --opening_balance_minor=1 2>&1 || true)"
  grep -q "FAILED_PRECONDITION" <<<"${output}" || fail "not FAILED_PRECONDITION: ${output}"

  # Item 10: --check is read-only: the directory is byte-identical after it.
  printf 'half' >"${data}/snapshot-00000000000000000004.snap.tmp"  # Item 11: a crash's leftover.
  before="$(digest)"
  check="$(timeout 30 "${vouchd}" "${bank[@]}" --check 2>&1)" || fail "--check failed: ${check}"
  grep -q "vouchd check: OK" <<<"${check}" || fail "--check: ${check}"
  grep -q "1 snapshot temporaries" <<<"${check}" || fail "--check did not report the temporary"
  [[ "$(digest)" == "${before}" ]] || fail "--check changed ${data}"

  # A normal start follows, with the state it had; the temporary is removed.
  start_vouchd "${bank[@]}"
  grep -q "removed 1 snapshot temporaries" "${vouchd_log}" || fail "no removal reported"
  [[ ! -e "${data}/snapshot-00000000000000000004.snap.tmp" ]] || fail "temporary left"
  cli submit 1 11 12 100 | grep -q "seq=1 " || fail "id 1 lost its seq after --check"
  stop_vouchd
done

# Item 9: a journal is never silently ignored.
expect_refused "--data_dir is set but --ack=memory" --ack=memory --data_dir="${data}"
expect_refused "--check audits a data directory" --check
echo "PASS"
