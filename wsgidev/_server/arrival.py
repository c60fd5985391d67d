"""How a request arrives: TLS handshake, head, body, each read without blocking.

The loop calls in when a connection is readable; a complete request goes back through
``dispatch``, a malformed or late one is answered here (4xx, then linger) and never reaches
a runner. Everything here runs in the loop's thread.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from typing import Protocol

from .._http.head import HTTPError, RequestHead, read_head
from .._http.log import log_rejected
from .._http.response import error_response
from .._http.spool import BodyReceiver
from .._log import logger
from .connection import Connection
from .settings import ServerSettings

RECV_SIZE = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Request bodies up to this size are received by the loop (into the connection buffer) before
# the request is dispatched, in every mode; with ``read_body_ahead`` every body is, larger ones
# into a spool.
PREREAD_LIMIT = 256 * 1024
_TLS_RECORD_HANDSHAKE = 0x16


class LoopOps(Protocol):
    """What arrivals ask of the loop that owns the connection."""

    def watch(self, conn: Connection, write: bool = False) -> None: ...

    def close(self, conn: Connection) -> None: ...

    def dispatch(self, conn: Connection, head: RequestHead) -> None: ...


def next_head(conn: Connection) -> RequestHead | None:
    """Parse the next complete head buffered on ``conn``; None while it is incomplete."""
    head, conn.scan = read_head(conn.buffer, conn.scan)
    return head


class Arrivals:
    """The reading states of a connection: ``handshake``, ``read``, ``body`` and ``linger``."""

    def __init__(self, settings: ServerSettings, ops: LoopOps, server_header: str) -> None:
        self._settings = settings
        self._ops = ops
        self._server_header = server_header

    def on_ready(self, conn: Connection) -> None:
        state = conn.state
        if state == "read":
            self.read(conn)
        elif state == "handshake":
            self.handshake(conn)
        elif state == "body":
            self._read_body(conn)
        elif state == "linger":
            self._linger_read(conn)

    def expire(self, conn: Connection) -> None:
        """``conn`` is past its deadline: 408 for a request half-arrived, else close."""
        if conn.state == "read" and conn.buffer:
            self.reject(conn, HTTPError(408, "the request head did not arrive in time"))
        elif conn.state == "body" and conn.head is not None:
            error = HTTPError(408, "the request body did not arrive in time")
            self.reject(conn, error, conn.head.request_line)
        else:
            if conn.state == "handshake":
                logger.info("%s: TLS handshake timed out", conn.remote_addr)
            self._ops.close(conn)

    # -- the steps -----------------------------------------------------------------------------

    def handshake(self, conn: Connection) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._ops.watch(conn)
            return
        except ssl.SSLWantWriteError:
            self._ops.watch(conn, write=True)
            return
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":
                logger.info(
                    "%s sent plain HTTP to this HTTPS server; use an https:// URL",
                    conn.remote_addr,
                )
            else:
                logger.info("%s: TLS handshake failed (%s)", conn.remote_addr, exc.reason or exc)
            self._ops.close(conn)
            return
        except OSError:
            self._ops.close(conn)
            return
        conn.state = "read"
        conn.deadline = time.monotonic() + self._settings.keep_alive_timeout
        self.read(conn)

    def _receive(self, conn: Connection) -> bytes | None:
        """Bytes that arrived on ``conn``; None when there are none yet or it was closed."""
        sock = conn.sock
        try:
            data = sock.recv(RECV_SIZE)
            if conn.tls:
                # TLS may hold decrypted bytes the kernel no longer reports as readable.
                while (pending := sock.pending()) and len(data) < RECV_SIZE * 2:  # type: ignore[attr-defined]  # SSLSocket
                    data += sock.recv(pending)
        except (BlockingIOError, ssl.SSLWantReadError):
            self._ops.watch(conn)
            return None
        except ssl.SSLWantWriteError:
            self._ops.watch(conn, write=True)
            return None
        except OSError:
            self._ops.close(conn)
            return None
        if not data:
            self._ops.close(conn)
            return None
        return data

    def read(self, conn: Connection) -> None:
        data = self._receive(conn)
        if data is None:
            return
        buffer = conn.buffer
        settings = self._settings
        if not buffer:
            if data[0] == _TLS_RECORD_HANDSHAKE and not conn.tls and len(data) > 2 and data[1] == 3:
                self._reject_tls_on_plain(conn)
                return
            conn.deadline = time.monotonic() + settings.request_head_timeout
        buffer += data
        self.take_head(conn)

    def take_head(self, conn: Connection) -> None:
        """Act on what is buffered: a complete head is dispatched (or its body awaited), a
        partial one waits for more bytes, a bad one is refused."""
        try:
            head = next_head(conn)
        except HTTPError as error:
            self.reject(conn, error)
            return
        if head is None:
            self._ops.watch(conn)
            return
        length = head.content_length
        if not (length or head.chunked):
            self._ops.dispatch(conn, head)
            return
        self._start_body(conn, head, length)

    def _start_body(self, conn: Connection, head: RequestHead, length: int | None) -> None:
        ahead = self._settings.read_body_ahead
        limit = self._settings.max_body_size
        if ahead and limit is not None and length is not None and length > limit:
            # Refused from the head: a client that sent Expect: 100-continue never sends it.
            too_large = HTTPError(413, f"request body larger than {limit} bytes")
            self.reject(conn, too_large, head.request_line)
            return
        if head.expect_continue and not ahead:
            # The client waits for 100 Continue, which goes out when the app first reads.
            self._ops.dispatch(conn, head)
            return
        if head.expect_continue and not conn.buffer and not self._send_continue(conn):
            return
        if length is not None and len(conn.buffer) >= length:
            self._ops.dispatch(conn, head)
            return
        if length is not None and length <= PREREAD_LIMIT:
            # A small body is waited for here, so a slow uploader never holds a worker (or, in
            # the one-at-a-time server, every other client) while the app reads it.
            self._await_body(conn, head)
            return
        if not ahead:
            self._ops.dispatch(conn, head)  # the app streams the body from the connection
            return
        # Any body is received whole here, between other clients' requests, so a client that
        # stalls mid-upload holds no worker (nor, in the one-at-a-time server, anyone else).
        conn.receiver = BodyReceiver(length, head.chunked, limit, self._settings.body_memory_limit)
        self._await_body(conn, head)
        self._take_body(conn)

    def _send_continue(self, conn: Connection) -> bool:
        """Tell a client waiting with ``Expect: 100-continue`` to send its body: the head has
        passed every check the loop makes (framing, size), so the body will be received here,
        and the app gets the request once it is whole. False if the connection failed."""
        try:
            sent = conn.sock.send(CONTINUE)
        except (OSError, ValueError):
            sent = 0
        if sent != len(CONTINUE):  # 25 bytes into an empty send buffer: only a dead peer fails
            self._ops.close(conn)
            return False
        return True

    def _await_body(self, conn: Connection, head: RequestHead) -> None:
        conn.head = head
        conn.state = "body"
        now = time.monotonic()
        conn.body_ends = now + self._settings.body_total_timeout
        conn.deadline = min(now + self._settings.body_timeout, conn.body_ends)
        self._ops.watch(conn)

    def _read_body(self, conn: Connection) -> None:
        data = self._receive(conn)
        if data is None:
            return
        conn.buffer += data
        # A timeout between bytes, within the body's overall deadline.
        conn.deadline = min(time.monotonic() + self._settings.body_timeout, conn.body_ends)
        self._take_body(conn)

    def _take_body(self, conn: Connection) -> None:
        head = conn.head
        assert head is not None
        receiver = conn.receiver
        if receiver is None:
            assert head.content_length is not None
            if len(conn.buffer) < head.content_length:
                self._ops.watch(conn)
                return
        else:
            try:
                done = receiver.feed(conn.buffer)
            except HTTPError as error:
                self.reject(conn, error, head.request_line)
                return
            except OSError as exc:  # the spool's disk is full or unwritable
                logger.error(" * Cannot store a request body: %s", exc)
                self.reject(conn, HTTPError(500, "the request body could not be stored"))
                return
            if not done:
                self._ops.watch(conn)
                return
            conn.receiver = None
            conn.received = receiver.body()
        conn.head = None
        self._ops.dispatch(conn, head)

    # -- refusals ------------------------------------------------------------------------------

    def error_response(self, error: HTTPError) -> bytes:
        return error_response(error.status, error.reason, error.detail, self._server_header)

    def reject(self, conn: Connection, error: HTTPError, request_line: str | None = None) -> None:
        """Answer ``error`` on ``conn``, log it like a served request, then linger and close."""
        if request_line is None:
            line = bytes(conn.buffer[: conn.buffer.find(b"\n")]).rstrip(b"\r")[:200]
            request_line = line.decode("latin-1")
        log_rejected(conn.remote_addr, request_line, error)
        with contextlib.suppress(OSError):
            conn.sock.send(self.error_response(error))
        conn.drop_body()
        self.linger(conn)

    def _reject_tls_on_plain(self, conn: Connection) -> None:
        logger.info(
            "%s tried to start a TLS (https://) connection to this plain HTTP server; "
            "use an http:// URL or start the server with TLS",
            conn.remote_addr,
        )
        error = HTTPError(400, "TLS handshake sent to a plain HTTP port")
        with contextlib.suppress(OSError):
            conn.sock.send(self.error_response(error))
        self.linger(conn)

    def linger(self, conn: Connection) -> None:
        """Stop writing, then drop what the client still sends until it closes (or a timeout).

        Closing with unread input makes the kernel send a reset, and a reset can destroy our
        response in the client's receive buffer before it is read.
        """
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._ops.close(conn)
            return
        conn.buffer.clear()
        conn.deadline = time.monotonic() + self._settings.linger_timeout
        conn.state = "linger"
        try:
            self._ops.watch(conn)
        except (OSError, ValueError):  # the poller closed under us: the server is stopping
            self._ops.close(conn)

    def _linger_read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            self._ops.watch(conn)
            return
        except OSError:
            data = b""
        if data:
            self._ops.watch(conn)
        else:
            self._ops.close(conn)
