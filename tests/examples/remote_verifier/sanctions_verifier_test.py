"""The Python sanctions verifier (examples/remote_verifier) against the real vouchd.

Method: sanctions_verifier_test.sh starts vouchd with `--remote_verifiers=sanctions:required`
and passes its port and the phase here; this script runs sanctions_verifier.py as a child
process, submits transactions over the wire with vouch_client and reads their Outcomes on the
submitting connection. The verifier is killed with SIGKILL (no goodbye: the server only sees the
connection drop) and started again. Each transaction has its own source account, so the demo
fraud rules (velocity, travel) pass every one, and the sanctions lists are disjoint from the demo
fraud lists, so every LATE_FAILED asserted here is the remote verifier's.

Phase "live" (vouchd --deadline_ms=3000):
  0. a name vouchd does not run ends the verifier at once, status 2 (no retry loop);
  1. alongside the built-in verifiers: clean transactions are VERIFIED (400 at once, more than
     one VerifyBatch);
  2. each kind of hit is LATE_FAILED, REASON_VERIFIER_REJECTED, VERIFIER_EMBEDDER_1, with the
     verifier's code in verifier_reason (1 account, 2 merchant, 3 country); an idle verifier
     pings and keeps its connection; SIGTERM ends it with status 0;
  3. killing the verifier mid-stream (it holds requests for 1 s, killed after 0.2 s) makes the
     undecided ones LATE_TIMEOUT (verifier VERIFIER_EMBEDDER_1, REASON_DEADLINE_EXCEEDED) at the
     deadline, and with no verifier at all new submissions still get Confirmations and Outcomes
     (LATE_TIMEOUT): nothing wedges.
Phase "restart" (vouchd --deadline_ms=20000):
  4. requests the killed verifier held, and transactions submitted while it is down, wait; a
     restarted verifier is given them (the held ones redelivered) and they are decided on its
     verdicts: the clean ones VERIFIED, a hit LATE_FAILED.
Timing bounds: 3 s (phase live) leaves a verdict of a live verifier ample room on a loaded
machine; the waits below are limits on a broken run, not expectations.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from typing import Dict, Iterable, List, Optional

import vouch_pb2
from vouch_client import Client

SETTLE_TIMEOUT_S = 15.0
BLOCKED_ACCOUNT = 777
BLOCKED_MERCHANT = 4242
BLOCKED_COUNTRY = "RU"
EMBEDDER_1 = vouch_pb2.VERIFIER_EMBEDDER_1


def fail(text: str) -> None:
    raise AssertionError(text)


def check(condition: bool, text: str) -> None:
    if not condition:
        fail(text)


def describe(message) -> str:
    return " ".join(str(message).split())


def transaction(txn_id: int, source: int, merchant: int = 1,
                country: str = "GB") -> vouch_pb2.Transaction:
    return vouch_pb2.Transaction(
        id=txn_id, source_account=source, destination_account=source % 1000 + 1, amount=100,
        currency="USD", merchant_id=merchant, merchant_category=5411, country=country,
        client_timestamp_ns=time.time_ns())


class Submitter:
    """One client session: submits, and keeps every Confirmation and Outcome it receives."""

    def __init__(self, port: int) -> None:
        self.client = Client.connect("127.0.0.1", port)
        self.client.hello()
        self.confirmations: Dict[int, vouch_pb2.Confirmation] = {}
        self.outcomes: Dict[int, List[vouch_pb2.Outcome]] = {}

    def pump(self, timeout: float) -> None:
        message = self.client.read_message(timeout=timeout)
        if message is None:
            return
        body = message.WhichOneof("body")
        if body == "confirmation":
            self.confirmations[message.confirmation.transaction_id] = message.confirmation
        elif body == "outcome":
            self.outcomes.setdefault(message.outcome.transaction_id, []).append(message.outcome)
        elif body == "error":
            fail(f"server error: {describe(message.error)}")

    def submit(self, transactions: List[vouch_pb2.Transaction]) -> None:
        """Submits and waits for every Confirmation; each must be CONFIRMED, not held."""
        self.client.submit(transactions)
        ids = [t.id for t in transactions]
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not all(i in self.confirmations for i in ids):
            check(time.monotonic() < deadline, f"no Confirmation for some of {ids}")
            self.pump(0.1)
        for i in ids:
            confirmation = self.confirmations[i]
            check(confirmation.status == vouch_pb2.CONFIRM_STATUS_CONFIRMED and
                  not confirmation.held, f"not confirmed: {describe(confirmation)}")

    def await_outcomes(self, ids: Iterable[int],
                       timeout: float = SETTLE_TIMEOUT_S) -> Dict[int, vouch_pb2.Outcome]:
        ids = list(ids)
        deadline = time.monotonic() + timeout
        while not all(i in self.outcomes for i in ids):
            check(time.monotonic() < deadline,
                  f"no Outcome within {timeout} s for ids "
                  f"{[i for i in ids if i not in self.outcomes]}")
            self.pump(0.1)
        return {i: self.outcomes[i][0] for i in ids}

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(max(0.0, deadline - time.monotonic()))

    def check_once_each(self) -> None:
        repeated = {i: o for i, o in self.outcomes.items() if len(o) != 1}
        check(not repeated, f"more than one Outcome: {repeated}")


class VerifierProcess:
    """sanctions_verifier.py as a child process; its stderr goes to a log file."""

    def __init__(self, script: str, port: int, log_path: str, latency_ms: float,
                 extra_args: Iterable[str] = ()) -> None:
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, script, f"--port={port}", "--verifier=sanctions",
             f"--blocked_accounts={BLOCKED_ACCOUNT}", f"--blocked_merchants={BLOCKED_MERCHANT}",
             f"--blocked_countries={BLOCKED_COUNTRY}", f"--latency_ms={latency_ms}",
             "--window=512", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.await_log(r"connected as VERIFIER_EMBEDDER_1 ")

    def text(self) -> str:
        with open(self.log_path) as log:
            return log.read()

    def await_log(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            match = re.search(pattern, self.text())
            if match:
                return match
            check(self.process.poll() is None,
                  f"the verifier exited ({self.process.returncode}): {self.text()}")
            check(time.monotonic() < deadline, f"no '{pattern}' in the log: {self.text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=5)
        self.log.close()

    def terminate(self) -> Dict[str, int]:
        """SIGTERM; it must exit 0 promptly, printing its counters."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=5)
        self.log.close()
        check(code == 0, f"the verifier exited {code} after SIGTERM: {self.text()}")
        line = self.await_log(r"stopped: (.*)").group(1)
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


def expect_failed(outcome: vouch_pb2.Outcome, code: int) -> None:
    check(outcome.kind == vouch_pb2.OUTCOME_KIND_LATE_FAILED and
          outcome.reason == vouch_pb2.REASON_VERIFIER_REJECTED and
          outcome.verifier == EMBEDDER_1 and outcome.verifier_reason == code,
          f"expected LATE_FAILED VERIFIER_REJECTED EMBEDDER_1 code {code}: {describe(outcome)}")


def expect_verified(outcomes: Dict[int, vouch_pb2.Outcome]) -> None:
    for outcome in outcomes.values():
        check(outcome.kind == vouch_pb2.OUTCOME_KIND_VERIFIED,
              f"expected VERIFIED: {describe(outcome)}")


def expect_timeout(outcome: vouch_pb2.Outcome) -> None:
    check(outcome.kind == vouch_pb2.OUTCOME_KIND_LATE_TIMEOUT and
          outcome.verifier == EMBEDDER_1 and
          outcome.reason == vouch_pb2.REASON_DEADLINE_EXCEEDED,
          f"expected LATE_TIMEOUT EMBEDDER_1: {describe(outcome)}")


def expect_unknown_verifier_exits(args: argparse.Namespace) -> None:
    """A name vouchd does not run: the verifier gives up at once with status 2."""
    result = subprocess.run([sys.executable, args.verifier, f"--port={args.port}",
                             "--verifier=no-such-verifier"], capture_output=True, text=True,
                            timeout=10)
    check(result.returncode == 2 and "ERROR_CODE_UNKNOWN_VERIFIER" in result.stderr,
          f"an unknown verifier name: status {result.returncode}, stderr {result.stderr!r}")


def phase_live(args: argparse.Namespace) -> None:
    expect_unknown_verifier_exits(args)
    print("0. an unknown verifier name ends the verifier with status 2 (UNKNOWN_VERIFIER)")
    submitter = Submitter(args.port)
    verifier = VerifierProcess(args.verifier, args.port, f"{args.log_dir}/verifier-1.log", 3,
                               ["--ping_interval_s=0.2"])

    # 1. Clean transactions pass the built-in verifiers and the remote one: 400 in one Submit,
    # more than one VerifyBatch holds (batch_max is 256 at most).
    clean = [transaction(1000 + n, source=n) for n in range(1, 401)]
    submitter.submit(clean)
    expect_verified(submitter.await_outcomes(t.id for t in clean))
    print("1. 400 clean transactions VERIFIED with the remote verifier running")

    # 2. A hit of each list: LATE_FAILED with the verifier's code. Then idle for 0.6 s: it pings
    # (every 0.2 s here), and the server keeps the connection.
    hits = {2001: (transaction(2001, source=BLOCKED_ACCOUNT), 1),
            2002: (transaction(2002, source=401, merchant=BLOCKED_MERCHANT), 2),
            2003: (transaction(2003, source=402, country=BLOCKED_COUNTRY), 3)}
    submitter.submit([t for t, _ in hits.values()])
    outcomes = submitter.await_outcomes(hits)
    for txn_id, (_, code) in hits.items():
        expect_failed(outcomes[txn_id], code)
    time.sleep(0.6)
    after_idle = transaction(2004, source=403)
    submitter.submit([after_idle])
    expect_verified(submitter.await_outcomes([after_idle.id]))
    counters = verifier.terminate()
    check(counters["verdicts"] == 404 and counters["hits"] == 3 and counters["pings"] >= 2 and
          counters["connections"] == 1, f"counters: {counters}")
    print(f"2. account, merchant and country hits LATE_FAILED with codes 1, 2, 3; pings kept "
          f"the idle connection; the verifier exited 0 on SIGTERM ({counters})")

    # 3. Killed mid-stream: a slow verifier holds the requests when it dies.
    verifier = VerifierProcess(args.verifier, args.port, f"{args.log_dir}/verifier-2.log", 1000)
    stream = [transaction(3000 + n, source=500 + n) for n in range(1, 41)]
    submitter.submit(stream)
    time.sleep(0.2)
    verifier.kill()
    outcomes = submitter.await_outcomes(t.id for t in stream)
    timeouts = 0
    for outcome in outcomes.values():
        if outcome.kind != vouch_pb2.OUTCOME_KIND_VERIFIED:  # Only a starved run answers some.
            expect_timeout(outcome)
            timeouts += 1
    check(timeouts > 0, "no LATE_TIMEOUT after the verifier was killed holding its requests")
    # No verifier at all now: nothing wedges, every new submission is answered and decided.
    orphans = [transaction(4000 + n, source=600 + n) for n in range(1, 21)]
    submitter.submit(orphans)
    for outcome in submitter.await_outcomes(t.id for t in orphans).values():
        expect_timeout(outcome)
    submitter.check_once_each()
    print(f"3. killed mid-stream: {timeouts} of 40 LATE_TIMEOUT; with no verifier 20 new "
          f"submissions were confirmed and timed out")


def phase_restart(args: argparse.Namespace) -> None:
    submitter = Submitter(args.port)
    verifier = VerifierProcess(args.verifier, args.port, f"{args.log_dir}/verifier-3.log", 1000)
    held = [transaction(5000 + n, source=400 + n) for n in range(1, 11)]
    submitter.submit(held)
    time.sleep(0.2)
    verifier.kill()  # Holding all ten (1 s latency): the server must hand them on.
    down = [transaction(6000 + n, source=500 + n) for n in range(1, 21)]
    down.append(transaction(6100, source=BLOCKED_ACCOUNT))
    submitter.submit(down)
    submitter.drain(1.0)
    check(not submitter.outcomes, f"decided without a verifier, before the deadline: "
          f"{[describe(o) for l in submitter.outcomes.values() for o in l]}")

    verifier = VerifierProcess(args.verifier, args.port, f"{args.log_dir}/verifier-4.log", 3)
    outcomes = submitter.await_outcomes([t.id for t in held + down])
    expect_failed(outcomes.pop(6100), 1)
    expect_verified(outcomes)
    submitter.check_once_each()
    counters = verifier.terminate()
    check(counters["redelivered"] >= len(held) and counters["requests"] >= len(held + down),
          f"the restarted verifier's counters: {counters}")
    print(f"4. restarted verifier decided the 31 waiting transactions (30 VERIFIED, 1 "
          f"LATE_FAILED); {counters['redelivered']} were redelivered")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--phase", choices=["live", "restart"], required=True)
    parser.add_argument("--verifier", required=True, help="path of sanctions_verifier.py")
    parser.add_argument("--log_dir", default=os.environ.get("TEST_TMPDIR", "/tmp"))
    args = parser.parse_args()
    {"live": phase_live, "restart": phase_restart}[args.phase](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
