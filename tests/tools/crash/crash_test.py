"""vouchd under ack policy `durable`, killed with SIGKILL at random moments while clients load it.

Method: each cycle starts vouchd (1 MiB journal segments, a snapshot every 20,000 records, so
recoveries start from snapshots and kills land while snapshots are written) on the same data directory, loads it over TCP from one client
(batches of transfers, recording every CONFIRMED answer), and kills the server with SIGKILL at a
random moment 0.2-1.2 s in. After each restart it checks, through the wire contract alone:
  - every transaction any earlier cycle saw CONFIRMED is known (Query finds it, with its seq);
  - resubmitting a sample of them returns the original confirmation (duplicate, same seq);
  - the ids are unique: no seq is claimed by two transactions.
At the end the server is stopped gracefully and `vouchd --check` audits the journal: each
confirmed transaction has exactly one outcome, money is conserved, clearing is empty.
The seed is printed; --seed replays the same kill schedule (the machine's timing still varies).
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time

import vouch_pb2
from vouch_client import Client, ConnectionClosed

ACCOUNTS = 1000


def start_server(vouchd, data_dir, port_file, log):
    if os.path.exists(port_file):
        os.remove(port_file)
    process = subprocess.Popen(
        [vouchd, "--port=0", "--port_file=" + port_file, "--accounts=%d" % ACCOUNTS,
         "--ack=durable", "--data_dir=" + data_dir,
         # Small segments and frequent snapshots, so kills also land around snapshots.
         "--segment_bytes_max=1048576", "--snapshot_interval_records=20000"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit("FAIL: vouchd exited at start (see its log)")
        if os.path.exists(port_file):
            text = open(port_file).read().strip()
            if text.isdigit():
                return process, int(text)
        time.sleep(0.05)
    process.kill()
    raise SystemExit("FAIL: vouchd did not start within 20 s")


def transfer(txn_id):
    txn = vouch_pb2.Transaction()
    txn.id = txn_id
    txn.source_account = 1 + txn_id % (ACCOUNTS - 1)
    txn.destination_account = 2 + txn_id % (ACCOUNTS - 1)
    txn.amount = 1 + txn_id % 97
    txn.currency = "USD"
    txn.merchant_id = 1
    txn.merchant_category = 5411
    txn.country = "GB"
    return txn


def load(port, first_id, confirmed, stop):
    """Submits batches until the connection dies; records CONFIRMED answers (id -> seq)."""
    next_id = first_id
    try:
        client = Client.connect("127.0.0.1", port)
        client.hello("crash-load")
        while not stop.is_set():
            batch = [transfer(i) for i in range(next_id, next_id + 20)]
            next_id += 20
            client.submit(batch)
            answered = 0
            while answered < len(batch):
                message = client.read_message(timeout=10)
                if message is None:
                    return next_id
                if message.HasField("confirmation"):
                    answered += 1
                    c = message.confirmation
                    if c.status == vouch_pb2.CONFIRM_STATUS_CONFIRMED:
                        confirmed[c.transaction_id] = c.seq
    except (ConnectionClosed, OSError):
        pass
    return next_id


def verify_known(port, confirmed, rng):
    client = Client.connect("127.0.0.1", port)
    client.hello("crash-check")
    welcome = client.read_message(timeout=10)  # The reply to an accepted Hello.
    assert welcome is not None and welcome.HasField("welcome"), "no Welcome"
    seqs = {}
    for txn_id, seq in confirmed.items():
        assert seqs.setdefault(seq, txn_id) == txn_id, "seq %d given to two ids" % seq
    ids = list(confirmed)
    for txn_id in ids:
        client.query(txn_id)
    for txn_id in ids:
        message = client.read_message(timeout=10)
        assert message is not None and message.HasField("status"), "no Status"
        status = message.status
        assert status.found, "confirmed id %d lost after a crash" % status.transaction_id
    sample = rng.sample(ids, min(50, len(ids)))
    client.submit([transfer(i) for i in sample])
    for txn_id in sample:
        message = client.read_message(timeout=10)
        assert message is not None and message.HasField("confirmation"), "no Confirmation"
        c = message.confirmation
        assert c.transaction_id == txn_id
        assert c.duplicate, "resubmitted id %d was not recognised" % txn_id
        assert c.seq == confirmed[txn_id], "id %d: seq %d, originally %d" % (
            txn_id, c.seq, confirmed[txn_id])
        assert c.status == vouch_pb2.CONFIRM_STATUS_CONFIRMED
    client.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vouchd", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print("crash test: seed %d, %d cycles (replay: --seed=%d)" % (args.seed, args.cycles, args.seed))
    data_dir = os.path.join(args.dir, "data")
    port_file = os.path.join(args.dir, "port")
    log = open(os.path.join(args.dir, "vouchd.log"), "ab")
    confirmed = {}
    next_id = 1
    for cycle in range(args.cycles):
        server, port = start_server(args.vouchd, data_dir, port_file, log)
        if confirmed:
            verify_known(port, confirmed, rng)
        stop = threading.Event()
        result = {}
        worker = threading.Thread(
            target=lambda: result.setdefault("next", load(port, next_id, confirmed, stop)))
        worker.start()
        time.sleep(rng.uniform(0.2, 1.2))
        server.send_signal(signal.SIGKILL)
        server.wait()
        stop.set()
        worker.join()
        next_id = result["next"] + 1000  # Skip ids that may be unanswered but journaled.
        print("cycle %d: killed; %d transactions confirmed so far" % (cycle + 1, len(confirmed)))
    server, port = start_server(args.vouchd, data_dir, port_file, log)
    verify_known(port, confirmed, rng)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0, "vouchd did not exit 0 on SIGTERM"
    check = subprocess.run(
        [args.vouchd, "--accounts=%d" % ACCOUNTS, "--ack=durable", "--data_dir=" + data_dir,
         "--check", "--snapshot_interval_records=0"], capture_output=True, text=True)
    print(check.stdout.strip())
    assert check.returncode == 0, "journal audit failed: " + check.stdout + check.stderr
    assert len(confirmed) > 0, "nothing was confirmed"
    print("PASS: %d cycles, %d confirmed transactions, none lost" % (args.cycles, len(confirmed)))


if __name__ == "__main__":
    main()
