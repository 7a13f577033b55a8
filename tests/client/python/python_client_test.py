"""The Python client against the real vouchd, through the wire contract alone.

Method: python_client_test.sh starts vouchd (accounts 1..1000 in USD, 1,000,000 minor units
each, demo fraud rules) on an ephemeral port and passes the port here. Each test opens its own
connections and uses its own transaction ids and source accounts, so the tests do not depend on
one another's order, and no source account is used often enough to trip a velocity rule.
Everything asserted is stated in proto/vouch.proto: confirmations one per transaction in
submission order, exactly one Outcome per CONFIRMED transaction and none for the rest, stored
answers for resubmitted ids, Status histories, Pong echoes, and Error-then-close for a session
that skips Hello. Outcome kinds are reported but not asserted: under load a verdict may
legitimately miss its deadline (LATE_TIMEOUT).
"""

import argparse
import collections
import sys
import time
import unittest
from typing import Callable, Dict, List

import vouch_client
import vouch_pb2
from vouch_client import Client, ConnectionClosed

HOST = "127.0.0.1"
PORT = 0  # Set from --port.

SETTLE_TIMEOUT_S = 10.0  # Every awaited answer must arrive within this.
CLOSE_TIMEOUT_S = 3.0    # The server lingers up to 1 s after an Error before closing.

FINAL_STATE_BY_OUTCOME = {
    vouch_pb2.OUTCOME_KIND_VERIFIED: vouch_pb2.STATE_KIND_VERIFIED,
    vouch_pb2.OUTCOME_KIND_LATE_FAILED: vouch_pb2.STATE_KIND_LATE_FAILED,
    vouch_pb2.OUTCOME_KIND_LATE_TIMEOUT: vouch_pb2.STATE_KIND_LATE_TIMEOUT,
}


def transaction(txn_id: int, source: int, amount: int = 100,
                currency: str = "USD") -> vouch_pb2.Transaction:
    """A transaction the demo fraud rules let through, to the account after `source`."""
    return vouch_pb2.Transaction(
        id=txn_id, source_account=source, destination_account=source % 1000 + 1,
        amount=amount, currency=currency, merchant_id=1, merchant_category=5411, country="GB",
        device_id=0, client_timestamp_ns=time.time_ns())


def describe(message) -> str:
    return " ".join(str(message).split())


class Inbox:
    """Everything one connection received, sorted by body type as it arrives."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.confirmations: List[vouch_pb2.Confirmation] = []  # Arrival order.
        self.outcomes: Dict[int, List[vouch_pb2.Outcome]] = collections.defaultdict(list)
        self.outcomes_before_confirmation: List[int] = []
        self._confirmed_ids = set()
        self.statuses: List[vouch_pb2.Status] = []
        self.pongs: List[vouch_pb2.Pong] = []
        self.balances: List[vouch_pb2.Balances] = []
        self.account_pages: List[vouch_pb2.AccountTransactions] = []
        self.welcomes: List[vouch_pb2.Welcome] = []
        self.accounts_created: List[vouch_pb2.AccountsCreated] = []
        self.account_infos: List[vouch_pb2.AccountInfo] = []
        self.account_changes: List[vouch_pb2.AccountChanged] = []

    def read_until(self, done: Callable[[], bool], waiting_for: str,
                   timeout: float = SETTLE_TIMEOUT_S) -> None:
        """Reads until done() holds; fails naming `waiting_for` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {waiting_for}; "
                                     f"received so far: {self.summary()}")
            message = self.client.read_message(timeout=remaining)
            if message is not None:
                self._sort(message)

    def _sort(self, message: vouch_pb2.ServerMessage) -> None:
        body = message.WhichOneof("body")
        if body == "confirmation":
            self.confirmations.append(message.confirmation)
            self._confirmed_ids.add(message.confirmation.transaction_id)
        elif body == "outcome":
            outcome = message.outcome
            if outcome.transaction_id not in self._confirmed_ids:
                self.outcomes_before_confirmation.append(outcome.transaction_id)
            self.outcomes[outcome.transaction_id].append(outcome)
        elif body == "status":
            self.statuses.append(message.status)
        elif body == "pong":
            self.pongs.append(message.pong)
        elif body == "balances":
            self.balances.append(message.balances)
        elif body == "account_transactions":
            self.account_pages.append(message.account_transactions)
        elif body == "welcome":
            self.welcomes.append(message.welcome)
        elif body == "accounts_created":
            self.accounts_created.append(message.accounts_created)
        elif body == "account_info":
            self.account_infos.append(message.account_info)
        elif body == "account_changed":
            self.account_changes.append(message.account_changed)
        elif body == "error":
            code = vouch_pb2.ErrorCode.Name(message.error.code)
            raise AssertionError(f"server sent Error {code}: {message.error.message!r}")
        else:
            raise AssertionError(f"server sent a ServerMessage with no known body: {message}")

    def summary(self) -> str:
        return (f"{len(self.confirmations)} confirmations, "
                f"{sum(map(len, self.outcomes.values()))} outcomes, {len(self.statuses)} "
                f"statuses, {len(self.pongs)} pongs")


class VouchdTest(unittest.TestCase):
    def setUp(self) -> None:
        self.clients: List[Client] = []

    def tearDown(self) -> None:
        for client in self.clients:
            client.close()

    def connect(self) -> Client:
        client = Client.connect(HOST, PORT)
        self.clients.append(client)
        return client

    def open_session(self, client_name: str = "") -> Inbox:
        client = self.connect()
        client.hello(client_name=client_name)
        return Inbox(client)

    def settle(self, inbox: Inbox, submitted: List[vouch_pb2.Transaction]) -> None:
        """Reads until every submitted transaction is confirmed or refused and every CONFIRMED
        one has its Outcome."""
        inbox.read_until(lambda: len(inbox.confirmations) >= len(submitted),
                         f"{len(submitted)} confirmations")
        confirmed = {c.transaction_id for c in inbox.confirmations
                     if c.status == vouch_pb2.CONFIRM_STATUS_CONFIRMED}
        inbox.read_until(lambda: confirmed <= inbox.outcomes.keys(),
                         f"outcomes of {len(confirmed)} confirmed transactions")

    def ping_barrier(self, inbox: Inbox, nonce: int) -> None:
        """Reads up to a Pong, so anything the server sent before answering it is in the inbox
        (for checks that something was NOT sent)."""
        inbox.client.ping(nonce)
        inbox.read_until(lambda: any(p.nonce == nonce for p in inbox.pongs), f"Pong {nonce}")

    # -----------------------------------------------------------------------------------------

    def test_batches_confirm_in_order_and_each_confirmed_gets_one_outcome(self) -> None:
        inbox = self.open_session("python-client-test")
        # Ids 1000..1499 from odd source accounts 1..999: one transaction per source account.
        valid = [transaction(1000 + i, source=2 * i + 1, amount=100 + i % 50) for i in range(500)]
        malformed = transaction(2000, source=3, amount=0)
        unknown_currency = transaction(2001, source=5, currency="XXX")
        resubmitted = valid[0]
        batches = [valid[:125], valid[125:250] + [malformed, unknown_currency],
                   valid[250:375], valid[375:] + [resubmitted]]
        submitted = []
        for batch in batches:
            inbox.client.submit(batch)
            submitted.extend(batch)
        self.settle(inbox, submitted)
        self.ping_barrier(inbox, nonce=1)  # Any second Outcome for an id would be in by now.

        self.assertEqual([c.transaction_id for c in inbox.confirmations],
                         [t.id for t in submitted],
                         "confirmations must come one per transaction, in submission order")
        first_answer = {}
        for txn, confirmation in zip(submitted, inbox.confirmations):
            first_answer.setdefault(txn.id, confirmation)
        for txn in valid:
            confirmation = first_answer[txn.id]
            self.assertEqual(confirmation.status, vouch_pb2.CONFIRM_STATUS_CONFIRMED,
                             f"valid transaction {txn.id}: {describe(confirmation)}")
            self.assertNotEqual(confirmation.seq, 0, f"confirmed {txn.id} has no seq")
            self.assertFalse(confirmation.duplicate, f"first submit of {txn.id} is a duplicate")
        self.assert_rejected(first_answer[malformed.id], vouch_pb2.REASON_MALFORMED_AMOUNT)
        self.assert_rejected(first_answer[unknown_currency.id], vouch_pb2.REASON_UNKNOWN_CURRENCY)
        original, repeat = first_answer[resubmitted.id], inbox.confirmations[-1]
        self.assertTrue(repeat.duplicate, f"resubmitted id: {describe(repeat)}")
        self.assertEqual((repeat.status, repeat.seq), (original.status, original.seq),
                         "a resubmitted id must get the original answer back")
        self.assert_one_outcome_per_confirmed(inbox)
        kinds = collections.Counter(vouch_pb2.OutcomeKind.Name(o[0].kind)
                                    for o in inbox.outcomes.values())
        print(f"\n  outcomes by kind: {dict(kinds)}", file=sys.stderr)

    def assert_rejected(self, confirmation: vouch_pb2.Confirmation, reason: int) -> None:
        self.assertEqual((confirmation.status, confirmation.reason),
                         (vouch_pb2.CONFIRM_STATUS_REJECTED, reason),
                         f"transaction {confirmation.transaction_id} should be REJECTED "
                         f"{vouch_pb2.Reason.Name(reason)}: {describe(confirmation)}")

    def assert_one_outcome_per_confirmed(self, inbox: Inbox) -> None:
        confirmed_seq = {c.transaction_id: c.seq for c in inbox.confirmations
                         if c.status == vouch_pb2.CONFIRM_STATUS_CONFIRMED}
        self.assertEqual(set(inbox.outcomes), set(confirmed_seq),
                         "Outcomes must come for the CONFIRMED transactions and no others")
        for txn_id, outcomes in inbox.outcomes.items():
            self.assertEqual(len(outcomes), 1, f"transaction {txn_id} got {len(outcomes)} "
                             f"Outcomes: {[describe(o) for o in outcomes]}")
            outcome = outcomes[0]
            self.assertEqual(outcome.seq, confirmed_seq[txn_id], f"seq of {describe(outcome)}")
            self.assertIn(outcome.kind, FINAL_STATE_BY_OUTCOME, describe(outcome))
        self.assertEqual(inbox.outcomes_before_confirmation, [],
                         "an Outcome arrived before its transaction's Confirmation")

    def test_query_shows_the_history_up_to_the_outcome(self) -> None:
        inbox = self.open_session()
        txn = transaction(3000, source=2)
        inbox.client.submit([txn])
        self.settle(inbox, [txn])
        [confirmation] = inbox.confirmations
        self.assertEqual(confirmation.status, vouch_pb2.CONFIRM_STATUS_CONFIRMED,
                         describe(confirmation))
        [outcome] = inbox.outcomes[txn.id]

        unknown_id = 999_999_999
        inbox.client.query(txn.id)
        inbox.client.query(unknown_id)
        inbox.read_until(lambda: len(inbox.statuses) == 2, "two Status answers")

        known, unknown = inbox.statuses
        self.assertEqual((known.transaction_id, known.found), (txn.id, True), describe(known))
        states = [change.state for change in known.history]
        state_names = [vouch_pb2.StateKind.Name(s) for s in states]
        final_state = FINAL_STATE_BY_OUTCOME[outcome.kind]
        self.assertIn(vouch_pb2.STATE_KIND_CONFIRMED, states, state_names)
        self.assertIn(final_state, states, f"{state_names} lacks the outcome's final state")
        self.assertLess(states.index(vouch_pb2.STATE_KIND_CONFIRMED), states.index(final_state),
                        f"history is oldest first: {state_names}")
        times = [change.unix_ns for change in known.history]
        self.assertEqual(times, sorted(times), f"history is oldest first: {describe(known)}")
        self.assertEqual((unknown.transaction_id, unknown.found, len(unknown.history)),
                         (unknown_id, False, 0), describe(unknown))

    def test_account_transactions_lists_debits_and_credits_newest_first(self) -> None:
        inbox = self.open_session()
        # Account 600 pays 601, then 599 pays 600 (other tests use these accounts too, so only
        # this test's ids are compared).
        debit = transaction(6000, source=600)
        credit = transaction(6001, source=599, amount=70)
        inbox.client.submit([debit, credit])
        self.settle(inbox, [debit, credit])
        seq_by_id = {c.transaction_id: c.seq for c in inbox.confirmations}
        inbox.client.query_account(600)
        inbox.read_until(lambda: inbox.account_pages, "AccountTransactions")
        [page] = inbox.account_pages
        self.assertEqual(page.account, 600, describe(page))
        mine = [e for e in page.transactions if e.transaction_id in (6000, 6001)]
        self.assertEqual([e.transaction_id for e in mine], [6001, 6000], describe(page))
        seqs = [e.seq for e in page.transactions]
        self.assertEqual(seqs, sorted(seqs, reverse=True), f"newest first: {describe(page)}")
        newer, older = mine
        self.assertEqual((newer.seq, newer.debit, newer.source_account, newer.amount),
                         (seq_by_id[6001], False, 599, 70), describe(newer))
        self.assertEqual((older.seq, older.debit, older.destination_account, older.currency),
                         (seq_by_id[6000], True, 601, "USD"), describe(older))
        final = (vouch_pb2.ACCOUNT_TRANSACTION_STATE_VERIFIED,
                 vouch_pb2.ACCOUNT_TRANSACTION_STATE_LATE_TIMEOUT)
        for entry in mine:
            # Settled: its Outcome came, and the state is what the Outcome said.
            [outcome] = inbox.outcomes[entry.transaction_id]
            self.assertIn(entry.state, final, describe(entry))
            self.assertEqual(entry.state == vouch_pb2.ACCOUNT_TRANSACTION_STATE_VERIFIED,
                             outcome.kind == vouch_pb2.OUTCOME_KIND_VERIFIED, describe(entry))
            self.assertGreaterEqual(entry.decided_unix_ns, entry.received_unix_ns)
        # One entry a page: the next page starts below it.
        inbox.client.query_account(600, limit=1, before_seq=newer.seq)
        inbox.read_until(lambda: len(inbox.account_pages) == 2, "a second AccountTransactions")
        second = inbox.account_pages[1]
        self.assertEqual([e.transaction_id for e in second.transactions], [6000],
                         describe(second))

    def test_ping_is_answered_with_a_pong_echoing_it(self) -> None:
        inbox = self.open_session()
        inbox.client.ping(nonce=0xFEEDFACECAFEBEEF, client_time_ns=123456789)
        inbox.read_until(lambda: inbox.pongs, "a Pong")
        [pong] = inbox.pongs
        self.assertEqual((pong.nonce, pong.client_time_ns), (0xFEEDFACECAFEBEEF, 123456789),
                         describe(pong))
        self.assertGreater(pong.server_time_ns, 0, describe(pong))

    def test_balances_sum_to_the_total_with_clearing(self) -> None:
        inbox = self.open_session()
        inbox.client.read_balances([1, 2])
        inbox.read_until(lambda: inbox.balances, "Balances")
        [balances] = inbox.balances
        self.assertEqual(balances.result, vouch_pb2.BALANCES_RESULT_OK, describe(balances))
        self.assertEqual([a.account for a in balances.accounts], [1, 2], describe(balances))
        [usd] = balances.currencies
        self.assertEqual(usd.currency, "USD", describe(balances))
        self.assertGreater(usd.total_minor, 0, describe(balances))

    ACCOUNT_TIMEOUT_S = 12.0  # The server may wait up to 5 s per account request.

    def create(self, inbox: Inbox, accounts: List[vouch_pb2.Account]) -> vouch_pb2.AccountsCreated:
        before = len(inbox.accounts_created)
        inbox.client.create_accounts(accounts)
        inbox.read_until(lambda: len(inbox.accounts_created) > before, "AccountsCreated",
                         self.ACCOUNT_TIMEOUT_S)
        return inbox.accounts_created[-1]

    def lookup(self, inbox: Inbox, account: int) -> vouch_pb2.AccountInfo:
        before = len(inbox.account_infos)
        inbox.client.lookup_account(account)
        inbox.read_until(lambda: len(inbox.account_infos) > before, "AccountInfo",
                         self.ACCOUNT_TIMEOUT_S)
        return inbox.account_infos[-1]

    def change(self, inbox: Inbox, account: int, action: int) -> vouch_pb2.AccountChanged:
        before = len(inbox.account_changes)
        inbox.client.change_account(account, action)
        inbox.read_until(lambda: len(inbox.account_changes) > before, "AccountChanged",
                         self.ACCOUNT_TIMEOUT_S)
        return inbox.account_changes[-1]

    def test_accounts_are_created_idempotently_and_frozen_accounts_refuse(self) -> None:
        inbox = self.open_session()
        funding = vouch_pb2.Account(id=900_001, currency="USD", opening_balance_minor=50_000,
                                    user_data=77)
        payee = vouch_pb2.Account(id=900_002, currency="USD")
        created = self.create(inbox, [funding, payee, vouch_pb2.Account(id=0, currency="USD")])
        self.assertEqual([e.result for e in created.results],
                         [vouch_pb2.CREATE_ACCOUNT_RESULT_CREATED,
                          vouch_pb2.CREATE_ACCOUNT_RESULT_CREATED,
                          vouch_pb2.CREATE_ACCOUNT_RESULT_INVALID], describe(created))
        # A retry answers EXISTS; the same id with other fields is refused.
        other = vouch_pb2.Account(id=900_002, currency="USD", overdraft_limit_minor=5)
        again = self.create(inbox, [funding, other])
        self.assertEqual([e.result for e in again.results],
                         [vouch_pb2.CREATE_ACCOUNT_RESULT_EXISTS,
                          vouch_pb2.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FIELDS],
                         describe(again))
        info = self.lookup(inbox, 900_001)
        self.assertEqual(info.result, vouch_pb2.ACCOUNT_REQUEST_RESULT_OK, describe(info))
        self.assertEqual(info.fields.user_data, 77, describe(info))
        self.assertEqual(info.balance_minor, 50_000, describe(info))
        self.assertEqual(info.state, vouch_pb2.ACCOUNT_STATE_OPEN, describe(info))
        self.assertEqual(info.history[0].kind, vouch_pb2.ACCOUNT_CHANGE_KIND_CREATED)
        self.assertEqual(self.lookup(inbox, 900_999).result,
                         vouch_pb2.ACCOUNT_REQUEST_RESULT_NOT_FOUND)
        # A transfer to an account that does not exist is refused at once.
        inbox.client.submit([vouch_pb2.Transaction(
            id=900_101, source_account=900_001, destination_account=900_999, amount=10,
            currency="USD")])
        inbox.read_until(lambda: inbox.confirmations, "a Confirmation")
        refused = inbox.confirmations[-1]
        self.assertEqual((refused.status, refused.reason),
                         (vouch_pb2.CONFIRM_STATUS_REJECTED, vouch_pb2.REASON_UNKNOWN_ACCOUNT),
                         describe(refused))
        # Frozen: refused with its own reason; unfrozen: accepted again.
        frozen = self.change(inbox, 900_002, vouch_pb2.ACCOUNT_ACTION_FREEZE)
        self.assertEqual(frozen.result, vouch_pb2.ACCOUNT_REQUEST_RESULT_OK, describe(frozen))
        inbox.client.submit([vouch_pb2.Transaction(
            id=900_102, source_account=900_001, destination_account=900_002, amount=10,
            currency="USD")])
        inbox.read_until(lambda: len(inbox.confirmations) >= 2, "a Confirmation")
        self.assertEqual(inbox.confirmations[-1].reason, vouch_pb2.REASON_ACCOUNT_FROZEN,
                         describe(inbox.confirmations[-1]))
        self.assertEqual(self.lookup(inbox, 900_002).state, vouch_pb2.ACCOUNT_STATE_FROZEN)
        self.assertEqual(self.change(inbox, 900_002, vouch_pb2.ACCOUNT_ACTION_UNFREEZE).result,
                         vouch_pb2.ACCOUNT_REQUEST_RESULT_OK)
        # Closing an account with money in it is refused; an empty one closes for good.
        self.assertEqual(self.change(inbox, 900_001, vouch_pb2.ACCOUNT_ACTION_CLOSE).result,
                         vouch_pb2.ACCOUNT_REQUEST_RESULT_NOT_EMPTY)
        self.assertEqual(self.change(inbox, 900_002, vouch_pb2.ACCOUNT_ACTION_CLOSE).result,
                         vouch_pb2.ACCOUNT_REQUEST_RESULT_OK)
        self.assertEqual(self.change(inbox, 900_002, vouch_pb2.ACCOUNT_ACTION_FREEZE).result,
                         vouch_pb2.ACCOUNT_REQUEST_RESULT_CLOSED)
        kinds = [c.kind for c in self.lookup(inbox, 900_002).history]
        self.assertEqual(kinds, [vouch_pb2.ACCOUNT_CHANGE_KIND_CREATED,
                                 vouch_pb2.ACCOUNT_CHANGE_KIND_FROZEN,
                                 vouch_pb2.ACCOUNT_CHANGE_KIND_UNFROZEN,
                                 vouch_pb2.ACCOUNT_CHANGE_KIND_CLOSED])

    def test_welcome_answers_hello_with_the_epoch_and_a_resume_from_zero(self) -> None:
        inbox = self.open_session(client_name="py-resumer")
        inbox.client.ping(nonce=1)
        inbox.read_until(lambda: inbox.pongs, "a Pong")
        [welcome] = inbox.welcomes
        self.assertNotEqual(welcome.epoch, 0, describe(welcome))
        self.assertEqual(inbox.client.welcome, welcome)
        self.assertEqual(welcome.submit_batch_max, vouch_client.SUBMIT_BATCH_MAX_DEFAULT)
        inbox.client.submit([transaction(5000, source=5)])
        inbox.read_until(lambda: 5000 in inbox.outcomes, "the Outcome of 5000")
        inbox.client.close()

        # A new connection resuming from 0 under that epoch gets the session's Outcome again.
        again = Inbox(self.connect())
        again.client.hello(client_name="py-resumer", resume=True, epoch=welcome.epoch)
        again.read_until(lambda: 5000 in again.outcomes, "the resent Outcome of 5000")
        [resumed] = again.welcomes
        self.assertTrue(resumed.resuming, describe(resumed))
        self.assertEqual(resumed.resume_from_seq, 0, describe(resumed))

    def test_a_resume_position_from_the_future_is_refused(self) -> None:
        client = self.connect()
        client.hello(client_name="py-ahead", resume=True, resume_from_seq=10**12)
        message = client.read_message(timeout=SETTLE_TIMEOUT_S)
        self.assertIsNotNone(message, "no answer to a Hello resuming from the future")
        self.assertEqual(message.WhichOneof("body"), "error", describe(message))
        self.assertEqual(message.error.code, vouch_pb2.ERROR_CODE_RESUME_AHEAD, describe(message))

    def test_submit_before_hello_gets_an_error_and_the_connection_closes(self) -> None:
        client = self.connect()
        skipped = transaction(4000, source=4)
        client.submit([skipped])
        message = client.read_message(timeout=SETTLE_TIMEOUT_S)
        self.assertIsNotNone(message, "no answer to a Submit sent before Hello")
        self.assertEqual(message.WhichOneof("body"), "error", describe(message))
        self.assertEqual(message.error.code, vouch_pb2.ERROR_CODE_HELLO_REQUIRED,
                         describe(message))
        with self.assertRaises(ConnectionClosed, msg="the server must close after an Error"):
            leftover = client.read_message(timeout=CLOSE_TIMEOUT_S)
            self.fail(f"after the Error the server sent {leftover} instead of closing "
                      f"within {CLOSE_TIMEOUT_S} s")

        inbox = self.open_session()  # The refused Submit must not have been recorded.
        inbox.client.query(skipped.id)
        inbox.read_until(lambda: inbox.statuses, "a Status")
        self.assertFalse(inbox.statuses[0].found, describe(inbox.statuses[0]))


def main() -> None:
    global HOST, PORT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    args, unittest_args = parser.parse_known_args()
    HOST, PORT = args.host, args.port
    unittest.main(argv=[sys.argv[0]] + unittest_args, verbosity=2)


if __name__ == "__main__":
    main()
