"""A sanctions-screening remote verifier for vouch, written against proto/vouch.proto alone.

It connects to vouchd as the remote verifier named --verifier (vouchd must run it, e.g.
`vouchd --remote_verifiers=sanctions:required`), screens every confirmed transaction the server
sends against three block lists, and answers with a verdict per transaction:

    code 0  passes
    code 1  BLOCKED_ACCOUNT   the source or the destination account is on --blocked_accounts
    code 2  BLOCKED_MERCHANT  merchant_id is on --blocked_merchants
    code 3  BLOCKED_COUNTRY   country is on --blocked_countries

(the first that applies, in that order). The code reaches the transaction's Outcome as
verifier_reason, with reason REASON_VERIFIER_REJECTED and verifier VERIFIER_EMBEDDER_n (n from
the VerifierWelcome); with a required verifier a hit is a LATE_FAILED.

How it answers. A real screening service takes a few milliseconds per lookup (--latency_ms,
default 3, simulates that). Screening is not done one request at a time: each request is due
latency_ms after it arrived, and every loop turn sends the verdicts of all requests that are due
in one Verdicts frame, so a VerifyBatch of many requests costs one latency, not one per request,
and the server may hold up to --window requests here at once. When nothing was sent for
--ping_interval_s it sends a Ping (the server closes idle connections after 60 s).

Delivery is at least once: a request can come twice (redelivered after another connection of
the verifier closed, or after a server restart); the screening is a pure function of the
transaction, so it gives the same answer each time, as the server expects.

Lifetime. On a lost connection it reconnects after a back-off (0.05 s doubling to 2 s). The
errors a retry cannot mend end it with exit status 2: ERROR_CODE_UNKNOWN_VERIFIER (vouchd runs
no remote verifier of that name), ERROR_CODE_NOT_AUTHENTICATED, and the refusals of what it
sent (HELLO_REQUIRED, UNKNOWN_MESSAGE, INVALID_MESSAGE: e.g. a server without remote
verifiers). SIGTERM or SIGINT ends it cleanly: the verdicts of every request it holds are
sent (they are screened on arrival), the connection is closed, the counters are printed and it
exits 0. Killed without warning, it loses nothing: the server redelivers what it held.

Run it with Debian's /usr/bin/python3 (python3-protobuf), with vouch_pb2 (bazel-bin/proto) and
vouch_client (client/python) on PYTHONPATH; see README.md.
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import time
from typing import Deque, FrozenSet, List, Optional, Tuple

import vouch_client
import vouch_pb2
from vouch_client import Client, ConnectionClosed, FrameError

PASS = 0
BLOCKED_ACCOUNT = 1
BLOCKED_MERCHANT = 2
BLOCKED_COUNTRY = 3

# A Verdict inside Verdicts takes at most 17 bytes (a 10-byte seq, a 3-byte code, tags and
# length); the envelope and the frame's length prefix at most 12 more.
VERDICT_BYTES_MAX = 17
ENVELOPE_BYTES_MAX = 12
# Server errors that a reconnect would only repeat: no such verifier, a wrong token, and the
# refusals of something this program sent (e.g. a server that predates remote verifiers).
PERMANENT_ERRORS = (vouch_pb2.ERROR_CODE_UNKNOWN_VERIFIER, vouch_pb2.ERROR_CODE_NOT_AUTHENTICATED,
                    vouch_pb2.ERROR_CODE_HELLO_REQUIRED, vouch_pb2.ERROR_CODE_UNKNOWN_MESSAGE,
                    vouch_pb2.ERROR_CODE_INVALID_MESSAGE)
RECONNECT_DELAY_MIN_S = 0.05
RECONNECT_DELAY_MAX_S = 2.0
LOOP_TURN_MAX_S = 0.05  # Longest wait for input, so SIGTERM is seen within this.


class PermanentError(Exception):
    """The server refused this verifier for a reason a retry cannot mend."""


class Screen:
    """The block lists, and the one screening rule."""

    def __init__(self, accounts: FrozenSet[int], merchants: FrozenSet[int],
                 countries: FrozenSet[str]) -> None:
        self.accounts = accounts
        self.merchants = merchants
        self.countries = countries

    def code(self, transaction: vouch_pb2.Transaction) -> int:
        if (transaction.source_account in self.accounts
                or transaction.destination_account in self.accounts):
            return BLOCKED_ACCOUNT
        if transaction.merchant_id and transaction.merchant_id in self.merchants:
            return BLOCKED_MERCHANT
        if transaction.country and transaction.country in self.countries:
            return BLOCKED_COUNTRY
        return PASS


class Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.redelivered = 0
        self.verdicts = 0
        self.hits = 0
        self.pings = 0
        self.connections = 0

    def line(self) -> str:
        return (f"requests={self.requests} redelivered={self.redelivered} "
                f"verdicts={self.verdicts} hits={self.hits} pings={self.pings} "
                f"connections={self.connections}")


class Verifier:
    def __init__(self, args: argparse.Namespace, screen: Screen) -> None:
        self.args = args
        self.screen = screen
        self.counters = Counters()
        self.stopping = False
        self.latency_s = args.latency_ms / 1000.0
        # (due time, seq, code), in arrival order: every request has the same latency, so the
        # front is always the first due.
        self.pending: Deque[Tuple[float, int, int]] = collections.deque()
        self.verdicts_per_frame = 1  # Set from each VerifierWelcome.frame_bytes_max.

    def log(self, text: str) -> None:
        print(f"sanctions_verifier: {text}", file=sys.stderr, flush=True)

    def run(self) -> int:
        delay_s = RECONNECT_DELAY_MIN_S
        while not self.stopping:
            welcomed = False
            try:
                welcomed = self.serve_one_connection()
            except PermanentError as error:
                self.log(f"giving up: {error}")
                return 2
            except (OSError, ConnectionClosed, FrameError) as error:
                if not self.stopping:
                    self.log(f"connection lost: {error}; reconnecting in {delay_s:.2f} s")
            if welcomed:
                delay_s = RECONNECT_DELAY_MIN_S
            self.sleep(delay_s)
            delay_s = min(delay_s * 2, RECONNECT_DELAY_MAX_S)
        self.log(f"stopped: {self.counters.line()}")
        return 0

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(LOOP_TURN_MAX_S, max(0.0, deadline - time.monotonic())))

    def serve_one_connection(self) -> bool:
        """Serves one connection until it ends (an exception) or SIGTERM (returns). Returns
        whether the server welcomed it."""
        self.pending.clear()  # The server redelivers what the previous connection held.
        with Client.connect(self.args.host, self.args.port) as client:
            client.verifier_hello(self.args.verifier, auth_token=self.args.auth_token,
                                  window=self.args.window, worker_name=self.args.worker_name)
            welcome = self.await_welcome(client)
            self.counters.connections += 1
            frame_bytes_max = welcome.frame_bytes_max or vouch_client.FRAME_BYTES_MAX_DEFAULT
            self.verdicts_per_frame = max(
                1, (min(frame_bytes_max, vouch_client.FRAME_BYTES_MAX_DEFAULT)
                    - ENVELOPE_BYTES_MAX) // VERDICT_BYTES_MAX)
            self.log(f"connected as {vouch_pb2.Verifier.Name(welcome.verifier)} "
                     f"(window {welcome.window}, batch_max {welcome.batch_max}, "
                     f"deadline {welcome.deadline_ns // 1_000_000} ms, policy {welcome.policy})")
            last_send = time.monotonic()
            while not self.stopping:
                now = time.monotonic()
                if self.pending and self.pending[0][0] <= now:
                    self.send_due(client, now)
                    last_send = now
                    continue
                if now - last_send >= self.args.ping_interval_s:
                    client.ping(nonce=self.counters.pings + 1)
                    self.counters.pings += 1
                    last_send = now
                wait_s = LOOP_TURN_MAX_S
                if self.pending:
                    wait_s = min(wait_s, max(0.0, self.pending[0][0] - now))
                message = client.read_message(timeout=wait_s)
                if message is not None:
                    self.handle(message)
            # SIGTERM: every request held was screened on arrival; send all their verdicts.
            while self.pending:
                self.send_due(client, float("inf"))
        return True

    def await_welcome(self, client: Client) -> vouch_pb2.VerifierWelcome:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not self.stopping:
            message = client.read_message(timeout=LOOP_TURN_MAX_S)
            if message is None:
                continue
            body = message.WhichOneof("body")
            if body == "verifier_welcome":
                return message.verifier_welcome
            if body == "error":
                self.raise_error(message.error)
        raise ConnectionClosed("no VerifierWelcome within 5 s")

    def raise_error(self, error: vouch_pb2.Error) -> None:
        text = f"{vouch_pb2.ErrorCode.Name(error.code)}: {error.message}"
        if error.code in PERMANENT_ERRORS:
            raise PermanentError(text)
        raise ConnectionClosed(f"server error {text}")

    def handle(self, message: vouch_pb2.ServerMessage) -> None:
        body = message.WhichOneof("body")
        if body == "verify_batch":
            arrived = time.monotonic()
            for request in message.verify_batch.requests:
                self.counters.requests += 1
                if request.redelivered:
                    self.counters.redelivered += 1
                self.pending.append((arrived + self.latency_s, request.seq,
                                     self.screen.code(request.transaction)))
        elif body == "error":
            self.raise_error(message.error)
        # A Pong, or a body newer than this vouch_pb2: nothing to do.

    def send_due(self, client: Client, now: float) -> None:
        due: List[Tuple[int, int]] = []
        while (self.pending and self.pending[0][0] <= now
               and len(due) < self.verdicts_per_frame):
            _, seq, code = self.pending.popleft()
            due.append((seq, code))
        client.verdicts(due)
        self.counters.verdicts += len(due)
        self.counters.hits += sum(1 for _, code in due if code != PASS)


def int_set(text: str) -> FrozenSet[int]:
    return frozenset(int(item) for item in text.split(",") if item.strip())


def upper_set(text: str) -> FrozenSet[str]:
    return frozenset(item.strip().upper() for item in text.split(",") if item.strip())


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7411)
    parser.add_argument("--verifier", default="sanctions",
                        help="the name in vouchd --remote_verifiers")
    parser.add_argument("--auth_token", default="")
    parser.add_argument("--worker_name", default="sanctions_verifier.py")
    parser.add_argument("--blocked_accounts", default="", help="comma list of account ids")
    parser.add_argument("--blocked_merchants", default="", help="comma list of merchant ids")
    parser.add_argument("--blocked_countries", default="",
                        help="comma list of ISO 3166-1 alpha-2 codes")
    parser.add_argument("--latency_ms", type=float, default=3.0,
                        help="simulated screening latency per request")
    parser.add_argument("--window", type=int, default=256,
                        help="requests held unanswered at most, 1..65536")
    parser.add_argument("--ping_interval_s", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not 1 <= args.window <= 65536:
        parser.error("--window must be in 1..65536")
    if args.latency_ms < 0:
        parser.error("--latency_ms must be >= 0")
    if args.ping_interval_s <= 0:
        parser.error("--ping_interval_s must be > 0")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    screen = Screen(int_set(args.blocked_accounts), int_set(args.blocked_merchants),
                    upper_set(args.blocked_countries))
    verifier = Verifier(args, screen)

    def stop(signum: int, _frame: object) -> None:
        verifier.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return verifier.run()


if __name__ == "__main__":
    sys.exit(main())
