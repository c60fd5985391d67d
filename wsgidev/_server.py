"""The server classes and make_server: bind (or inherit) a socket, run the loop, stop cleanly.

_server_loop owns connections between requests, a runner (_server_runners) serves a complete
request inline, in a thread or in a child, and _handler turns it into an app call."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

from ._checks import check_app, check_fd, check_port, check_processes, check_request_handler
from ._handler import WSGIRequestHandler
from ._http_log import wants_colour
from ._http_response import FileWrapper
from ._log import ensure_handler, logger
from ._server_bind import bind_socket
from ._server_loop import Connection, ConnectionLoop
from ._server_poll import EpollPoller, SelectorPoller
from ._server_runners import ForkRunner, InlineRunner, Runner, ThreadRunner
from ._server_streams import StreamKeeper
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

# -- the servers -----------------------------------------------------------------------------


class BaseWSGIServer(ConnectionLoop):
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
    body_timeout = 30.0  # between two pieces of a request body
    body_total_timeout = 300.0  # for a whole request body (408 after it)
    # The loop receives every request body whole (in memory, then in a temporary file) before
    # a worker or the inline runner sees the request, in every mode: a client that stalls
    # mid-upload holds no worker. ``Expect: 100-continue`` gets its 100 from the loop once the
    # head passed its checks (a body over max_body_size gets 413 and no 100). False lets the
    # app stream the body from the connection instead, as it arrives.
    read_body_ahead = True
    # A body received ahead larger than this gets 413 (None: no limit).
    max_body_size: int | None = 1024 * 1024 * 1024
    # Received bodies stay in memory up to this size, then go to a temporary file.
    body_memory_limit = 1024 * 1024
    send_timeout = 30.0
    linger_timeout = 2.0
    # Unread request body is dropped for at most this long to keep the connection; in the base
    # server that time is taken from every other client, so it is short.
    drain_timeout = 0.5
    graceful_timeout = 5.0
    # On a graceful stop, a request still arriving (TLS handshake, partial head or body, a new
    # client yet to send) gets this long to become a request before idle connections close.
    arrival_timeout = 0.5

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
        check_app(app)
        check_fd(fd)
        check_request_handler(handler, WSGIRequestHandler)
        if handler is None:
            handler = WSGIRequestHandler
        ensure_handler()
        self.app = app
        self.handler_class = handler
        self.passthrough_errors = passthrough_errors
        self.ssl_context = _as_ssl_context(ssl_context)
        self.in_child = False
        self.draining = False
        self.log_colour = wants_colour()
        self._owns_path: str | None = None
        self._open_socket(host, port, fd)
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
        self._streams = StreamKeeper(self._wake, self.close_connection)
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

    def _open_socket(self, host: str, port: int, fd: int | None) -> None:
        """Bind (or adopt the inherited ``fd``) and set ``socket``, ``host`` and ``port``."""
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

    @property
    def open_connections(self) -> int:
        """How many client connections the server holds (idle, arriving or being served)."""
        return len(self._conns)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is running (at most ``timeout`` seconds); False if one still is."""
        return self._runner.wait_idle(timeout)

    @property
    def open_streams(self) -> int:
        """How many event streams (see LiveReloadMiddleware) the I/O loop keeps open."""
        return len(self._streams)

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
        if self.socket.fileno() < 0:
            raise RuntimeError("serve_forever() called after Ctrl+C closed the listening socket")
        self._stop_requested = False
        self._interrupted = False
        self._loop_running = True
        self._loop_done.clear()
        previous = self._install_sigint()
        previous_wakeup = self._install_wakeup_fd()
        try:
            try:
                self._serve_loop()
            except KeyboardInterrupt:
                self._interrupted = True
            if self._interrupted:
                self.stop_gracefully()
        finally:
            self.cancel_inline_timer()
            if previous_wakeup is not None:
                signal.set_wakeup_fd(previous_wakeup)
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
        self._streams.end_all()
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

    def _install_wakeup_fd(self) -> int | None:
        """Have every signal wake the loop at the OS level; return the fd to restore.

        Python runs a signal handler only between bytecodes of the main thread. A signal that
        lands just before the loop blocks in its poll, or that the kernel hands to another
        thread, leaves the poll blocked and the handler pending. With the wake-up socket as
        the wake-up fd, the C-level handler writes a byte to it, so the poll returns and the
        handler runs.
        """
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
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
            # The app runs in this very thread (the loop is not inside poll), so the listener can
            # close now: new clients are refused during the grace period, as in the other modes.
            self._stop_listening()
            # Give the app the grace period, then interrupt it.
            timer = threading.Timer(self.graceful_timeout, self._grace_period_over)
            timer.daemon = True
            timer.start()
            self._inline_timer = timer

    def _grace_period_over(self) -> None:
        logger.info(" * Requests still running after %gs; stopping anyway", self.graceful_timeout)
        _interrupt_main_thread()

    def cancel_inline_timer(self) -> None:
        """The inline request the grace period was for is over: never interrupt anything else."""
        if self._inline_timer is not None:
            self._inline_timer.cancel()
            self._inline_timer = None

    def _stop_listening(self) -> None:
        """Stop accepting and close the listener, so new clients are refused, not left waiting."""
        self._stop_accepting()
        self._close_listener()

    def stop_gracefully(self, arrival_timeout: float | None = None) -> None:
        """Stop accepting, serve what is arriving and in flight (bounded), close the rest.

        ``arrival_timeout`` overrides the class's for this stop (a reloader restart waits longer).
        """
        self.draining = True
        self._stop_listening()
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl+C: stop waiting for them
            self.finish_arrivals(
                self.arrival_timeout if arrival_timeout is None else arrival_timeout
            )
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

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")


class ThreadedWSGIServer(BaseWSGIServer):
    """Runs each request in a bounded pool of threads (``max_threads``, keyword only)."""

    multithread = True
    max_threads = 64

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
        handler: type[WSGIRequestHandler] | None = None,
        passthrough_errors: bool = False,
        ssl_context: Any = None,
        fd: int | None = None,
        *,
        max_threads: int | None = None,
    ) -> None:
        if max_threads is not None:
            if isinstance(max_threads, bool) or not isinstance(max_threads, int):
                raise TypeError(f"max_threads must be an integer, got {type(max_threads).__name__}")
            if max_threads < 1:
                raise ValueError(f"max_threads must be at least 1, got {max_threads}")
            self.max_threads = max_threads
        super().__init__(host, port, app, handler, passthrough_errors, ssl_context, fd)

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

    Raises TypeError for an ``app`` that is not callable or a ``port``, ``processes`` or ``fd``
    that is not an int, ValueError for ``threaded=True`` with ``processes > 1``.
    """
    check_port(port)
    check_app(app)
    check_processes(processes, threaded)
    check_fd(fd)
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
