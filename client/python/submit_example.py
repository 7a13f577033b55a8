"""Submits a few transactions to a running vouchd and prints every answer, one per line.

    PYTHONPATH=bazel-bin/proto:client/python /usr/bin/python3 client/python/submit_example.py \
        --port=7411 --count=5

Exits 0 once every transaction is answered and every confirmed one has its Outcome, 1 if the
server refuses the session or the answers do not all come within --timeout_s.
"""

import argparse
import sys
import time

import vouch_pb2
from vouch_client import Client


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7411)
    parser.add_argument("--count", type=int, default=5, help="transactions to submit")
    # Ids are the idempotency key: a fresh default per run, so a rerun is not a duplicate.
    parser.add_argument("--first_id", type=int, default=time.time_ns() // 1000)
    parser.add_argument("--source_account", type=int, default=1)
    parser.add_argument("--destination_account", type=int, default=2)
    parser.add_argument("--amount", type=int, default=1250, help="minor units (cents)")
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--timeout_s", type=float, default=10.0)
    return parser.parse_args()


def one_line(message: vouch_pb2.ServerMessage) -> str:
    body = message.WhichOneof("body")
    if body is None:
        return "(a message this vouch_pb2 does not know)"
    return f"{body}: " + " ".join(str(getattr(message, body)).split())


def main() -> int:
    args = parse_args()
    transactions = [
        vouch_pb2.Transaction(
            id=args.first_id + i, source_account=args.source_account,
            destination_account=args.destination_account, amount=args.amount,
            currency=args.currency, merchant_id=1, merchant_category=5411, country="GB",
            client_timestamp_ns=time.time_ns())
        for i in range(args.count)
    ]
    with Client.connect(args.host, args.port) as client:
        client.hello(client_name="submit-example")
        client.submit(transactions)
        # Ids whose final answer is still due: an Outcome if confirmed, else the Confirmation.
        awaited = {t.id for t in transactions}
        deadline = time.monotonic() + args.timeout_s
        while awaited and time.monotonic() < deadline:
            message = client.read_message(timeout=deadline - time.monotonic())
            if message is None:
                break
            print(one_line(message))
            body = message.WhichOneof("body")
            if body == "error":
                return 1
            if body == "confirmation":
                confirmation = message.confirmation
                if (confirmation.status != vouch_pb2.CONFIRM_STATUS_CONFIRMED
                        or confirmation.held):
                    # No Outcome follows: refused, or held (this was its final answer).
                    awaited.discard(confirmation.transaction_id)
            elif body == "outcome":
                awaited.discard(message.outcome.transaction_id)
    if awaited:
        print(f"no final answer within {args.timeout_s} s for ids {sorted(awaited)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
