"""Beside the server: the supervisor that keeps the socket and restarts the serving child.

The supervisor binds nothing itself (run_simple hands it the listening socket), never imports
new code and never serves: it starts ``python -c <bootstrap>`` with the socket inherited, and
starts it again when the child exits with RESTART_EXIT_CODE. Requests sent meanwhile wait in
the socket's backlog. Watching and serving happen in the child (child).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from types import FrameType
from typing import Any

from .._log import logger
from .process import describe_exit, forget_bytecode, interpreter_flags
from .protocol import (
    BOOTSTRAP,
    CRASHED_ENV,
    NOTIFY_ENV,
    OPTIONS_ENV,
    RESTART_EXIT_CODE,
    RETIRING,
    RUN_MAIN_ENV,
    SERVER_FD_ENV,
    SERVING,
    STANDBY_ENV,
    TARGET_ENV,
    ReloaderOptions,
    Target,
)
from .terminal import start_terminal_reader
from .watch.scope import (
    RELOADER_TYPE_ENV,
    WatcherName,
    WatchScope,
    make_watcher,
    resolve_watcher_name,
)

# One byte per event on the supervisor's wake-up pipe.
_CHILD_EXITED = b"C"
_RELOAD = b"R"
_INTERRUPT = b"I"
_TERMINATE = b"T"

# After Ctrl+C the child finishes its in-flight requests (the server allows 5 s); past this it
# is killed. A second Ctrl+C kills it at once.
GRACE_SECONDS = 7.0
# A spare child (interpreter started, wsgidev imported, user code not) is started once the
# new child serves, or this long after a restart, so it never competes with the child that is
# starting for the CPU.
STANDBY_DELAY_SECONDS = 1.5


def run_with_reloader(listener: socket.socket, options: ReloaderOptions) -> None:
    """Supervise children serving on ``listener`` until Ctrl+C; return normally then.

    Raises ``ValueError`` for an unknown or unavailable ``reloader_type`` before any child runs.
    """
    watcher = resolve_watcher_name(options.reloader_type)
    Supervisor(listener, options, watcher, Target.of_this_process()).run()


class Supervisor:
    """The parent process: starts, restarts and stops the serving child; never serves."""

    def __init__(
        self,
        listener: socket.socket,
        options: ReloaderOptions,
        watcher: WatcherName,
        target: Target,
    ) -> None:
        self.listener = listener
        self.options = options
        self.watcher_name = watcher
        self.target = target
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self._deadline = 0.0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._waiting: tuple[threading.Event, threading.Thread] | None = None
        # The warm spare and the pipe end that tells it to go; started STANDBY_DELAY after a start.
        self._standby: tuple[subprocess.Popen[bytes], int] | None = None
        self._standby_due: float | None = None
        # Children that stopped accepting for a restart and finish their requests meanwhile.
        self._retiring: list[subprocess.Popen[bytes]] = []
        # The child that answers 500 after a crash (it never runs the program).
        self._crash_server: subprocess.Popen[bytes] | None = None

    # -- events --------------------------------------------------------------------------
    def _wake(self, event: bytes) -> None:
        with contextlib.suppress(OSError):  # a full pipe already holds a wake-up
            os.write(self._wake_w, event)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            self._wake(_TERMINATE)
        elif signum == getattr(signal, "SIGHUP", None):
            self._wake(_RELOAD)
        else:
            self._wake(_INTERRUPT)

    def run(self) -> None:
        handled = [signal.SIGINT, signal.SIGTERM]
        if hasattr(signal, "SIGHUP"):
            handled.append(signal.SIGHUP)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        # The C-level handler writes the signal's number to the pipe, so a signal that lands
        # just before select() blocks still wakes it and the Python handler runs; those bytes
        # are no event of ours and _handle() skips them.
        previous_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.listener.set_inheritable(True)
        stop_stdin = threading.Event()
        start_terminal_reader(lambda: self._wake(_RELOAD), stop_stdin)
        try:
            self._spawn()
            while True:
                ready, _, _ = select.select([self._wake_r], [], [], self._timeout())
                events = os.read(self._wake_r, 64) if ready else b""
                if not self._handle(events):
                    return
                self._maybe_start_standby()
        finally:
            stop_stdin.set()
            self._stop_waiting()
            self._drop_standby()
            self._kill_child()
            self._wait_retiring()
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _timeout(self) -> float | None:
        due = [self._deadline] if self.stopping else []
        if self._standby_due is not None:
            due.append(self._standby_due)
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _handle(self, events: bytes) -> bool:
        """Act on a batch of events; False once the supervisor should return."""
        for event in events:
            byte = bytes([event])
            if byte == _CHILD_EXITED and not self._on_child_exit():
                return False
            if byte == RETIRING:
                self._on_retiring()
            if byte == SERVING and self._standby_due is not None:
                self._standby_due = time.monotonic()  # the child is up: the CPU is free again
            if byte == _RELOAD:
                self._reload()
            if byte in (_INTERRUPT, _TERMINATE) and not self._on_stop_signal(byte):
                return False
        if self.stopping and time.monotonic() >= self._deadline:
            return self._escalate()
        return True

    def _on_retiring(self) -> None:
        """The child stopped accepting to restart: start the next one while it finishes up."""
        child = self.child
        if child is None or self.stopping:
            return
        self._retiring.append(child)
        self.child = None
        self._spawn()

    def _on_child_exit(self) -> bool:
        self._retiring = [p for p in self._retiring if p.returncode is None]
        if self._standby is not None and self._standby[0].poll() is not None:
            self._drop_standby()  # a spare that died (or was told to go away) is just replaced
            self._standby_due = time.monotonic() + STANDBY_DELAY_SECONDS
        child = self.child
        if child is None or child.returncode is None:
            return True  # a stale notice from a child already handled
        self.child = None
        code = child.returncode
        if self.stopping:
            return False
        if code == RESTART_EXIT_CODE:
            self._spawn()
        elif code == 0:
            return False  # the child was stopped on its own (Ctrl+C sent to it alone)
        else:
            logger.error(
                " * The server process %s; restarting after the next change "
                "(or on SIGHUP / Enter).",
                describe_exit(code),
            )
            if child is self._crash_server or not self._serve_crash(describe_exit(code)):
                self._start_waiting()  # never loop: the explaining child itself failed
        return True

    def _serve_crash(self, how: str) -> bool:
        """Start a child that answers every request with a 500 saying the server ``how`` died.

        Without it requests would wait unanswered in the backlog until a change. That child
        watches like any other and exits for a restart on a change, SIGHUP or Enter.
        """
        if self.options.ssl == "unavailable":
            return False  # it could not answer over TLS either (an SSLContext is not passed on)
        # The modules this process loaded (the program up to run_simple) stay watched, as the
        # dead child watched them, even those outside the project's directories.
        known = WatchScope(self.options.watch_options()).module_files
        options = replace(self.options, extra_files=(*self.options.extra_files, *sorted(known)))
        try:
            self.child = self._start_process(standby=False, crashed=how, options=options)
        except OSError as exc:
            logger.warning(" * Could not start a process to report it: %s", exc)
            return False
        self._crash_server = self.child
        return True

    def _reload(self) -> None:
        if self.stopping:
            return
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGHUP)
        else:
            self._stop_waiting()
            self._spawn()

    def _on_stop_signal(self, byte: bytes) -> bool:
        if self.child is None:
            return False
        if self.stopping:  # the second Ctrl+C: stop at once
            self._kill_child()
            return False
        self.stopping = True
        self._drop_standby()
        # SIGTERM is the child's graceful stop that never counts as a second Ctrl+C, so it is
        # safe to send whether or not the terminal's Ctrl+C reached the child too.
        with contextlib.suppress(ProcessLookupError):
            self.child.terminate()
        self._deadline = time.monotonic() + GRACE_SECONDS
        return True

    def _escalate(self) -> bool:
        child = self.child
        if child is not None and child.poll() is None:
            logger.warning(" * The server process did not stop in time; killing it")
            self._kill_child()
        return False

    # -- the child -------------------------------------------------------------------------
    def _spawn(self) -> None:
        """Start serving: wake the spare child if there is one, else start a new process."""
        logger.info(" * Restarting with %s", self.watcher_name)
        self._standby_due = None if self.stopping else time.monotonic() + STANDBY_DELAY_SECONDS
        standby, self._standby = self._standby, None
        if standby is not None:
            process, go = standby
            try:
                os.write(go, b"g")
                self.child = process
                return
            except OSError:  # it died meanwhile: start afresh
                pass
            finally:
                os.close(go)
        self.child = self._start_process(standby=False)

    def _start_process(
        self, standby: bool, crashed: str | None = None, options: ReloaderOptions | None = None
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            RUN_MAIN_ENV: "true",
            SERVER_FD_ENV: str(self.listener.fileno()),
            OPTIONS_ENV: (options or self.options).to_json(),
            TARGET_ENV: self.target.to_json(),
            RELOADER_TYPE_ENV: self.watcher_name,
            NOTIFY_ENV: str(self._wake_w),
        }
        if crashed is not None:
            env[CRASHED_ENV] = crashed
        fds = [self.listener.fileno(), self._wake_w]
        go_read = go_write = -1
        if standby:
            go_read, go_write = os.pipe()
            env[STANDBY_ENV] = str(go_read)
            fds.append(go_read)
        args = [sys.executable, *interpreter_flags(), "-c", BOOTSTRAP]
        try:
            # A spare starts in a session of its own: the terminal's Ctrl+C must not land in
            # it while Python is still starting up (an uncatchable "init_import_site" crash).
            # Once it serves, the supervisor stops it with SIGTERM like any child.
            process = subprocess.Popen(args, env=env, pass_fds=fds, start_new_session=standby)
        finally:
            if standby:
                os.close(go_read)
        if standby:
            self._standby = (process, go_write)

        def reap() -> None:
            process.wait()
            self._wake(_CHILD_EXITED)

        threading.Thread(target=reap, name=f"wsgidev-reap-{process.pid}", daemon=True).start()
        return process

    def _maybe_start_standby(self) -> None:
        due = self._standby_due
        if due is None or time.monotonic() < due:
            return
        self._standby_due = None
        if self._standby is None and self.child is not None and not self.stopping:
            try:
                self._start_process(standby=True)
            except OSError as exc:  # out of processes or memory: restarts just start cold
                logger.warning(" * Could not start a spare server process: %s", exc)

    def _drop_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is None:
            return
        process, go = standby
        with contextlib.suppress(OSError):
            os.close(go)  # end of file: the spare exits by itself
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(2)
        if process.poll() is None:
            process.kill()
            process.wait()

    def _wait_retiring(self) -> None:
        deadline = time.monotonic() + GRACE_SECONDS
        for process in self._retiring:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._retiring = []

    def _kill_child(self) -> None:
        child = self.child
        if child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5)

    # -- after a crash: wait for a change without a child --------------------------------------
    def _start_waiting(self) -> None:
        """Watch from here until a change: the child that knew the modules is gone."""
        stop = threading.Event()

        def watch() -> None:
            watcher = make_watcher(self.watcher_name, WatchScope(self.options.watch_options()))
            try:
                path = watcher.wait_for_change(stop)
            finally:
                watcher.close()
            if path is not None:
                logger.info(" * Detected change in '%s', reloading", path)
                forget_bytecode(path)
                self._wake(_RELOAD)

        thread = threading.Thread(target=watch, name="wsgidev-watch-crashed", daemon=True)
        thread.start()
        self._waiting = (stop, thread)

    def _stop_waiting(self) -> None:
        if self._waiting is not None:
            stop, thread = self._waiting
            stop.set()
            thread.join(timeout=2)
            self._waiting = None

    # -- Enter on the terminal ---------------------------------------------------------------


def pass_through(values: Iterable[str] | None) -> tuple[str, ...]:
    """``extra_files``/``exclude_patterns`` as a tuple of str (``os.PathLike`` accepted)."""
    return tuple(os.fspath(v) for v in values or ())


def served_by_the_child(environ: Any, start_response: Any) -> Any:
    """The app a command hands run_simple in the reloader's supervisor, which never serves:
    only its child imports and serves the real app."""
    raise RuntimeError("the reloader's supervisor process does not serve requests")
