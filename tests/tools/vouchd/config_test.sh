#!/usr/bin/env bash
# vouchd's configuration: bad flag values and bad rules files are refused at start with a clear
# message; --flagfile (Abseil's config file) works; the fraud rules file reloads on SIGHUP from
# a recorded sequence number, and a bad reload is refused with the old rules kept.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/testing/vouchd.sh"
vouchd="${TEST_SRCDIR}/vouch/tools/vouchd/vouchd"
cli() { "${TEST_SRCDIR}/vouch/tools/cli/vouch-cli" --port="${port}" "$@"; }

# Refused at start, naming what is wrong.
expect_refused() {  # expected-text flags...
  local expected="$1"; shift
  local status=0 output
  output="$("${vouchd}" --port=0 "$@" 2>&1)" || status=$?
  [[ "${status}" -ne 0 ]] || fail "vouchd $* started"
  grep -q -- "${expected}" <<<"${output}" || fail "vouchd $*: no '${expected}' in: ${output}"
}
expect_refused "port" --port=70000
expect_refused "ack policy" --ack=sometimes
expect_refused "durability.dir" --ack=durable
expect_refused "expected hold or busy" --risk_action=maybe
expect_refused "risk" --risk_account_count_max=-1
# A batch maximum whose Submit cannot fit the frame maximum (94 bytes a transaction).
expect_refused "submit_batch_max" --submit_batch_max=4096
expect_refused "lower it to at most 8" --frame_bytes_max=1024
# max_connections above what the hard RLIMIT_NOFILE allows.
expect_refused "RLIMIT_NOFILE" --max_connections=100000000
expect_refused "cannot open" --fraud_rules_file=/nonexistent.conf
echo "colour = blue" >"${TEST_TMPDIR}/bad.conf"
expect_refused "line 1" --fraud_rules_file="${TEST_TMPDIR}/bad.conf"
help="$("${vouchd}" --help 2>&1 || true)"  # --help exits 1.
grep -q -- "--fraud_rules_file" <<<"${help}" || fail "--help lacks --fraud_rules_file"

# A config file through --flagfile, and a rules file.
rules="${TEST_TMPDIR}/rules.conf"
echo "blocked_merchants = 9900001" >"${rules}"
printf -- "--accounts=1000\n--deadline_ms=10000\n--fraud_rules_file=%s\n" "${rules}" >"${TEST_TMPDIR}/vouchd.flags"
start_vouchd --flagfile="${TEST_TMPDIR}/vouchd.flags"

out="$(cli submit 1 11 12 100 --merchant=777)"; grep -q "VERIFIED" <<<"${out}" \
  || fail "merchant 777 blocked already: ${out}"
echo "blocked_merchants = 9900001, 777" >"${rules}"
kill -HUP "${vouchd_pid}"
for _ in $(seq 50); do grep -q "rules reloaded" "${vouchd_log}" && break; sleep 0.1; done
grep -q "they apply from seq 2" "${vouchd_log}" || fail "no reload line with the seq"
out="$(cli submit 2 13 14 100 --merchant=777)"; grep -q "LATE_FAILED .*BLOCKED_MERCHANT" <<<"${out}" \
  || fail "merchant 777 not blocked after the reload: ${out}"

echo "velocity_count_max = lots" >"${rules}"
kill -HUP "${vouchd_pid}"
for _ in $(seq 50); do grep -q "reload refused" "${vouchd_log}" && break; sleep 0.1; done
grep -q "reload refused, the old rules stay" "${vouchd_log}" || fail "bad reload not refused"
out="$(cli submit 3 15 16 100 --merchant=777)"; grep -q "LATE_FAILED .*BLOCKED_MERCHANT" <<<"${out}" \
  || fail "the old rules did not stay: ${out}"
stop_vouchd

# A candidate rule set in shadow: it flags merchant 555, which the live rules pass; SIGUSR2
# promotes it (journaled) and the same merchant then fails LATE_FAILED.
shadow="${TEST_TMPDIR}/shadow.conf"
echo "blocked_merchants = 555" >"${shadow}"
expect_refused "line 1" --shadow_fraud_rules_file="${TEST_TMPDIR}/bad.conf"
start_vouchd --accounts=1000 --deadline_ms=10000 --shadow_fraud_rules_file="${shadow}" \
  --metrics_port=0
out="$(cli submit 11 21 22 100 --merchant=555)"; grep -q "VERIFIED" <<<"${out}" \
  || fail "the shadow rules decided a transaction: ${out}"
kill -USR2 "${vouchd_pid}"
for _ in $(seq 50); do grep -q "shadow fraud rules promoted" "${vouchd_log}" && break; sleep 0.1; done
grep -q "promoted to live; they apply from seq 2" "${vouchd_log}" || fail "no promotion line"
out="$(cli submit 12 23 24 100 --merchant=555)"; grep -q "LATE_FAILED .*BLOCKED_MERCHANT" <<<"${out}" \
  || fail "merchant 555 not blocked after the promotion: ${out}"
stop_vouchd
echo "PASS"
