"""The I/O loop: the one owner of the listener, the poller and every connection.

It accepts, applies every timeout, hands each readable connection to _server.arrival until a
request is complete, and gives the request to the runner (_server.runners). Runners never
close or re-register a connection: they post ``(connection, outcome)`` to the loop's inbox and
wake it, and the loop takes the connection back (keep-alive, linger, close, or an event
stream for _server.streams). Starting and stopping it is _server.servers'.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from socket import socket as Socket
from typing import Any

from .._http.head import HTTPError, RequestHead
from .._log import SHORTAGE_LOG_INTERVAL, logger
from .arrival import Arrivals
from .bind import Listener
from .connection import Connection
from .poll import make_poller
from .runners import LoopPort, Outcome, Runner
from .serve import HandlerFactory, serve_requests
from .settings import ServerSettings
from .streams import StreamKeeper

# Out of file descriptors: how long the listener rests before the loop tries to accept again.
ACCEPT_BACKOFF = 0.1


class ConnectionLoop:
    """Accepts and parks connections, and gives complete requests to a runner.

    ``make_runner`` builds the runner with this loop as its ``LoopPort``; ``handler_factory``
    builds the object that serves one request on a connection.
    """

    def __init__(
        self,
        listener: Listener,
        settings: ServerSettings,
        make_runner: Callable[[LoopPort], Runner],
        handler_factory: HandlerFactory,
        server_header: str,
        passthrough_errors: bool = False,
    ) -> None:
        self._listener = listener
        self._settings = settings
        self._passthrough_errors = passthrough_errors
        self._conns: dict[int, Connection] = {}
        self._callbacks: dict[int, Callable[[int], None]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._poller = make_poller()
        self._poller.add_fixed(self._wake_r.fileno())
        self._arrivals = Arrivals(settings, self, server_header)
        # What serve_requests needs besides the request, bound once (not per request).
        self._serve_with = (handler_factory, self.is_draining, self._arrivals.error_response)
        self._streams = StreamKeeper(self.wake, self.close)
        # Finished connections posted by worker threads, drained by the owner.
        self._inbox: deque[tuple[Connection, Outcome]] = deque()
        self._inbox_lock = threading.Lock()
        self._wake_pending = False
        self._owner: int | None = None  # the thread that runs (or last ran) the loop
        self._runner = make_runner(self)
        # Inline, only the loop's thread touches connections, so interest can stay registered
        # between requests (level-triggered) instead of being re-armed after each one.
        self._level_triggered = self._runner.on_loop_thread
        self.draining = False  # stopping: responses in flight end their connections
        self.in_child = False  # a forked request child's copy of the loop
        self._running = False
        self._closed = False
        self._stop_requested = False
        self._accepting = False
        self._accept_resume = 0.0  # out of descriptors: when to poll the listener again
        self._accept_warned_at = -SHORTAGE_LOG_INTERVAL
        self._next_sweep = 0.0

    # -- what the server reads -----------------------------------------------------------------

    @property
    def settings(self) -> ServerSettings:
        return self._settings

    @property
    def passthrough_errors(self) -> bool:
        return self._passthrough_errors

    @property
    def runner(self) -> Runner:
        return self._runner

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def wake_fd(self) -> int:
        """The socket a signal's C-level handler may write to, to wake the loop at once."""
        return self._wake_w.fileno()

    def wake(self) -> None:
        """Make the loop's poll return (any thread, or a signal handler)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (the loop is awake anyway) or closed (the server closed)
            return  # (not contextlib.suppress: this runs once per threaded request)

    def request_stop(self) -> None:
        """Make ``run`` return after the events at hand (any thread, or a signal handler)."""
        self._stop_requested = True
        self.wake()

    def clear_stop(self) -> None:
        """Forget an earlier stop request; called before the signal handlers that may make a
        new one are installed, so a Ctrl+C that lands before ``run`` starts is not lost."""
        self._stop_requested = False

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``request_stop()`` (also one made before it started, see ``clear_stop``);
        KeyboardInterrupt passes through."""
        if self._closed:
            raise RuntimeError("the server is closed")
        self._owner = threading.get_ident()
        self._running = True
        poller = self._poller
        listen_fd = self._listener.sock.fileno()
        wake_fd = self._wake_r.fileno()
        conns = self._conns
        callbacks = self._callbacks
        on_ready = self._arrivals.on_ready
        poller.add_fixed(listen_fd)
        self._accepting = True
        self._take_inbox()
        try:
            while not self._stop_requested:
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
                    if self._stop_requested:
                        # Serve nothing new here (an inline request may just have seen Ctrl+C),
                        # but a one-shot event already taken must not be lost: a graceful
                        # stop's finish_arrivals serves those connections.
                        self._rearm_ready(ready[index:])
                        break
                    conn = conns.get(fd)
                    if conn is not None:
                        if conn.state == "stream":
                            self._streams.on_readable(conn, self.watch)
                        else:
                            on_ready(conn)
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
            self._running = False
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
        self._owner = threading.get_ident()
        self._take_inbox()
        while any(conn.is_arriving() for conn in self._conns.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for fd in self._poller.wait(min(left, 0.05)):
                conn = self._conns.get(fd)
                if conn is not None:
                    if conn.state != "stream":
                        self._arrivals.on_ready(conn)
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
        self._take_inbox()
        self._streams.drain()

    def _take_inbox(self) -> None:
        self._wake_pending = False  # before taking: a later post wakes the loop again
        inbox = self._inbox
        while inbox:
            conn, outcome = inbox.popleft()
            self._finish_here(conn, outcome)

    def _rearm_ready(self, fds: list[int]) -> None:
        """Re-arm connections whose one-shot readiness was taken from the poller but not
        handled, so the next wait reports them again."""
        if self._level_triggered:
            return  # level-triggered interest was never disarmed
        for fd in fds:
            conn = self._conns.get(fd)
            if conn is not None and conn.state != "busy" and conn.watching:
                self._poller.watch(fd, conn.watching == 2, oneshot=True)

    # -- accepting -----------------------------------------------------------------------------

    def _accept(self) -> None:
        listener = self._listener.sock
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
        self._poller.forget(self._listener.sock.fileno())
        self._accept_resume = now + ACCEPT_BACKOFF

    def _open(self, sock: Socket, address: Any, now: float) -> None:
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._conns:
            self._next_sweep = now + self._settings.sweep_interval
        context = self._listener.ssl_context
        if context is None:
            conn = Connection(sock, address, now + self._settings.keep_alive_timeout)
            self._conns[conn.fd] = conn
            self._arrivals.read(conn)
            return
        try:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            sock.close()
            return
        conn = Connection(sock, address, now + self._settings.tls_handshake_timeout, tls=True)
        self._conns[conn.fd] = conn
        self._arrivals.handshake(conn)

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self._conns.values()):
            if conn.state == "busy" or conn.deadline > now:
                continue
            if conn.state == "stream":
                self._streams.beat(conn, now)
            else:
                self._arrivals.expire(conn)
        self._next_sweep = now + self._settings.sweep_interval

    # -- LoopOps (for _server.arrival) ---------------------------------------------------------

    def watch(self, conn: Connection, write: bool = False) -> None:
        interest = 2 if write else 1
        if conn.watching == interest and self._level_triggered:
            return  # still registered for exactly this: no system call
        conn.watching = interest
        self._poller.watch(conn.fd, write, oneshot=not self._level_triggered)

    def close(self, conn: Connection) -> None:
        """Forget and close ``conn``; idempotent.

        Identity-checked: once ``conn``'s socket is closed the OS may give its descriptor to a
        new connection, whose table entry and poller registration must stay untouched.
        """
        conn.drop_body()
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
            if conn.watching and not self.in_child:
                self._poller.forget(conn.fd)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def dispatch(self, conn: Connection, head: RequestHead) -> None:
        conn.state = "busy"
        conn.served += 1
        self._runner.submit(conn, head)

    # -- LoopPort (for the runners) ------------------------------------------------------------

    def finish(self, conn: Connection, outcome: Outcome) -> None:
        """Take ``conn`` back after a request; any thread. A worker thread only posts it."""
        if threading.get_ident() == self._owner:
            self._finish_here(conn, outcome)
            return
        with self._inbox_lock:
            if not self._closed:
                self._inbox.append((conn, outcome))
                if not self._wake_pending:
                    self._wake_pending = True
                    self.wake()
                return
        with contextlib.suppress(OSError):  # the server is closed: nobody owns it any more
            conn.sock.close()

    def _finish_here(self, conn: Connection, outcome: Outcome) -> None:
        if self._closed or not self._running or (self.draining and outcome in ("keep", "stream")):
            if outcome != "close":
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_WR)
            self.close(conn)
        elif outcome == "keep":
            settings = self._settings
            conn.deadline = time.monotonic() + (
                settings.request_head_timeout if conn.buffer else settings.keep_alive_timeout
            )
            conn.state = "read"
            if conn.buffer:  # the start of the next request came with the last one
                self._arrivals.take_head(conn)
                return
            try:
                self.watch(conn)
            except (OSError, ValueError):  # the poller closed under us: the server is stopping
                self.close(conn)
        elif outcome == "linger":
            self._arrivals.linger(conn)
        elif outcome == "stream":
            self._streams.adopt(conn, self.watch)
        else:
            self.close(conn)

    def refuse(self, conn: Connection, error: HTTPError, head: RequestHead) -> None:
        """Answer ``error`` to ``head`` and close ``conn`` (loop thread: a runner that cannot
        take a request it was given)."""
        self._arrivals.reject(conn, error, head.request_line)

    def watch_fd(self, fd: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(fd)`` from the loop whenever ``fd`` is readable."""
        self._callbacks[fd] = callback
        self._poller.add_fixed(fd)

    def unwatch_fd(self, fd: int) -> None:
        self._callbacks.pop(fd, None)
        self._poller.forget(fd)

    def running_elsewhere(self) -> bool:
        """True while ``run`` runs in a thread other than the caller's."""
        return self._running and threading.get_ident() != self._owner

    def enter_child(self) -> None:
        """In a forked request child: never accept, never touch the parent's registrations."""
        self.in_child = True
        with contextlib.suppress(OSError):
            # The child's copy of the listener would keep the port accepting connections
            # after the parent closed it on Ctrl+C.
            self._listener.sock.close()

    def serve(self, conn: Connection, head: RequestHead) -> Outcome:
        """Serve ``head`` and any pipelined requests after it (a runner's thread or child)."""
        return serve_requests(conn, head, *self._serve_with)

    def is_draining(self) -> bool:
        return self.draining

    # -- stopping ------------------------------------------------------------------------------

    def stop_listening(self) -> None:
        """Stop accepting and close the listener, so new clients are refused, not left waiting."""
        self._stop_accepting()
        if self._listener.sock.fileno() >= 0:
            self._poller.forget(self._listener.sock.fileno())
        self._listener.close(remove_file=not self.in_child)

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self._poller.forget(self._listener.sock.fileno())

    def close_idle(self) -> None:
        """Close every connection no request runs on (finished ones posted meanwhile too)."""
        self._take_inbox()
        for conn in list(self._conns.values()):
            if conn.state != "busy":
                self.close(conn)

    def close_all(self) -> None:
        """The server closes: the listener, every idle connection, the poller; idempotent.
        A connection a request still runs on is closed when the request finishes."""
        if self._closed:
            return
        self.draining = True
        self._runner.stop()
        self._streams.end_all()
        with self._inbox_lock:
            self._closed = True
        self.close_idle()
        self.stop_listening()
        self._poller.close()
        self._wake_r.close()
        self._wake_w.close()
