"""A small client for the vouch wire protocol (vouch.v1), over a plain TCP socket.

It exists to show that the contract in proto/vouch.proto is language-neutral: nothing here
knows about the C++ server beyond what the .proto file states.

Framing: every frame is a varint32 byte length followed by one serialized message, the framing
of protobuf's C++ delimited_message_util and Java's writeDelimitedTo / parseDelimitedFrom. The
client writes ClientMessage frames and reads ServerMessage frames.

Usage (vouch_pb2 is generated from proto/vouch.proto; see README.md):

    with Client.connect("127.0.0.1", 7411) as client:
        client.hello(client_name="till-7")
        client.submit([vouch_pb2.Transaction(id=1, source_account=1, destination_account=2,
                                             amount=250, currency="USD")])
        message = client.read_message(timeout=1.0)  # the Welcome (also in client.welcome)
        message = client.read_message(timeout=1.0)  # a ServerMessage holding a Confirmation

Thread safety: a Client is not thread safe; use each one from one thread at a time (reads and
writes both set the socket's timeout).
"""

from __future__ import annotations

import socket
import time
from typing import Iterable, Optional, Tuple, Union

from google.protobuf import message as protobuf_message

import vouch_pb2

# The server's default frame_bytes_max (engine/server/options.h). Frames above it are refused
# in both directions: the server would close the connection on one we sent, and one we receive
# that large means the stream is not what we think it is.
FRAME_BYTES_MAX_DEFAULT = 64 * 1024

# The server's default submit_batch_max. A Submit of this many realistic transactions (120 bytes
# each at most, attributes included) fits in one default frame. The server states the limits in force in its Welcome,
# the reply to Hello; Client.submit keeps to Welcome.submit_batch_max once it has seen one.
SUBMIT_BATCH_MAX_DEFAULT = 512

# Accounts in one CreateAccounts (the server refuses more with ERROR_CODE_INVALID_MESSAGE).
CREATE_ACCOUNTS_MAX = 512

# A varint32 takes at most 5 bytes (7 payload bits each); longer is malformed, as for the server.
VARINT32_BYTES_MAX = 5
_UINT32_MAX = (1 << 32) - 1

# Bytes asked of recv() at a time: large enough for a burst of Confirmations in one call.
_RECV_BYTES = 64 * 1024

Buffer = Union[bytes, bytearray, memoryview]


class FrameError(Exception):
    """The peer sent bytes that are not a valid frame: a length above the maximum, a malformed
    varint, or a payload that does not parse. The stream cannot be resynchronised after this,
    so the connection must be closed."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection (after an Error, at shutdown, or because it failed)."""


# ---------------------------------------------------------------------------------------------
# Framing
# ---------------------------------------------------------------------------------------------


def encode_varint32(value: int) -> bytes:
    """Returns the base-128 varint encoding of `value`, least significant group first."""
    if not 0 <= value <= _UINT32_MAX:
        raise ValueError(f"varint32 out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint32(data: Buffer, pos: int = 0) -> Optional[Tuple[int, int]]:
    """Decodes the varint32 at data[pos:].

    Returns (value, bytes used), or None if the bytes end before the varint does.
    Raises FrameError if it is longer than 5 bytes or does not fit 32 bits.
    """
    value = 0
    for i in range(VARINT32_BYTES_MAX):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if value > _UINT32_MAX:
                raise FrameError(f"varint length prefix above 32 bits: {value}")
            return value, i + 1
    raise FrameError(f"varint length prefix longer than {VARINT32_BYTES_MAX} bytes")


def encode_frame(message: protobuf_message.Message,
                 frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> bytes:
    """Returns one frame holding `message`: varint32 length, then the serialized bytes.

    Raises ValueError if the serialized message is longer than frame_bytes_max.
    """
    payload = message.SerializeToString()
    if len(payload) > frame_bytes_max:
        raise ValueError(f"{type(message).__name__} is {len(payload)} bytes serialized, above "
                         f"the frame maximum of {frame_bytes_max}; send a smaller batch")
    return encode_varint32(len(payload)) + payload


class FrameDecoder:
    """Splits a byte stream into frame payloads, however the stream was cut into reads.

    feed() the bytes as they arrive; next_payload() returns each complete payload once. A bad
    length prefix is reported before its payload is buffered, so memory stays bounded by
    frame_bytes_max plus one read. Errors are sticky: after one, every call raises it again.
    """

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> None:
        if frame_bytes_max <= 0:
            raise ValueError(f"frame_bytes_max must be positive, not {frame_bytes_max}")
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._error: Optional[FrameError] = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a payload (an incomplete frame)."""
        return len(self._buffer)

    def feed(self, data: Buffer) -> None:
        """Appends bytes received from the stream."""
        self._buffer += data

    def next_payload(self) -> Optional[bytes]:
        """Returns the next complete frame's payload, or None until more bytes arrive.

        Raises FrameError for a malformed varint or a length above frame_bytes_max.
        """
        if self._error is not None:
            raise self._error
        try:
            prefix = decode_varint32(self._buffer)
        except FrameError as error:
            self._error = error
            raise
        if prefix is None:
            return None
        length, prefix_bytes = prefix
        if length > self._frame_bytes_max:
            self._error = FrameError(
                f"frame of {length} bytes is above the maximum of {self._frame_bytes_max}")
            raise self._error
        end = prefix_bytes + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[prefix_bytes:end])
        del self._buffer[:end]  # CPython trims a bytearray's front without copying the rest.
        return payload


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------


class Client:
    """One connection to a vouch server.

    Requests are fire-and-forget writes; every answer (Confirmation, Outcome, Status, Pong,
    Error) comes back through read_message(), in the order the server sent it. Matching
    answers to requests is the caller's job: Confirmations arrive in submission order,
    Outcomes whenever they are decided. A request raises ConnectionClosed if the server has
    closed the connection, and TimeoutError if it could not be written within send_timeout.
    """

    def __init__(self, sock: socket.socket, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
                 send_timeout: Optional[float] = 10.0) -> None:
        """Wraps a connected socket. send_timeout bounds each write (None: wait forever), so a
        server that stopped reading cannot hang the caller."""
        self._sock = sock
        self._frame_bytes_max = frame_bytes_max
        self._send_timeout = send_timeout
        self._decoder = FrameDecoder(frame_bytes_max)
        # The server's reply to hello(), once read_message() has returned it: the epoch that
        # goes with every saved resume position, and the limits in force.
        self.welcome: Optional[vouch_pb2.Welcome] = None

    @classmethod
    def connect(cls, host: str, port: int, connect_timeout: float = 5.0,
                frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> "Client":
        """Opens a TCP connection with TCP_NODELAY: frames are small and latency-bound, so
        Nagle's algorithm would only add delay."""
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, frame_bytes_max)

    def close(self) -> None:
        """Closes the connection. Safe to call more than once."""
        self._sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Requests -------------------------------------------------------------------------------

    def hello(self, client_name: str = "", auth_token: str = "", resume: bool = False,
              resume_from_seq: int = 0, epoch: int = 0) -> None:
        """Opens the session; must be the first request. An accepted Hello is answered with a
        Welcome (see self.welcome); a refused one with an Error, then close. A non-empty
        client_name names a session that outlives this connection.

        resume asks for the session's Outcomes above resume_from_seq that the server still
        retains (resume_from_seq 0: every one). Save the highest Outcome.seq seen with the
        Welcome's epoch and pass both back here; the server refuses a position above anything
        it issued (ERROR_CODE_RESUME_AHEAD), and ignores one from another epoch (it resends
        everything retained, and its Welcome says resume_from_seq 0: reset the saved
        position)."""
        if resume and not client_name:
            raise ValueError("resume needs a client_name: only named sessions can be resumed")
        if not resume and (resume_from_seq or epoch):
            raise ValueError("resume_from_seq and epoch need resume=True")
        self._send(vouch_pb2.ClientMessage(hello=vouch_pb2.Hello(
            client_name=client_name, auth_token=auth_token, resume=resume,
            resume_from_seq=resume_from_seq, epoch=epoch)))

    def submit(self, transactions: Iterable[vouch_pb2.Transaction]) -> int:
        """Sends the transactions as one Submit (one frame) and returns how many were sent.
        Each gets exactly one Confirmation, in this order."""
        submit = vouch_pb2.Submit(transactions=transactions)
        if not submit.transactions:
            # The server would answer ERROR_CODE_INVALID_MESSAGE and close the connection.
            raise ValueError("submit needs at least one transaction")
        if self.welcome is not None and len(submit.transactions) > self.welcome.submit_batch_max:
            raise ValueError(f"{len(submit.transactions)} transactions in one submit, above the "
                             f"server's batch maximum of {self.welcome.submit_batch_max}")
        self._send(vouch_pb2.ClientMessage(submit=submit))
        return len(submit.transactions)

    def query(self, transaction_id: int) -> None:
        """Asks for a transaction's state history; answered with a Status."""
        self._send(vouch_pb2.ClientMessage(query=vouch_pb2.Query(transaction_id=transaction_id)))

    def ping(self, nonce: int, client_time_ns: Optional[int] = None) -> None:
        """Sends a Ping; answered with a Pong echoing nonce and client_time_ns (default: now)."""
        if client_time_ns is None:
            client_time_ns = time.time_ns()
        self._send(vouch_pb2.ClientMessage(
            ping=vouch_pb2.Ping(nonce=nonce, client_time_ns=client_time_ns)))

    def read_balances(self, accounts: Iterable[int] = ()) -> None:
        """Asks for one consistent snapshot of the balances of `accounts` (empty: every account,
        up to 1024) and of each currency's total and clearing balance; answered with Balances,
        whose result is BALANCES_RESULT_OK or a retry (BUSY, TIMEOUT, UNAVAILABLE)."""
        request = vouch_pb2.ReadBalances()
        request.accounts.extend(accounts)
        self._send(vouch_pb2.ClientMessage(read_balances=request))

    # Accounts (see "Accounts" in vouch.proto). Each request gets one answer, in order of its
    # kind: AccountsCreated, AccountInfo or AccountChanged. The server may take up to 5 s per
    # request (it waits for its journal), so read the answer with a timeout above that.

    def create_accounts(self, accounts: Iterable[vouch_pb2.Account]) -> int:
        """Creates accounts, at most CREATE_ACCOUNTS_MAX per call; answered with one
        AccountsCreated holding a result per account, in order. Idempotent per account: resend
        the same accounts after a RETRY result or a lost answer. Returns how many were sent."""
        request = vouch_pb2.CreateAccounts()
        request.accounts.extend(accounts)
        if not 1 <= len(request.accounts) <= CREATE_ACCOUNTS_MAX:
            raise ValueError(f"create_accounts takes 1..{CREATE_ACCOUNTS_MAX} accounts, "
                             f"not {len(request.accounts)}")
        self._send(vouch_pb2.ClientMessage(create_accounts=request))
        return len(request.accounts)

    def lookup_account(self, account: int) -> None:
        """Asks for an account's fields, state, balance and change history; answered with an
        AccountInfo (result OK, NOT_FOUND or RETRY)."""
        self._send(vouch_pb2.ClientMessage(
            lookup_account=vouch_pb2.LookupAccount(account=account)))

    def change_account(self, account: int, action: int,
                       limits: Optional[vouch_pb2.AccountLimits] = None) -> None:
        """Freezes, unfreezes, closes (vouch_pb2.ACCOUNT_ACTION_*) or, with SET_LIMITS and
        `limits`, re-limits an account; answered with AccountChanged."""
        request = vouch_pb2.ChangeAccount(account=account, action=action)
        if limits is not None:
            request.limits.CopyFrom(limits)
        self._send(vouch_pb2.ClientMessage(change_account=request))
    def query_account(self, account: int, since_unix_ns: int = 0, until_unix_ns: int = 0,
                      limit: int = 0, before_seq: int = 0) -> None:
        """Asks for one page of `account`'s recent transactions (debits and credits), newest
        first, each with its state now; answered with AccountTransactions. Times are Unix ns on
        the server's clock, inclusive, on the received time (0: open end); limit 0 means the
        maximum, 500. When the answer says `more`, ask again with before_seq set to its
        next_before_seq. What is kept, and for how long: QueryAccount in vouch.proto."""
        self._send(vouch_pb2.ClientMessage(query_account=vouch_pb2.QueryAccount(
            account=account, since_unix_ns=since_unix_ns, until_unix_ns=until_unix_ns,
            limit=limit, before_seq=before_seq)))

    def subscribe(self, include_verified: bool = False) -> None:
        """Joins the late-failure feed: an Outcome for every transaction (of any session) that
        fails or times out after confirmation, and with include_verified the VERIFIED ones."""
        self._send(vouch_pb2.ClientMessage(
            subscribe=vouch_pb2.Subscribe(include_verified=include_verified)))

    # Remote verifiers (see "Remote verifiers" in vouch.proto). A connection whose first
    # request is verifier_hello() is a verifier connection for its whole life: it receives
    # VerifyBatch messages and may send only verdicts() and ping().

    def verifier_hello(self, verifier: str, auth_token: str = "", window: int = 0,
                       worker_name: str = "") -> None:
        """Opens a verifier connection for the server's remote verifier `verifier`; answered
        with a VerifierWelcome, or an Error (ERROR_CODE_UNKNOWN_VERIFIER, NOT_AUTHENTICATED)
        and close. window: requests held unanswered at most, 1..65536 (0: the server's 256)."""
        if not 0 <= window <= 65536:
            raise ValueError(f"window must be in 0..65536, not {window}")
        self._send(vouch_pb2.ClientMessage(verifier_hello=vouch_pb2.VerifierHello(
            verifier=verifier, auth_token=auth_token, window=window, worker_name=worker_name)))

    def verdicts(self, verdicts: Iterable[Tuple[int, int]]) -> int:
        """Sends (seq, code) pairs as one Verdicts frame (code 0 passes, 1..65535 fails) and
        returns how many were sent. Split long lists: a frame holds about 3,800 verdicts."""
        request = vouch_pb2.Verdicts(
            verdicts=[vouch_pb2.Verdict(seq=seq, code=code) for seq, code in verdicts])
        if not request.verdicts:
            raise ValueError("verdicts needs at least one verdict")
        self._send(vouch_pb2.ClientMessage(verdicts=request))
        return len(request.verdicts)

    def _send(self, request: vouch_pb2.ClientMessage) -> None:
        frame = encode_frame(request, self._frame_bytes_max)
        self._sock.settimeout(self._send_timeout)
        try:
            self._sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError) as error:
            raise ConnectionClosed(f"the server closed the connection: {error}") from error

    # Answers --------------------------------------------------------------------------------

    def read_message(self, timeout: Optional[float] = None) -> Optional[vouch_pb2.ServerMessage]:
        """Returns the next ServerMessage, or None if none completed within `timeout` seconds
        (None: wait as long as it takes; 0: only what has already arrived).

        Bytes of a frame that is still incomplete at the timeout are kept for the next call.
        A Welcome is returned too, and also kept in self.welcome. A message whose body is unset
        (a body type newer than this vouch_pb2) is returned as is; callers should skip what
        they do not recognise.
        Raises ConnectionClosed when the server has closed the connection, and FrameError for
        a frame that breaks the framing or does not parse.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            payload = self._decoder.next_payload()
            if payload is not None:
                message = _parse_server_message(payload)
                if message.HasField("welcome"):
                    self.welcome = message.welcome
                return message
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._receive(remaining):
                return None

    def _receive(self, timeout: Optional[float]) -> bool:
        """Reads what the socket has into the decoder, waiting up to `timeout`. Returns False
        if nothing arrived in time."""
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(_RECV_BYTES)
        except (socket.timeout, BlockingIOError):
            return False
        except ConnectionResetError as error:
            raise ConnectionClosed(f"connection reset by the server: {error}") from error
        if not data:
            pending = self._decoder.buffered_bytes
            detail = f" in the middle of a frame ({pending} bytes pending)" if pending else ""
            raise ConnectionClosed(f"the server closed the connection{detail}")
        self._decoder.feed(data)
        return True


def _parse_server_message(payload: bytes) -> vouch_pb2.ServerMessage:
    try:
        return vouch_pb2.ServerMessage.FromString(payload)
    except protobuf_message.DecodeError as error:
        raise FrameError(f"ServerMessage of {len(payload)} bytes does not parse: {error}") from error
