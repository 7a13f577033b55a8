#!/usr/bin/env bash
# vouch-cli against a real vouchd: a payment to a blocked merchant fails late and holds its
# account; `watch` sees the failure, `status` shows the history with its reason, `holds` lists
# the account, `release` lifts the hold (and `holds` then shows none), `balances` shows a
# snapshot whose USD total is the opening money, `account-transactions` lists the account's
# debits and credits newest first with their state and pages with --before_seq, the account
# commands create, show, freeze and unfreeze an account, attributes go in and come back in
# `status`, bad usage exits 2.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/testing/vouchd.sh"
cli() { "${TEST_SRCDIR}/vouch/tools/cli/vouch-cli" --port="${port}" "$@"; }

# A long deadline: a starved machine must not turn VERIFIED into LATE_TIMEOUT.
start_vouchd --accounts=1000 --deadline_ms=10000
# The feed first, so it sees the failure as it is decided.
cli watch --count=1 --duration_s=10 >"${TEST_TMPDIR}/watch.txt" &
watcher=$!
sleep 0.5

cli submit 42 7 8 500 --merchant=9900001 >"${TEST_TMPDIR}/submit.txt" || fail "submit failed"
grep -q "CONFIRMED" "${TEST_TMPDIR}/submit.txt" || fail "not confirmed: $(cat "${TEST_TMPDIR}/submit.txt")"
grep -q "LATE_FAILED .*reason=BLOCKED_MERCHANT .*account_held" "${TEST_TMPDIR}/submit.txt" \
  || fail "no late failure: $(cat "${TEST_TMPDIR}/submit.txt")"
wait "${watcher}" || fail "watch exited with an error"
grep -q "id=42 LATE_FAILED" "${TEST_TMPDIR}/watch.txt" || fail "watch saw: $(cat "${TEST_TMPDIR}/watch.txt")"

cli status 42 >"${TEST_TMPDIR}/status.txt" || fail "status failed"
for state in RECEIVED CONFIRMED FRAUD_VERDICT LATE_FAILED ACCOUNT_HELD; do
  grep -q "${state}" "${TEST_TMPDIR}/status.txt" || fail "status lacks ${state}: $(cat "${TEST_TMPDIR}/status.txt")"
done
grep -q "reason=BLOCKED_MERCHANT" "${TEST_TMPDIR}/status.txt" || fail "status lacks the reason"
if cli status 999999 >/dev/null; then fail "status of an unknown id succeeded"; fi

# Attributes: sent as given (C escapes decoded), shown by status; longer than 24 bytes refused.
out="$(cli submit 4401 11 12 500 --attributes='seg=7\x01')" || fail "submit with attributes failed"
grep -q "VERIFIED" <<<"${out}" || fail "not verified: ${out}"
out="$(cli status 4401)" || fail "status 4401 failed"
grep -qF 'attributes="seg=7\x01"' <<<"${out}" || fail "status lacks the attributes: ${out}"
out="$(cli submit 4402 11 12 500 --attributes=0123456789012345678901234 || true)"
grep -q "MALFORMED_ATTRIBUTES" <<<"${out}" || fail "25 bytes not refused: ${out}"

cli holds | grep -qx "  7" || fail "account 7 not listed as held"
cli release 7 | grep -q "released" || fail "release did not release"
cli holds | grep -q "^0 accounts on hold" || fail "still held after release"
cli release 7 | grep -q "was not on hold" || fail "second release"

balances="$(cli balances 1 2)" || fail "balances failed"
grep -qE "^1 +USD +" <<<"${balances}" || fail "balances did not list account 1: ${balances}"
# vouchd's default opening balance is 1,000,000 minor units per account.
grep -q "^USD total_minor=1000000000 " <<<"${balances}" || fail "USD total wrong: ${balances}"

# Accounts: created idempotently, looked up, frozen (a payment from it is refused), unfrozen,
# refused closing while it holds money.
cli create-account 5001 --opening_balance=2500 --user_data=9 | grep -q "CREATED" \
  || fail "create-account did not create"
cli create-account 5001 --opening_balance=2500 --user_data=9 | grep -q "EXISTS" \
  || fail "create-account retry did not answer EXISTS"
if cli create-account 5001 --opening_balance=1 >/dev/null; then
  fail "create-account with other fields succeeded"
fi
account="$(cli account 5001)" || fail "account failed"
grep -q "balance_minor=2500 " <<<"${account}" || fail "account balance wrong: ${account}"
grep -q "OPEN" <<<"${account}" || fail "account not open: ${account}"
cli freeze 5001 | grep -q "FREEZE OK" || fail "freeze failed"
cli submit 4301 5001 8 100 | grep -q "REJECTED reason=ACCOUNT_FROZEN" || fail "frozen account paid"
cli account 5001 | grep -q "FROZEN" || fail "account not shown frozen"
cli unfreeze 5001 | grep -q "UNFREEZE OK" || fail "unfreeze failed"
if cli close 5001 >"${TEST_TMPDIR}/close.txt"; then fail "closed an account holding money"; fi
grep -q "NOT_EMPTY" "${TEST_TMPDIR}/close.txt" || fail "close: $(cat "${TEST_TMPDIR}/close.txt")"
if cli account 999999 >/dev/null 2>&1; then fail "account of an unknown id succeeded"; fi
# Account 7 paid 8 (id 42, failed late); now 9 pays 7 (id 43): newest first, both directions.
cli submit 43 9 7 250 >/dev/null || fail "submit 43 failed"
activity="$(cli account-transactions 7)" || fail "account-transactions failed"
grep -q "^account 7: 2 transactions" <<<"${activity}" || fail "account-transactions: ${activity}"
first="$(sed -n 2p <<<"${activity}")"
second="$(sed -n 3p <<<"${activity}")"
grep -qE "id=43 credit from=9 amount=250 USD VERIFIED" <<<"${first}" \
  || fail "newest is not the credit 43: ${activity}"
grep -qE "id=42 debit  to=8 amount=500 USD LATE_FAILED .*reason=BLOCKED_MERCHANT" <<<"${second}" \
  || fail "second is not the failed debit 42: ${activity}"
page="$(cli account-transactions 7 --limit=1)" || fail "account-transactions --limit=1 failed"
next="$(grep -oE "^more: --before_seq=[0-9]+" <<<"${page}" | cut -d' ' -f2)" \
  || fail "no next page: ${page}"
cli account-transactions 7 --limit=1 "${next}" | grep -q "id=42 debit" \
  || fail "the second page is not id 42"
cli account-transactions 7 --since=1h | grep -q "^account 7: 2 transactions" \
  || fail "--since=1h lost entries"
cli account-transactions 7 --until=1h | grep -q "^account 7: 0 transactions" \
  || fail "--until=1h (an hour ago) listed entries"
if cli account-transactions 0 >/dev/null 2>&1; then fail "account 0 was accepted"; fi

status=0
cli frobnicate >/dev/null 2>&1 || status=$?
[[ "${status}" -eq 2 ]] || fail "bad usage exited ${status}, not 2"
stop_vouchd
echo "PASS"
