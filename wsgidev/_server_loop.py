"""The I/O loop: one thread owns every connection between requests.

It accepts, does TLS handshakes, reads request heads without blocking, parks idle keep-alive
connections, applies every timeout and answers malformed heads itself; a complete request goes
to the runner (_server_runners) and comes back through ``finish_connection``. Binding and the
server's lifecycle are _server's."""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import threading
import time
from collections.abc import Callable
from socket import socket as Socket
from typing import TYPE_CHECKING, Any, Literal, cast

from ._handler import WSGIRequestHandler, log_rejected
from ._http import ClientDisconnected, HTTPError, RequestHead, read_head
from ._http_io import send_all
from ._http_response import error_response
from ._http_spool import BodyReceiver, SpooledBody
from ._log import SHORTAGE_LOG_INTERVAL, logger
from ._server_poll import EpollPoller, SelectorPoller
from ._server_runners import Outcome, Runner
from ._server_streams import StreamInfo, StreamKeeper

if TYPE_CHECKING:
    from ._server import BaseWSGIServer
    from ._types import WSGIApplication

State = Literal["handshake", "read", "body", "busy", "linger", "stream"]
RECV_SIZE = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Out of file descriptors: how long the listener rests before the loop tries to accept again.
ACCEPT_BACKOFF = 0.1
# Request bodies up to this size are received by the loop (into the connection buffer) before
# the request is dispatched, in every mode; with ``read_body_ahead`` (the base server) every body
# is, larger ones into a spool.
PREREAD_LIMIT = 256 * 1024
_TLS_RECORD_HANDSHAKE = 0x16


class Connection:
    """One client connection; owned by the loop except while a runner serves a request on it."""

    __slots__ = (
        "address",
        "body_ends",
        "buffer",
        "deadline",
        "fd",
        "head",
        "received",
        "receiver",
        "remote_addr",
        "remote_port",
        "scan",
        "served",
        "sock",
        "state",
        "stream",
        "tls",
        "watching",
    )

    def __init__(self, sock: Socket, address: Any, deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.address = address
        if isinstance(address, tuple):
            self.remote_addr: str = address[0]
            self.remote_port: int = address[1]
        else:  # a Unix socket peer has no address
            self.remote_addr = "<local>"
            self.remote_port = 0
        self.buffer = bytearray()
        self.scan = 0
        self.deadline = deadline
        self.body_ends = 0.0  # while a body arrives: when it must have arrived whole
        self.state: State = "read"
        self.head: RequestHead | None = None  # parsed while its body is still arriving
        self.receiver: BodyReceiver | None = None  # spools a body arriving ahead of the app
        self.received: SpooledBody | None = None  # a whole body, for the handler to pick up
        self.tls = False
        self.served = 0  # requests handed to the runner; 0 means the client is yet to send one
        self.watching = 0  # what the poller watches for: 0 nothing, 1 readable, 2 writable
        self.stream: StreamInfo | None = None  # an event stream the loop keeps (_server_streams)


class ConnectionLoop:
    """The loop half of a server; BaseWSGIServer supplies the socket, runner and timeouts."""

    app: WSGIApplication
    socket: Socket
    ssl_context: ssl.SSLContext | None
    handler_class: type[WSGIRequestHandler]
    passthrough_errors: bool
    draining: bool
    in_child: bool
    keep_alive_timeout: float
    request_head_timeout: float
    tls_handshake_timeout: float
    body_timeout: float
    body_total_timeout: float
    read_body_ahead: bool
    max_body_size: int | None
    body_memory_limit: int
    send_timeout: float
    linger_timeout: float
    drain_timeout: float
    _poller: EpollPoller | SelectorPoller
    _runner: Runner
    _streams: StreamKeeper
    _conns: dict[int, Connection]
    _callbacks: dict[int, Callable[[int], None]]
    _wake_r: Socket
    _level_triggered: bool
    _stop_requested: bool
    _interrupted: bool
    _accepting: bool
    # While out of descriptors: when to poll the listener again (0: polling it now).
    _accept_resume: float = 0.0
    _accept_warned_at: float = -SHORTAGE_LOG_INTERVAL
    _next_sweep: float
    _loop_running: bool
    _closed: bool

    # -- the loop ------------------------------------------------------------------------------

    def _serve_loop(self) -> None:
        self._loop_thread = threading.current_thread()
        poller = self._poller
        listen_fd = self.socket.fileno()
        wake_fd = self._wake_r.fileno()
        conns = self._conns
        callbacks = self._callbacks
        poller.add_fixed(listen_fd)
        self._accepting = True
        try:
            while not self._stop_requested and not self._interrupted:
                timeout = None
                if conns:
                    timeout = self._next_sweep - time.monotonic()
                if self._accept_resume:
                    left = self._accept_resume - time.monotonic()
                    if left <= 0:
                        self._accept_resume = 0.0
                        if self._accepting:
                            poller.add_fixed(listen_fd)
                    else:
                        timeout = left if timeout is None else min(timeout, left)
                ready = poller.wait(timeout)
                for index, fd in enumerate(ready):
                    if self._stop_requested or self._interrupted:
                        # Serve nothing new here (an inline request may just have seen Ctrl+C),
                        # but a one-shot event already taken must not be lost: the graceful
                        # stop's finish_arrivals serves those connections.
                        self._rearm_ready(ready[index:])
                        break
                    conn = conns.get(fd)
                    if conn is not None:
                        self._on_ready(conn)
                    elif fd == listen_fd:
                        if self._accepting:
                            self._accept()
                    elif fd == wake_fd:
                        self._on_wake()
                    else:
                        callback = callbacks.get(fd)
                        if callback is not None:
                            callback(fd)
                if conns and time.monotonic() >= self._next_sweep:
                    self._sweep()
        finally:
            self._stop_accepting()
            # Event streams never outlive the loop: their clients reconnect to the next server.
            self._streams.end_all()

    def finish_arrivals(self, seconds: float) -> None:
        """Keep serving, for up to ``seconds``, the connections whose request is still arriving.

        Called once the listener is closed, before a graceful stop closes every idle connection:
        a client in the middle of its TLS handshake, head or body, or one that connected but has
        not sent its first request yet, is not idle, and closing it would fail a request it has
        already sent. A reloader restart stops a server this way on every save.
        """
        deadline = time.monotonic() + seconds
        wake_fd = self._wake_r.fileno()
        # Workers finish connections meanwhile: iterate over a snapshot of the table.
        while any(_is_arriving(conn) for conn in list(self._conns.values())):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for fd in self._poller.wait(min(left, 0.05)):
                conn = self._conns.get(fd)
                if conn is not None:
                    self._on_ready(conn)
                elif fd == wake_fd:
                    self._on_wake()
                else:
                    callback = self._callbacks.get(fd)
                    if callback is not None:
                        callback(fd)

    def _on_wake(self) -> None:
        """Another thread (or a signal) woke the loop; handle the messages it left."""
        with contextlib.suppress(OSError):
            self._wake_r.recv(4096)
        self._streams.drain(self._watch)

    def _rearm_ready(self, fds: list[int]) -> None:
        """Re-arm connections whose one-shot readiness was taken from the poller but not
        handled, so the next wait reports them again."""
        if self._level_triggered:
            return  # level-triggered interest was never disarmed
        for fd in fds:
            conn = self._conns.get(fd)
            if conn is not None and conn.state != "busy" and conn.watching:
                self._poller.watch(fd, conn.watching == 2, oneshot=True)

    def _accept(self) -> None:
        listener = self.socket
        now = time.monotonic()
        for _ in range(64):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accepting(exc, now)
                return
            self._open(sock, address, now)

    def _pause_accepting(self, exc: OSError, now: float) -> None:
        """Out of descriptors: stop polling the listener for a moment (the loop keeps serving
        the connections it has, and their closing frees descriptors), then try again. The
        waiting clients stay in the kernel's backlog. Said at most every SHORTAGE_LOG_INTERVAL."""
        if now - self._accept_warned_at >= SHORTAGE_LOG_INTERVAL:
            self._accept_warned_at = now
            logger.warning(
                " * Cannot accept connections (%s, %d open); new ones wait until some close",
                exc.strerror or exc,
                len(self._conns),
            )
        self._poller.forget(self.socket.fileno())
        self._accept_resume = now + ACCEPT_BACKOFF

    def _open(self, sock: Socket, address: Any, now: float) -> None:
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._conns:
            self._next_sweep = now + self._sweep_interval()
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except (OSError, ValueError):
                sock.close()
                return
            conn = Connection(sock, address, now + self.tls_handshake_timeout)
            conn.tls = True
            conn.state = "handshake"
            self._conns[conn.fd] = conn
            self._handshake(conn)
            return
        conn = Connection(sock, address, now + self.keep_alive_timeout)
        self._conns[conn.fd] = conn
        self._read(conn)

    def _on_ready(self, conn: Connection) -> None:
        state = conn.state
        if state == "read":
            self._read(conn)
        elif state == "handshake":
            self._handshake(conn)
        elif state == "body":
            self._read_body(conn)
        elif state == "linger":
            self._linger_read(conn)
        elif state == "stream":
            self._streams.on_readable(conn, self._watch)

    def _handshake(self, conn: Connection) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, write=True)
            return
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":
                logger.info(
                    "%s sent plain HTTP to this HTTPS server; use an https:// URL",
                    conn.remote_addr,
                )
            else:
                logger.info("%s: TLS handshake failed (%s)", conn.remote_addr, exc.reason or exc)
            self.close_connection(conn)
            return
        except OSError:
            self.close_connection(conn)
            return
        conn.state = "read"
        conn.deadline = time.monotonic() + self.keep_alive_timeout
        self._read(conn)

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
            self._watch(conn)
            return None
        except ssl.SSLWantWriteError:
            self._watch(conn, write=True)
            return None
        except OSError:
            self.close_connection(conn)
            return None
        if not data:
            self.close_connection(conn)
            return None
        return data

    def _read(self, conn: Connection) -> None:
        data = self._receive(conn)
        if data is None:
            return
        buffer = conn.buffer
        if not buffer:
            if data[0] == _TLS_RECORD_HANDSHAKE and not conn.tls and len(data) > 2 and data[1] == 3:
                self._reject_tls_on_plain(conn)
                return
            conn.deadline = time.monotonic() + self.request_head_timeout
        buffer += data
        try:
            head = self.next_head(conn)
        except HTTPError as error:
            self._reject(conn, error)
            return
        if head is None:
            self._watch(conn)
            return
        length = head.content_length
        if not (length or head.chunked):
            self.dispatch(conn, head)
            return
        ahead = self.read_body_ahead
        limit = self.max_body_size
        if ahead and limit is not None and length is not None and length > limit:
            # Refused from the head: a client that sent Expect: 100-continue never sends it.
            too_large = HTTPError(413, f"request body larger than {limit} bytes")
            self._reject(conn, too_large, head.request_line)
            return
        if head.expect_continue and not ahead:
            # The client waits for 100 Continue, which goes out when the app first reads.
            self.dispatch(conn, head)
            return
        if head.expect_continue and not buffer and not self._send_continue(conn):
            return
        if length is not None and len(buffer) >= length:
            self.dispatch(conn, head)
            return
        if length is not None and length <= PREREAD_LIMIT:
            # A small body is waited for here, so a slow uploader never holds a worker (or, in
            # the base server, every other client) while the app reads it.
            self._await_body(conn, head)
            return
        if not ahead:
            self.dispatch(conn, head)  # the app streams the body from the connection
            return
        # Any body is received whole here, between other clients' requests, so a client that
        # stalls mid-upload holds no worker (nor, in the base server, anyone else).
        conn.receiver = BodyReceiver(length, head.chunked, limit, self.body_memory_limit)
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
            self.close_connection(conn)
            return False
        return True

    def _await_body(self, conn: Connection, head: RequestHead) -> None:
        conn.head = head
        conn.state = "body"
        now = time.monotonic()
        conn.body_ends = now + self.body_total_timeout
        conn.deadline = min(now + self.body_timeout, conn.body_ends)
        self._watch(conn)

    def _read_body(self, conn: Connection) -> None:
        data = self._receive(conn)
        if data is None:
            return
        conn.buffer += data
        # A timeout between bytes, within the body's overall deadline.
        conn.deadline = min(time.monotonic() + self.body_timeout, conn.body_ends)
        self._take_body(conn)

    def _take_body(self, conn: Connection) -> None:
        head = conn.head
        assert head is not None
        receiver = conn.receiver
        if receiver is None:
            assert head.content_length is not None
            if len(conn.buffer) < head.content_length:
                self._watch(conn)
                return
        else:
            try:
                done = receiver.feed(conn.buffer)
            except HTTPError as error:
                self._reject(conn, error, head.request_line)
                return
            except OSError as exc:  # the spool's disk is full or unwritable
                logger.error(" * Cannot store a request body: %s", exc)
                self._reject(conn, HTTPError(500, "the request body could not be stored"))
                return
            if not done:
                self._watch(conn)
                return
            conn.receiver = None
            conn.received = receiver.body()
        conn.head = None
        self.dispatch(conn, head)

    def dispatch(self, conn: Connection, head: RequestHead) -> None:
        conn.state = "busy"
        conn.served += 1
        self._runner.submit(conn, head)

    def next_head(self, conn: Connection) -> RequestHead | None:
        """Parse the next complete head buffered on ``conn``; None while it is incomplete."""
        head, conn.scan = read_head(conn.buffer, conn.scan)
        return head

    def _reject(self, conn: Connection, error: HTTPError, request_line: str | None = None) -> None:
        if request_line is None:
            line = bytes(conn.buffer[: conn.buffer.find(b"\n")]).rstrip(b"\r")[:200]
            request_line = line.decode("latin-1")
        log_rejected(conn.remote_addr, request_line, error)
        with contextlib.suppress(OSError):
            conn.sock.send(self._error_response(error))
        self._drop_body(conn)
        self._linger(conn)

    def refuse(self, conn: Connection, error: HTTPError, head: RequestHead) -> None:
        """Answer ``error`` to the request ``head`` on ``conn`` and close it (loop thread only:
        a runner that cannot take a request it was given)."""
        self._reject(conn, error, head.request_line)

    def _drop_body(self, conn: Connection) -> None:
        conn.head = None
        if conn.receiver is not None:
            conn.receiver.close()
            conn.receiver = None
        if conn.received is not None:
            conn.received.release()
            conn.received = None

    def _error_response(self, error: HTTPError) -> bytes:
        handler = self.handler_class
        server = f"{handler.server_version} {handler.sys_version}"
        return error_response(error.status, error.reason, error.detail, server)

    def _reject_tls_on_plain(self, conn: Connection) -> None:
        logger.info(
            "%s tried to start a TLS (https://) connection to this plain HTTP server; "
            "use an http:// URL or start the server with TLS",
            conn.remote_addr,
        )
        error = HTTPError(400, "TLS handshake sent to a plain HTTP port")
        with contextlib.suppress(OSError):
            conn.sock.send(self._error_response(error))
        self._linger(conn)

    def _linger(self, conn: Connection) -> None:
        """Stop writing, then drop what the client still sends until it closes (or a timeout).

        Closing with unread input makes the kernel send a reset, and a reset can destroy our
        response in the client's receive buffer before it is read.
        """
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_connection(conn)
            return
        conn.buffer.clear()
        conn.deadline = time.monotonic() + self.linger_timeout
        conn.state = "linger"
        self._rearm(conn)

    def _linger_read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            self._watch(conn)
            return
        except OSError:
            data = b""
        if data:
            self._watch(conn)
        else:
            self.close_connection(conn)

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self._conns.values()):
            if conn.state == "busy" or conn.deadline > now:
                continue
            if conn.state == "stream":
                self._streams.beat(conn, now)
                continue
            if conn.state == "read" and conn.buffer:
                self._reject(conn, HTTPError(408, "the request head did not arrive in time"))
            elif conn.state == "body" and conn.head is not None:
                error = HTTPError(408, "the request body did not arrive in time")
                self._reject(conn, error, conn.head.request_line)
            else:
                if conn.state == "handshake":
                    logger.info("%s: TLS handshake timed out", conn.remote_addr)
                self.close_connection(conn)
        self._next_sweep = now + self._sweep_interval()

    def _sweep_interval(self) -> float:
        shortest = min(
            self.keep_alive_timeout,
            self.request_head_timeout,
            self.tls_handshake_timeout,
            self.linger_timeout,
        )
        return max(0.02, min(0.5, shortest / 4))

    # -- runner side ---------------------------------------------------------------------------

    def serve_connection(self, conn: Connection, head: RequestHead) -> Outcome:
        """Serve ``head`` and any pipelined requests after it (called by a runner)."""
        while True:
            # Only BaseWSGIServer is a ConnectionLoop; the handler sees the whole server.
            handler = self.handler_class(cast("BaseWSGIServer", self), conn, head)
            if not handler.handle():
                if handler.stream_info is not None and not handler._client_gone:
                    conn.stream = handler.stream_info
                    return "stream"
                return "close" if handler._client_gone else handler.closing_mode()
            if self.draining:
                return "linger"
            if conn.tls:
                self._pull_tls_pending(conn)
            if not conn.buffer:
                return "keep"
            try:
                next_head = self.next_head(conn)
            except HTTPError as error:
                log_rejected(conn.remote_addr, "", error)
                with contextlib.suppress(ClientDisconnected):
                    send_all(conn.sock, self._error_response(error), 1.0)
                return "linger"
            if next_head is None:
                return "keep"
            head = next_head

    def _pull_tls_pending(self, conn: Connection) -> None:
        sock = conn.sock
        with contextlib.suppress(OSError):
            while (pending := sock.pending()) and len(conn.buffer) < RECV_SIZE * 2:  # type: ignore[attr-defined]  # SSLSocket
                conn.buffer += sock.recv(pending)

    def finish_connection(self, conn: Connection, outcome: Outcome) -> None:
        """Give ``conn`` back to the loop after a request (callable from any thread)."""
        if (
            self._closed
            or not self._loop_running
            or (self.draining and outcome in ("keep", "stream"))
        ):
            if outcome != "close":
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_WR)
            self.close_connection(conn)
            return
        if outcome == "keep":
            now = time.monotonic()
            conn.deadline = now + (
                self.request_head_timeout if conn.buffer else self.keep_alive_timeout
            )
            conn.state = "read"
            self._rearm(conn)
        elif outcome == "linger":
            self._linger(conn)
        elif outcome == "stream":
            self._streams.adopt(conn)  # the loop's thread takes it from here
        else:
            self.close_connection(conn)

    def _watch(self, conn: Connection, write: bool = False) -> None:
        interest = 2 if write else 1
        if conn.watching == interest and self._level_triggered:
            return  # still registered for exactly this: no system call
        conn.watching = interest
        self._poller.watch(conn.fd, write, oneshot=not self._level_triggered)

    def _rearm(self, conn: Connection) -> None:
        try:
            self._watch(conn)
        except (OSError, ValueError):  # the poller closed under us: the server is stopping
            self.close_connection(conn)

    def close_connection(self, conn: Connection) -> None:
        """Forget and close ``conn`` (callable from any thread); idempotent.

        Identity-checked: once ``conn``'s socket is closed the OS may give its descriptor to a
        new connection, whose table entry and poller registration must stay untouched.
        """
        self._drop_body(conn)
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
            if conn.watching and not self.in_child:
                self._poller.forget(conn.fd)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def watch_fd(self, fd: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(fd)`` from the loop whenever ``fd`` is readable."""
        self._callbacks[fd] = callback
        self._poller.add_fixed(fd)

    def unwatch_fd(self, fd: int) -> None:
        self._callbacks.pop(fd, None)
        self._poller.forget(fd)

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self._poller.forget(self.socket.fileno())


def _is_arriving(conn: Connection) -> bool:
    """Whether ``conn`` carries a request that has started (or is about to start) arriving."""
    if conn.state in ("handshake", "body"):
        return True
    return conn.state == "read" and (bool(conn.buffer) or conn.served == 0)
