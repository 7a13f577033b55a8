"""Checks the Python client's framing against protobuf's own varint code, with no server.

Method: every frame the client writes must equal protobuf's reference framing (the encoder's
varint of the byte size, then SerializeToString), and every byte stream built that way must
come back as the same messages however it is cut into reads: one byte at a time, at random
points, and across a real socket with pauses mid-varint and mid-payload. Bad input (long or
oversized varints, frames above the maximum, payloads that do not parse, a close mid-frame)
must raise, never be skipped.
"""

import random
import socket
import threading
import time
import unittest

from google.protobuf.internal import decoder as pb_decoder
from google.protobuf.internal import encoder as pb_encoder

import vouch_client
import vouch_pb2
from vouch_client import Client, ConnectionClosed, FrameDecoder, FrameError

# Both sides of every varint length boundary, up to the largest varint32.
VARINT_VALUES = [0, 1, 127, 128, 255, 300, 16383, 16384, (1 << 21) - 1, 1 << 21,
                 (1 << 28) - 1, 1 << 28, (1 << 32) - 1]


def reference_frame(message) -> bytes:
    """A frame as protobuf's writeDelimitedTo / SerializeDelimitedToZeroCopyStream writes it."""
    return pb_encoder._VarintBytes(message.ByteSize()) + message.SerializeToString()


def transaction(txn_id: int) -> vouch_pb2.Transaction:
    return vouch_pb2.Transaction(
        id=txn_id, source_account=1, destination_account=2, amount=100 + txn_id,
        currency="USD", merchant_id=1, merchant_category=5411, country="GB")


def sample_server_messages():
    """Server messages of every body type, from empty to a 3-byte length prefix."""
    history = [vouch_pb2.StateChange(state=vouch_pb2.STATE_KIND_CONFIRMED, unix_ns=i)
               for i in range(4000)]
    return [
        vouch_pb2.ServerMessage(),  # Zero-length payload: a frame of just b"\x00".
        vouch_pb2.ServerMessage(confirmation=vouch_pb2.Confirmation(
            transaction_id=7, seq=1, status=vouch_pb2.CONFIRM_STATUS_CONFIRMED)),
        vouch_pb2.ServerMessage(outcome=vouch_pb2.Outcome(
            transaction_id=7, seq=1, kind=vouch_pb2.OUTCOME_KIND_LATE_FAILED,
            verifier=vouch_pb2.VERIFIER_FRAUD, reason=vouch_pb2.REASON_VELOCITY_COUNT,
            currency="USD", amount=-1)),
        vouch_pb2.ServerMessage(status=vouch_pb2.Status(transaction_id=7, found=True,
                                                        history=history)),
        vouch_pb2.ServerMessage(error=vouch_pb2.Error(
            code=vouch_pb2.ERROR_CODE_HELLO_REQUIRED, message="x" * 200)),
        vouch_pb2.ServerMessage(pong=vouch_pb2.Pong(nonce=(1 << 64) - 1, client_time_ns=-5)),
    ]


def decode_all(chunks, frame_bytes_max=vouch_client.FRAME_BYTES_MAX_DEFAULT):
    """Feeds the chunks to a FrameDecoder and returns every payload it yields."""
    frame_decoder = FrameDecoder(frame_bytes_max)
    payloads = []
    for chunk in chunks:
        frame_decoder.feed(chunk)
        while (payload := frame_decoder.next_payload()) is not None:
            payloads.append(payload)
    return payloads, frame_decoder.buffered_bytes


def random_cuts(data: bytes, rng: random.Random):
    position = 0
    while position < len(data):
        size = rng.randint(1, 40)
        yield data[position:position + size]
        position += size


class VarintTest(unittest.TestCase):
    def test_encode_matches_protobuf(self):
        for value in VARINT_VALUES:
            self.assertEqual(vouch_client.encode_varint32(value), pb_encoder._VarintBytes(value),
                             f"varint of {value}")

    def test_decode_matches_protobuf(self):
        for value in VARINT_VALUES:
            data = pb_encoder._VarintBytes(value) + b"\x01tail"
            expected_value, expected_end = pb_decoder._DecodeVarint32(data, 0)
            self.assertEqual(vouch_client.decode_varint32(data), (expected_value, expected_end),
                             f"varint of {value}")

    def test_encode_refuses_values_outside_32_bits(self):
        for value in (-1, 1 << 32):
            with self.assertRaises(ValueError, msg=f"varint32 of {value}"):
                vouch_client.encode_varint32(value)

    def test_decode_reports_incomplete_varint(self):
        complete = pb_encoder._VarintBytes((1 << 28) + 5)
        for end in range(len(complete)):
            self.assertIsNone(vouch_client.decode_varint32(complete[:end]))

    def test_decode_refuses_long_or_oversized_varints(self):
        for data in (b"\x80\x80\x80\x80\x80\x01",  # Six bytes: protobuf's int32 sign extension.
                     b"\xff\xff\xff\xff\x1f"):     # Five bytes, but 2^33 - 1.
            with self.assertRaises(FrameError, msg=data.hex()):
                vouch_client.decode_varint32(data)


class FrameTest(unittest.TestCase):
    def test_encode_frame_matches_protobuf_delimited(self):
        submit = vouch_pb2.ClientMessage(submit=vouch_pb2.Submit(
            transactions=[transaction(i) for i in range(1, 600)]))
        for message in [vouch_pb2.ClientMessage(), submit] + sample_server_messages():
            self.assertEqual(vouch_client.encode_frame(message, 1 << 20),
                             reference_frame(message), str(message)[:80])

    def test_encode_frame_refuses_a_frame_above_the_maximum(self):
        message = vouch_pb2.ServerMessage(error=vouch_pb2.Error(message="x" * 100))
        with self.assertRaises(ValueError):
            vouch_client.encode_frame(message, frame_bytes_max=message.ByteSize() - 1)
        vouch_client.encode_frame(message, frame_bytes_max=message.ByteSize())

    def test_decoder_yields_the_same_payloads_however_the_stream_is_cut(self):
        messages = sample_server_messages()
        stream = b"".join(reference_frame(m) for m in messages)
        expected = [m.SerializeToString() for m in messages]
        rng = random.Random(42)
        cuts = {
            "whole": [stream],
            "bytewise": [stream[i:i + 1] for i in range(len(stream))],
            "random": list(random_cuts(stream, rng)),
        }
        for name, chunks in cuts.items():
            payloads, left = decode_all(chunks, frame_bytes_max=1 << 20)
            self.assertEqual(payloads, expected, f"cut {name}")
            self.assertEqual(left, 0, f"cut {name}: bytes left over")

    def test_decoder_refuses_a_length_above_the_maximum_before_its_payload(self):
        frame_decoder = FrameDecoder(frame_bytes_max=100)
        frame_decoder.feed(pb_encoder._VarintBytes(100) + b"a" * 100)
        self.assertEqual(frame_decoder.next_payload(), b"a" * 100)
        frame_decoder.feed(pb_encoder._VarintBytes(101))  # No payload bytes sent yet.
        with self.assertRaises(FrameError):
            frame_decoder.next_payload()
        frame_decoder.feed(b"b" * 101)
        with self.assertRaises(FrameError, msg="the error must be sticky"):
            frame_decoder.next_payload()


class SocketTest(unittest.TestCase):
    """The Client over a socketpair; the far end plays the server."""

    def setUp(self):
        self.client_sock, self.server_sock = socket.socketpair()
        self.client = Client(self.client_sock)

    def tearDown(self):
        self.client.close()
        self.server_sock.close()

    def send_slowly(self, data: bytes, cut_points):
        """Sends data from a thread, pausing at each cut point so reads see partial frames."""
        def run():
            previous = 0
            for point in list(cut_points) + [len(data)]:
                self.server_sock.sendall(data[previous:point])
                previous = point
                time.sleep(0.02)
        sender = threading.Thread(target=run)
        sender.start()
        return sender

    def test_read_message_reassembles_frames_split_across_reads(self):
        messages = sample_server_messages()
        frames = [reference_frame(m) for m in messages]
        stream = b"".join(frames)
        # Cut inside the 3-byte varint of the Status frame and inside several payloads.
        status_start = sum(len(f) for f in frames[:3])
        cuts = [1, 5, status_start + 1, status_start + 2, status_start + 500, len(stream) - 3]
        sender = self.send_slowly(stream, sorted(cuts))
        received = [self.client.read_message(timeout=5.0) for _ in messages]
        sender.join()
        self.assertEqual(received, messages)

    def test_timeout_keeps_a_partial_frame_for_the_next_read(self):
        frame = reference_frame(sample_server_messages()[2])
        self.server_sock.sendall(frame[:4])
        self.assertIsNone(self.client.read_message(timeout=0.05))
        self.assertIsNone(self.client.read_message(timeout=0))
        self.server_sock.sendall(frame[4:])
        self.assertEqual(self.client.read_message(timeout=5.0), sample_server_messages()[2])

    def test_close_mid_frame_raises_connection_closed(self):
        frame = reference_frame(sample_server_messages()[1])
        self.server_sock.sendall(frame + frame[:3])
        self.server_sock.shutdown(socket.SHUT_WR)
        self.assertEqual(self.client.read_message(timeout=5.0), sample_server_messages()[1])
        with self.assertRaisesRegex(ConnectionClosed, "middle of a frame"):
            self.client.read_message(timeout=5.0)

    def test_unparsable_payload_raises_frame_error(self):
        self.server_sock.sendall(b"\x02\x0a\x05")  # Field 1 claims 5 bytes; 1 follows.
        with self.assertRaises(FrameError):
            self.client.read_message(timeout=5.0)

    def test_requests_are_protobuf_delimited_client_messages(self):
        self.client.hello(client_name="till-7", auth_token="t", resume=True, resume_from_seq=9,
                          epoch=3)
        self.client.submit(transaction(i) for i in (1, 2))
        self.client.query(2)
        self.client.ping(nonce=5, client_time_ns=6)
        self.client.subscribe(include_verified=True)
        expected = [
            vouch_pb2.ClientMessage(hello=vouch_pb2.Hello(
                client_name="till-7", auth_token="t", resume=True, resume_from_seq=9, epoch=3)),
            vouch_pb2.ClientMessage(submit=vouch_pb2.Submit(
                transactions=[transaction(1), transaction(2)])),
            vouch_pb2.ClientMessage(query=vouch_pb2.Query(transaction_id=2)),
            vouch_pb2.ClientMessage(ping=vouch_pb2.Ping(nonce=5, client_time_ns=6)),
            vouch_pb2.ClientMessage(subscribe=vouch_pb2.Subscribe(include_verified=True)),
        ]
        expected_bytes = b"".join(reference_frame(m) for m in expected)
        self.assertEqual(self.read_exactly(len(expected_bytes)), expected_bytes)

    def test_empty_submit_is_refused_before_sending(self):
        with self.assertRaises(ValueError):
            self.client.submit([])

    def test_resume_arguments_are_checked_before_sending(self):
        with self.assertRaisesRegex(ValueError, "client_name"):
            self.client.hello(resume=True)
        with self.assertRaisesRegex(ValueError, "resume=True"):
            self.client.hello(client_name="till-7", resume_from_seq=5)

    def test_welcome_is_kept_and_its_batch_maximum_enforced(self):
        welcome = vouch_pb2.ServerMessage(welcome=vouch_pb2.Welcome(
            epoch=77, resuming=True, submit_batch_max=2, frame_bytes_max=65536))
        self.server_sock.sendall(reference_frame(welcome))
        self.assertEqual(self.client.read_message(timeout=5.0), welcome)
        self.assertEqual(self.client.welcome.epoch, 77)
        with self.assertRaisesRegex(ValueError, "batch maximum of 2"):
            self.client.submit(transaction(i) for i in (1, 2, 3))
        self.assertEqual(self.client.submit(transaction(i) for i in (1, 2)), 2)

    def test_the_default_batch_maximum_of_longest_transactions_fits_the_default_frame(self):
        longest = vouch_pb2.Transaction(
            id=2**64 - 1, source_account=2**64 - 1, destination_account=2**64 - 2, amount=-1,
            currency="USD", merchant_id=2**64 - 1, merchant_category=2**32 - 1, country="GB",
            device_id=2**64 - 1, client_timestamp_ns=-1)
        batch = vouch_pb2.ClientMessage(submit=vouch_pb2.Submit(
            transactions=[longest] * vouch_client.SUBMIT_BATCH_MAX_DEFAULT))
        self.assertLessEqual(batch.ByteSize(), vouch_client.FRAME_BYTES_MAX_DEFAULT)

    def read_exactly(self, size: int) -> bytes:
        self.server_sock.settimeout(5.0)
        data = b""
        while len(data) < size:
            chunk = self.server_sock.recv(size - len(data))
            self.assertTrue(chunk, "client side closed early")
            data += chunk
        return data


if __name__ == "__main__":
    unittest.main(verbosity=2)
