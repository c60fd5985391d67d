"""The server classes and make_server: bind (or inherit) a socket, run the loop, stop cleanly.

A server is assembled from parts that each own one thing: the listener (_server.bind), the
settings (_server.settings), the I/O loop that owns every connection (_server.loop), a runner
that serves a complete request inline, in a thread or in a child (_server.runners), and the
handler class that turns a request into an app call (_server.handler)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import sys
import threading
from typing import Any

from .._checks import (
    check_app,
    check_fd,
    check_max_threads,
    check_port,
    check_processes,
    check_request_handler,
    check_settings,
)
from .._http.log import wants_colour
from .._http.response import FileWrapper
from .._log import ensure_handler, logger
from .._types import WSGIApplication, WSGIEnvironment
from .bind import Listener, bind_socket
from .connection import Connection
from .forking import ForkRunner
from .handler import WSGIRequestHandler
from .loop import ConnectionLoop
from .runners import InlineRunner, LoopPort, Runner, ThreadRunner
from .settings import ServerSettings

__all__ = [
    "BaseWSGIServer",
    "Connection",
    "ForkingWSGIServer",
    "ServerSettings",
    "ThreadedWSGIServer",
    "bind_socket",
    "check_port",
    "make_server",
]

# -- the servers -----------------------------------------------------------------------------


class BaseWSGIServer:
    """HTTP/1.1 server that runs the app in the loop's thread, one request at a time.

    Keep-alive works here too: idle connections wait in the loop, not in the app's thread, so
    one idle client never blocks another. Timeouts and limits come from ``settings``.
    """

    multithread = False
    multiprocess = False

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
        settings: ServerSettings | None = None,
    ) -> None:
        check_port(port)
        check_app(app)
        check_fd(fd)
        check_request_handler(handler, WSGIRequestHandler)
        check_settings(settings, ServerSettings)
        ensure_handler()
        self.app = app
        self.handler_class = handler or WSGIRequestHandler
        self.passthrough_errors = passthrough_errors
        self.ssl_context = _as_ssl_context(ssl_context)
        self.settings = settings or ServerSettings()
        self.log_colour = wants_colour()
        listener = self._open_listener(host, port, fd)
        self.socket = listener.sock
        self.base_environ = self._make_base_environ()
        handler_class = self.handler_class
        self._loop = ConnectionLoop(
            listener,
            self.settings,
            self._make_runner,
            lambda conn, head: handler_class(self, conn, head),
            f"{handler_class.server_version} {handler_class.sys_version}",
            passthrough_errors,
        )
        self._interrupted = False
        self._done = threading.Event()  # clear while serve_forever runs
        self._done.set()
        self._serving_thread: threading.Thread | None = None
        self._closed = False
        self._inline_timer: threading.Timer | None = None

    def _open_listener(self, host: str, port: int, fd: int | None) -> Listener:
        """Bind (or adopt the inherited ``fd``) and set ``host``, ``port``, ``server_address``."""
        listener = Listener(socket.socket(fileno=fd) if fd is not None else bind_socket(host, port))
        listener.ssl_context = self.ssl_context
        if fd is not None:
            listener.sock.setblocking(False)
        elif host.startswith("unix://"):
            listener.unix_path = host[len("unix://") :]
        self.server_address: Any = listener.sock.getsockname()
        self.address_family = listener.sock.family
        if isinstance(self.server_address, tuple):
            self.host: str = host if fd is None else self.server_address[0]
            if self.host.startswith("[") and self.host.endswith("]"):
                self.host = self.host[1:-1]
            self.port: int = self.server_address[1]
        else:
            path = self.server_address if isinstance(self.server_address, str) else ""
            self.host = host if fd is None else f"unix://{path}"
            self.port = 0
        return listener

    def _make_runner(self, loop: LoopPort) -> Runner:
        return InlineRunner(loop)

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
    def serving(self) -> bool:
        """True while ``serve_forever`` runs."""
        return not self._done.is_set()

    @property
    def draining(self) -> bool:
        """True once the server stops: responses in flight end their connections."""
        return self._loop.draining

    @property
    def in_child(self) -> bool:
        """True in a forked request child (the forking server)."""
        return self._loop.in_child

    @property
    def open_connections(self) -> int:
        """How many client connections the server holds (idle, arriving or being served)."""
        return self._loop.open_connections

    @property
    def open_streams(self) -> int:
        """How many event streams (see LiveReloadMiddleware) the I/O loop keeps open."""
        return self._loop.open_streams

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is running (at most ``timeout`` seconds); False if one still is."""
        return self._loop.runner.wait_idle(timeout)

    def log(self, type: str, message: str, *args: object) -> None:
        getattr(logger, type, logger.info)(message, *args)

    # -- running -------------------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until ``shutdown()`` or Ctrl+C; ``poll_interval`` is accepted and unused.

        The first Ctrl+C stops accepting and lets requests in flight finish for up to
        ``settings.graceful_timeout`` seconds; a second one returns at once.
        """
        if self._closed:
            raise RuntimeError("serve_forever() called after server_close()")
        if self.socket.fileno() < 0:
            raise RuntimeError("serve_forever() called after Ctrl+C closed the listening socket")
        self._interrupted = False
        self._loop.clear_stop()
        self._serving_thread = threading.current_thread()
        self._done.clear()
        previous = self._install_sigint()
        previous_wakeup = self._install_wakeup_fd()
        try:
            try:
                self._loop.run()
            except KeyboardInterrupt:
                if self._interrupted:
                    # A second Ctrl+C that landed before the graceful stop began: quit now.
                    self._stop_now()
                    return
                self._interrupted = True
            if self._interrupted:
                self.stop_gracefully()
        finally:
            self._cancel_inline_timer()
            if previous_wakeup is not None:
                signal.set_wakeup_fd(previous_wakeup)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self._serving_thread = None
            self._done.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (from any thread) and wait until it returned."""
        self._loop.request_stop()
        if self._serving_thread is not threading.current_thread():
            self._done.wait()

    def server_close(self) -> None:
        """Close the listening socket and every idle connection; busy ones close when done."""
        if self._closed:
            return
        self._closed = True
        self._loop.close_all()

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
            return signal.set_wakeup_fd(self._loop.wake_fd, warn_on_full_buffer=False)
        except ValueError:
            return None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        self._loop.draining = True  # responses in flight now end their connections
        logger.info(" * Stopping: finishing requests in flight (press CTRL+C again to quit now)")
        self._loop.request_stop()
        runner = self._loop.runner
        if isinstance(runner, InlineRunner) and runner.busy:
            # The app runs in this very thread (the loop is not inside poll), so the listener can
            # close now: new clients are refused during the grace period, as in the other modes.
            self._loop.stop_listening()
            # Give the app the grace period, then interrupt it (if it is still that request).
            grace = self.settings.graceful_timeout
            timer = threading.Timer(grace, self._grace_period_over, (runner, runner.serial))
            timer.daemon = True
            timer.start()
            self._inline_timer = timer

    def _grace_period_over(self, runner: InlineRunner, serial: int) -> None:
        if runner.busy and runner.serial == serial:
            logger.info(
                " * Requests still running after %gs; stopping anyway",
                self.settings.graceful_timeout,
            )
            _interrupt_main_thread()

    def _cancel_inline_timer(self) -> None:
        if self._inline_timer is not None:
            self._inline_timer.cancel()
            self._inline_timer = None

    def _stop_now(self) -> None:
        """Close the listener and every idle connection, and let requests in flight go."""
        self._loop.draining = True
        self._loop.stop_listening()
        self._loop.close_idle()
        self._loop.runner.stop()

    def stop_gracefully(self, arrival_timeout: float | None = None) -> None:
        """Stop accepting, serve what is arriving and in flight (bounded), close the rest.

        ``arrival_timeout`` overrides the settings' for this stop (a reloader restart waits
        longer). Call it in the thread that ran ``serve_forever``, once that returned. A second
        Ctrl+C at any point of it stops waiting at once.
        """
        loop = self._loop
        try:
            loop.draining = True
            loop.stop_listening()
            loop.finish_arrivals(
                self.settings.arrival_timeout if arrival_timeout is None else arrival_timeout
            )
            loop.close_idle()
            grace = self.settings.graceful_timeout
            if not loop.runner.wait_idle(grace):
                logger.info(" * Requests still running after %gs; stopping anyway", grace)
        except KeyboardInterrupt:
            pass
        self._stop_now()  # connections finished meanwhile, and the runner


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
        settings: ServerSettings | None = None,
    ) -> None:
        if max_threads is not None:
            self.max_threads = check_max_threads(max_threads)
        super().__init__(
            host, port, app, handler, passthrough_errors, ssl_context, fd, settings=settings
        )

    def _make_runner(self, loop: LoopPort) -> Runner:
        return ThreadRunner(loop, self.max_threads)


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
        *,
        settings: ServerSettings | None = None,
    ) -> None:
        if not hasattr(os, "fork"):
            raise ValueError("processes > 1 needs os.fork(), which this platform lacks")
        self.max_children = processes
        super().__init__(
            host, port, app, handler, passthrough_errors, ssl_context, fd, settings=settings
        )

    def _make_runner(self, loop: LoopPort) -> Runner:
        return ForkRunner(loop, self.max_children)


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
    *,
    settings: ServerSettings | None = None,
) -> BaseWSGIServer:
    """Create the server ``threaded``/``processes`` ask for, bound (or on inherited ``fd``).

    Raises TypeError for an ``app`` that is not callable or a ``port``, ``processes`` or ``fd``
    that is not an int, ValueError for ``threaded=True`` with ``processes > 1``. ``settings``
    (keyword only) holds the timeouts and limits.
    """
    check_port(port)
    check_app(app)
    check_processes(processes, threaded)
    check_fd(fd)
    args = (request_handler, passthrough_errors, ssl_context, fd)
    if threaded:
        return ThreadedWSGIServer(host, port, app, *args, settings=settings)
    if processes > 1:
        return ForkingWSGIServer(host, port, app, processes, *args, settings=settings)
    return BaseWSGIServer(host, port, app, *args, settings=settings)


def _as_ssl_context(value: Any) -> ssl.SSLContext | None:
    if value is None or isinstance(value, ssl.SSLContext):
        return value
    try:
        from .._tls import as_ssl_context
    except ImportError:
        raise TypeError(
            f"ssl_context must be an ssl.SSLContext, a (cert, key) tuple or 'adhoc'; got {value!r}"
        ) from None
    return as_ssl_context(value)
