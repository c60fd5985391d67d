"""The socket side: bind, one I/O loop that owns every connection, and the server classes.

The loop accepts, reads request heads without blocking, does TLS handshakes, parks idle
keep-alive connections and applies every timeout. A complete request goes to a runner
(_server_runners); _handler turns it into an app call and a response."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from ._handler import WSGIRequestHandler, log_rejected
from ._http import (
    ClientDisconnected,
    HTTPError,
    RequestHead,
    read_head,
)
from ._http_io import send_all
from ._http_log import wants_colour
from ._http_response import FileWrapper, error_response
from ._log import ensure_handler, logger
from ._server_bind import bind_socket, check_port
from ._server_poll import EpollPoller, SelectorPoller
from ._server_runners import ForkRunner, InlineRunner, Outcome, Runner, ThreadRunner
from ._types import WSGIApplication, WSGIEnvironment

__all__ = [
    "BaseWSGIServer",
    "Connection",
    "ForkingWSGIServer",
    "ThreadedWSGIServer",
    "bind_socket",
    "check_port",
    "make_server",
]

State = Literal["handshake", "read", "busy", "linger"]
RECV_SIZE = 64 * 1024
_TLS_RECORD_HANDSHAKE = 0x16


class Connection:
    """One client connection; owned by the loop except while a runner serves a request on it."""

    __slots__ = (
        "address",
        "buffer",
        "deadline",
        "fd",
        "remote_addr",
        "remote_port",
        "reusable",
        "scan",
        "sock",
        "state",
        "tls",
        "watching",
    )

    def __init__(self, sock: socket.socket, address: Any, deadline: float) -> None:
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
        self.state: State = "read"
        self.tls = False
        self.reusable = True
        self.watching = 0  # what the poller watches for: 0 nothing, 1 readable, 2 writable


# -- the servers -----------------------------------------------------------------------------


class BaseWSGIServer:
    """HTTP/1.1 server that runs the app in the loop's thread, one request at a time.

    Keep-alive works here too: idle connections wait in the loop, not in the app's thread, so
    one idle client never blocks another. The timeouts are attributes a subclass or test may
    change before ``serve_forever``.
    """

    multithread = False
    multiprocess = False
    keep_alive_timeout = 30.0
    request_head_timeout = 10.0
    tls_handshake_timeout = 10.0
    body_timeout = 30.0
    send_timeout = 30.0
    linger_timeout = 2.0
    # Unread request body is dropped for at most this long to keep the connection; in the base
    # server that time is taken from every other client, so it is short.
    drain_timeout = 0.5
    graceful_timeout = 5.0

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
        handler: type[WSGIRequestHandler] | None = None,
        passthrough_errors: bool = False,
        ssl_context: Any = None,
        fd: int | None = None,
    ) -> None:
        check_port(port)
        if handler is None:
            handler = WSGIRequestHandler
        elif not (isinstance(handler, type) and issubclass(handler, WSGIRequestHandler)):
            raise TypeError(
                f"request_handler must be a WSGIRequestHandler subclass, got {handler!r}"
            )
        ensure_handler()
        self.app = app
        self.handler_class = handler
        self.passthrough_errors = passthrough_errors
        self.ssl_context = _as_ssl_context(ssl_context)
        self.in_child = False
        self.draining = False
        self.log_colour = wants_colour()
        self._owns_path: str | None = None
        if fd is not None:
            self.socket = socket.socket(fileno=fd)
            self.socket.setblocking(False)
        else:
            self.socket = bind_socket(host, port)
            if host.startswith("unix://"):
                self._owns_path = host[len("unix://") :]
        self.server_address: Any = self.socket.getsockname()
        self.address_family = self.socket.family
        if isinstance(self.server_address, tuple):
            self.host: str = host if fd is None else self.server_address[0]
            if self.host.startswith("[") and self.host.endswith("]"):
                self.host = self.host[1:-1]
            self.port: int = self.server_address[1]
        else:
            path = self.server_address if isinstance(self.server_address, str) else ""
            self.host = host if fd is None else f"unix://{path}"
            self.port = 0
        self.base_environ = self._make_base_environ()
        self._conns: dict[int, Connection] = {}
        self._callbacks: dict[int, Callable[[int], None]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        if hasattr(select, "epoll"):
            self._poller: EpollPoller | SelectorPoller = EpollPoller()
        else:  # pragma: no cover - not Linux
            self._poller = SelectorPoller(self._wake)
        self._poller.add_fixed(self._wake_r.fileno())
        self._runner: Runner = self._make_runner()
        # Inline, only the loop's thread touches connections, so interest can stay registered
        # between requests (level-triggered) instead of being re-armed after each one.
        self._level_triggered = isinstance(self._runner, InlineRunner)
        self._stop_requested = False
        self._interrupted = False
        self._loop_running = False
        self._loop_done = threading.Event()
        self._loop_done.set()
        self._closed = False
        self._accepting = False
        self._next_sweep = 0.0
        self._inline_timer: threading.Timer | None = None

    def _make_runner(self) -> Runner:
        return InlineRunner(self)

    def _make_base_environ(self) -> WSGIEnvironment:
        if isinstance(self.server_address, tuple):
            server_name, server_port = self.host, str(self.port)
        else:
            server_name, server_port = self.host[len("unix://") :] or "localhost", "0"
        return {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.ssl_context is not None else "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": self.multithread,
            "wsgi.multiprocess": self.multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
            "SERVER_SOFTWARE": self.handler_class.server_version,
            "SCRIPT_NAME": "",
            "SERVER_NAME": server_name,
            "SERVER_PORT": server_port,
        }

    def fileno(self) -> int:
        return self.socket.fileno()

    def log(self, type: str, message: str, *args: object) -> None:
        getattr(logger, type, logger.info)(message, *args)

    # -- running -------------------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until ``shutdown()`` or Ctrl+C; ``poll_interval`` is accepted and unused.

        The first Ctrl+C stops accepting and lets requests in flight finish for up to
        ``graceful_timeout`` seconds; a second one returns at once.
        """
        if self._closed:
            raise RuntimeError("serve_forever() called after server_close()")
        self._stop_requested = False
        self._interrupted = False
        self._loop_running = True
        self._loop_done.clear()
        previous = self._install_sigint()
        try:
            try:
                self._serve_loop()
            except KeyboardInterrupt:
                self._interrupted = True
            if self._interrupted:
                self._stop_gracefully()
        finally:
            self.cancel_inline_timer()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self._loop_running = False
            self._loop_done.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (from any thread) and wait until it returned."""
        self._stop_requested = True
        self._wake()
        if threading.current_thread() is not getattr(self, "_loop_thread", None):
            self._loop_done.wait()

    def server_close(self) -> None:
        """Close the listening socket and every idle connection; busy ones close when done."""
        if self._closed:
            return
        self._closed = True
        self.draining = True
        self._runner.stop()
        for conn in list(self._conns.values()):
            if conn.state != "busy":
                self.close_connection(conn)
        self._close_listener()
        self._poller.close()
        self._wake_r.close()
        self._wake_w.close()

    def _close_listener(self) -> None:
        if self.socket.fileno() >= 0:
            self._poller.forget(self.socket.fileno())
            self.socket.close()
        if self._owns_path is not None and not self.in_child:
            with contextlib.suppress(OSError):
                os.unlink(self._owns_path)
            self._owns_path = None

    def _install_sigint(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:
            return None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        self.draining = True  # responses in flight now end their connections
        logger.info(" * Stopping: finishing requests in flight (press CTRL+C again to quit now)")
        self._wake()
        if isinstance(self._runner, InlineRunner) and self._runner.busy:
            # The app runs in this very thread: give it the grace period, then interrupt it.
            timer = threading.Timer(self.graceful_timeout, _interrupt_main_thread)
            timer.daemon = True
            timer.start()
            self._inline_timer = timer

    def cancel_inline_timer(self) -> None:
        """The inline request the grace period was for is over: never interrupt anything else."""
        if self._inline_timer is not None:
            self._inline_timer.cancel()
            self._inline_timer = None

    def _stop_gracefully(self) -> None:
        self.draining = True
        self._stop_accepting()
        for conn in list(self._conns.values()):
            if conn.state != "busy":
                self.close_connection(conn)
        try:
            if not self._runner.wait_idle(self.graceful_timeout):
                logger.info(
                    " * Requests still running after %gs; stopping anyway", self.graceful_timeout
                )
        except KeyboardInterrupt:
            pass
        self._runner.stop()

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self._poller.forget(self.socket.fileno())

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

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
                for fd in poller.wait(timeout):
                    conn = conns.get(fd)
                    if conn is not None:
                        self._on_ready(conn)
                    elif fd == listen_fd:
                        if self._accepting:
                            self._accept()
                    elif fd == wake_fd:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        callback = callbacks.get(fd)
                        if callback is not None:
                            callback(fd)
                if conns and time.monotonic() >= self._next_sweep:
                    self._sweep()
        finally:
            self._stop_accepting()

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
                    logger.warning(" * Cannot accept a connection: %s", exc.strerror)
                    time.sleep(0.05)  # out of descriptors: avoid a busy loop until some close
                return
            self._open(sock, address, now)

    def _open(self, sock: socket.socket, address: Any, now: float) -> None:
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
        elif state == "linger":
            self._linger_read(conn)

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

    def _read(self, conn: Connection) -> None:
        sock = conn.sock
        try:
            data = sock.recv(RECV_SIZE)
            if conn.tls:
                # TLS may hold decrypted bytes the kernel no longer reports as readable.
                while (pending := sock.pending()) and len(data) < RECV_SIZE * 2:  # type: ignore[attr-defined]  # SSLSocket
                    data += sock.recv(pending)
        except (BlockingIOError, ssl.SSLWantReadError):
            self._watch(conn)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, write=True)
            return
        except OSError:
            self.close_connection(conn)
            return
        if not data:
            self.close_connection(conn)
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
        self.dispatch(conn, head)

    def dispatch(self, conn: Connection, head: RequestHead) -> None:
        conn.state = "busy"
        self._runner.submit(conn, head)

    def next_head(self, conn: Connection) -> RequestHead | None:
        """Parse the next complete head buffered on ``conn``; None while it is incomplete."""
        head, conn.scan = read_head(conn.buffer, conn.scan)
        return head

    def _reject(self, conn: Connection, error: HTTPError) -> None:
        line = bytes(conn.buffer[: conn.buffer.find(b"\n")]).rstrip(b"\r")[:200]
        log_rejected(conn.remote_addr, line.decode("latin-1"), error)
        with contextlib.suppress(OSError):
            conn.sock.send(error_response(error.status, error.reason, error.detail))
        self._linger(conn)

    def _reject_tls_on_plain(self, conn: Connection) -> None:
        logger.info(
            "%s tried to start a TLS (https://) connection to this plain HTTP server; "
            "use an http:// URL or start the server with TLS",
            conn.remote_addr,
        )
        error = HTTPError(400, "TLS handshake sent to a plain HTTP port")
        with contextlib.suppress(OSError):
            conn.sock.send(error_response(400, error.reason, error.detail))
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
            if conn.state == "read" and conn.buffer:
                self._reject(conn, HTTPError(408, "the request head did not arrive in time"))
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
        if self.in_child and conn.tls:
            # The child's TLS state diverges from the parent's copy: it cannot hand it back.
            conn.reusable = False
        while True:
            handler = self.handler_class(self, conn, head)
            if not handler.handle():
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
                    send_all(
                        conn.sock, error_response(error.status, error.reason, error.detail), 1.0
                    )
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
        if self._closed or not self._loop_running or (self.draining and outcome == "keep"):
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
        """Forget and close ``conn`` (callable from any thread)."""
        if self._conns.pop(conn.fd, None) is not None and conn.watching and not self.in_child:
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


class ThreadedWSGIServer(BaseWSGIServer):
    """Runs each request in a bounded pool of threads (``max_threads``)."""

    multithread = True
    max_threads = 64

    def _make_runner(self) -> Runner:
        return ThreadRunner(self, self.max_threads)


class ForkingWSGIServer(BaseWSGIServer):
    """Runs each request in a forked child; at most ``processes`` at once."""

    multiprocess = True

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
        processes: int = 40,
        handler: type[WSGIRequestHandler] | None = None,
        passthrough_errors: bool = False,
        ssl_context: Any = None,
        fd: int | None = None,
    ) -> None:
        if not hasattr(os, "fork"):
            raise ValueError("processes > 1 needs os.fork(), which this platform lacks")
        self.max_children = processes
        super().__init__(host, port, app, handler, passthrough_errors, ssl_context, fd)

    def _make_runner(self) -> Runner:
        return ForkRunner(self, self.max_children)


def _interrupt_main_thread() -> None:
    """A second Ctrl+C, sent by us: a real signal, so a blocking call in the app is cut short."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
    else:  # pragma: no cover - Windows
        import _thread

        _thread.interrupt_main()


def make_server(
    host: str,
    port: int,
    app: WSGIApplication,
    threaded: bool = False,
    processes: int = 1,
    request_handler: type[WSGIRequestHandler] | None = None,
    passthrough_errors: bool = False,
    ssl_context: Any = None,
    fd: int | None = None,
) -> BaseWSGIServer:
    """Create the server ``threaded``/``processes`` ask for, bound (or on inherited ``fd``).

    Raises ValueError for ``threaded=True`` with ``processes > 1``, TypeError for a non-int port.
    """
    check_port(port)
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be an integer >= 1, got {processes!r}")
    if threaded and processes > 1:
        raise ValueError(
            "cannot have a multi-threaded and multi-process server (threaded=True, processes>1)"
        )
    if threaded:
        return ThreadedWSGIServer(
            host, port, app, request_handler, passthrough_errors, ssl_context, fd
        )
    if processes > 1:
        return ForkingWSGIServer(
            host, port, app, processes, request_handler, passthrough_errors, ssl_context, fd
        )
    return BaseWSGIServer(host, port, app, request_handler, passthrough_errors, ssl_context, fd)


def _as_ssl_context(value: Any) -> ssl.SSLContext | None:
    if value is None or isinstance(value, ssl.SSLContext):
        return value
    try:
        from ._tls import as_ssl_context
    except ImportError:
        raise TypeError(
            f"ssl_context must be an ssl.SSLContext, a (cert, key) tuple or 'adhoc'; got {value!r}"
        ) from None
    return as_ssl_context(value)
