"""The reloaded child: run the program again, serve, exit with RESTART_EXIT_CODE on a change.

The supervisor starts ``python -c BOOTSTRAP``; ``main`` runs the user's script or module the
way Python would. When the app fails to import, the error is caught here and served (a 500 for
every request) under the same file watch, so saving the fix restarts the child again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import runpy
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from .._log import logger
from .._types import WSGIApplication
from .process import forget_bytecode, interpreter_flags
from .protocol import (
    BOOTSTRAP,
    CRASHED_ENV,
    NOTIFY_ENV,
    OPTIONS_ENV,
    RESTART_EXIT_CODE,
    RETIRING,
    SERVER_FD_ENV,
    SERVING,
    STANDBY_ENV,
    TARGET_ENV,
    ReloaderOptions,
    Target,
)
from .startup_error import crash_report, startup_failure
from .watch.scope import WatchScope, make_watcher, resolve_watcher_name

if TYPE_CHECKING:
    from .._server.servers import BaseWSGIServer

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_START_DELAY = 0.2
# Event watchers (watchfiles, watchdog) register their OS watches in threads of their own, a
# moment after they are made: once this long has passed, a save made before they listened is
# looked for by comparing modification times.
CATCH_UP_DELAY = 1.5
# Set once run_simple serves: an exception escaping after that is a crash, not a startup error.
_serving = threading.Event()
# When this process began to import the program: a module saved after that (a save during the
# restart, before the watch began) may not be what was imported.
_started_at = [time.time()]


def main() -> None:
    """Entry point of ``python -c BOOTSTRAP``: run the program as its own ``__main__``."""
    target = Target.from_json(os.environ[TARGET_ENV])
    options = ReloaderOptions.from_json(os.environ[OPTIONS_ENV])
    _die_with_parent()
    signal.signal(signal.SIGTERM, _interrupt)
    sys.argv[:] = list(target.argv)
    if sys.path and sys.path[0] == "":  # what -c put first; the program expects its own
        sys.path[0] = target.path0
    standby = os.environ.pop(STANDBY_ENV, None)
    try:
        if standby is not None and not _wait_for_turn(int(standby), options):
            return
    except KeyboardInterrupt:
        return  # the spare is let go (Ctrl+C, the supervisor stopping): nothing to say
    _started_at[0] = time.time()
    crashed = os.environ.pop(CRASHED_ENV, None)
    if crashed is not None:
        with contextlib.suppress(KeyboardInterrupt):
            _serve_error(*crash_report(crashed, options), options)
        return
    try:
        if target.kind == "module":
            runpy.run_module(target.target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target.target, run_name="__main__")
    except KeyboardInterrupt:
        return  # Ctrl+C (or the supervisor going away) while starting: a quiet stop
    except Exception as exc:  # the boundary between the user's program and the reloader
        if _serving.is_set():
            raise
        _serve_error(*startup_failure(exc, options), options)


def _wait_for_turn(go: int, options: ReloaderOptions) -> bool:
    """As the supervisor's spare: import wsgidev now, then wait until told to run the program.

    This takes the interpreter start and wsgidev's own imports out of the restart. Returns
    False when the supervisor lets the spare go (end of file) or on Ctrl+C. A module imported
    here whose file changed meanwhile (wsgidev itself in an editable install) makes the spare
    start over in a fresh interpreter, so no stale code is ever run.
    """
    hangup = getattr(signal, "SIGHUP", None)
    previous = signal.signal(hangup, signal.SIG_IGN) if hangup is not None else None
    try:
        import wsgidev.serving  # noqa: F401  (what every child imports first)

        importlib.import_module(
            f"wsgidev._reload.watch.{resolve_watcher_name(options.reloader_type)}"
        )
        loaded = _loaded_files()
        answer = os.read(go, 1)
    except KeyboardInterrupt:
        return False
    finally:
        os.close(go)
        if hangup is not None:
            signal.signal(hangup, previous)
    if answer != b"g":
        return False
    if _loaded_files() != loaded:
        os.execv(sys.executable, [sys.executable, *interpreter_flags(), "-c", BOOTSTRAP])
    return True


def _loaded_files() -> dict[str, int]:
    """Modification times of every loaded module's file."""
    found: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            with contextlib.suppress(OSError):
                found[path] = os.stat(path).st_mtime_ns
    return found


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM from the supervisor (or its death): stop like Ctrl+C, finishing requests.
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the supervisor dies, so no orphan keeps serving."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        raise SystemExit(0)


def serve_with_reloader(server: BaseWSGIServer, options: ReloaderOptions) -> None:
    """Serve until a watched file changes (then exit with RESTART_EXIT_CODE) or Ctrl+C (return).

    SIGHUP asks for a restart too. The watch starts in a thread while the server already
    answers, so requests queued during the restart are not kept waiting for it.
    """
    _serving.set()
    _tell_supervisor(SERVING)
    restart = threading.Event()
    stopping = threading.Event()
    stop = threading.Event()

    def request_restart() -> None:
        if not restart.is_set():
            restart.set()
            # shutdown() waits for serve_forever to notice, so never call it from its thread.
            threading.Thread(target=server.shutdown, name="wsgidev-restart", daemon=True).start()

    def changed(scope: WatchScope, path: str) -> None:
        if not restart.is_set():
            logger.info(" * Detected change in '%s', reloading", path)
            _forget_fresh_bytecode(scope, path)
            request_restart()

    def watch() -> None:
        # Requests queued during the restart go first: the watch starts a moment later, and
        # _saved_since_start catches what was saved meanwhile.
        if stop.wait(WATCH_START_DELAY):
            return
        scope = WatchScope(options.watch_options())
        before = _modification_times(scope)
        watcher = make_watcher(resolve_watcher_name(options.reloader_type), scope)
        threading.Thread(
            target=catch_up, args=(scope, before), name="wsgidev-watch-catch-up", daemon=True
        ).start()
        try:
            path = _saved_since_start(scope) or watcher.wait_for_change(stop)
        finally:
            watcher.close()
        if path is not None:
            changed(scope, path)

    def catch_up(scope: WatchScope, before: dict[str, float]) -> None:
        """A save between the snapshot and the moment the watcher listened: look once."""
        if stop.wait(CATCH_UP_DELAY):
            return
        path = _first_changed(before)
        if path is not None:
            changed(scope, path)

    def on_sighup(signum: int, frame: FrameType | None) -> None:
        logger.info(" * Reloading on request")
        request_restart()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # The supervisor stopping (Ctrl+C, SIGTERM, its death): finish requests, then exit 0.
        # Unlike a forwarded SIGINT this never counts as a second, impatient Ctrl+C.
        stopping.set()
        threading.Thread(target=server.shutdown, name="wsgidev-stop", daemon=True).start()

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_sighup)
    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=watch, name="wsgidev-watch", daemon=True).start()
    try:
        server.serve_forever()
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, _interrupt)
    if restart.is_set() and not stopping.is_set():
        _tell_supervisor(RETIRING)
    if restart.is_set() or stopping.is_set():
        _finish_in_flight(server, restarting=restart.is_set() and not stopping.is_set())
    if restart.is_set() and not stopping.is_set():
        server.server_close()
        sys.exit(RESTART_EXIT_CODE)


# Seconds a retiring child keeps serving connections whose first request is still arriving.
RESTART_ARRIVAL_TIMEOUT = 3.0


def _forget_fresh_bytecode(scope: WatchScope, changed: str) -> None:
    """Drop the ``.pyc`` of every module saved in the last seconds (a burst saves several)."""
    recent = time.time() - 2.0  # bytecode caches compare whole-second mtimes
    forget_bytecode(changed)
    for path in scope.module_files:
        with contextlib.suppress(OSError):
            if os.stat(path).st_mtime > recent:
                forget_bytecode(path)


def _modification_times(scope: WatchScope) -> dict[str, float]:
    times = {}
    for path in scope.initial_files():
        with contextlib.suppress(OSError):
            times[path] = os.stat(path).st_mtime
    return times


def _first_changed(before: dict[str, float]) -> str | None:
    """The first file of ``before`` modified (or removed) since its time was taken."""
    for path, mtime in sorted(before.items()):
        try:
            if os.stat(path).st_mtime != mtime:
                return path
        except OSError:
            return path
    return None


def _saved_since_start(scope: WatchScope) -> str | None:
    """A watched file modified after this process started importing, if any."""
    now = time.time()
    for path in sorted(scope.initial_files()):
        with contextlib.suppress(OSError):
            # A time in the future is a skewed clock, not a save: never a reason to restart.
            if _started_at[0] < os.stat(path).st_mtime <= now:
                return path
    return None


def _tell_supervisor(event: bytes) -> None:
    notify = os.environ.get(NOTIFY_ENV, "")
    if notify.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(notify), event)


def _finish_in_flight(server: BaseWSGIServer, restarting: bool) -> None:
    """Let requests already accepted finish (bounded) before this process exits.

    ``shutdown()`` only stops the loop; the server's own graceful stop (what Ctrl+C does) also
    waits for busy requests. New connections meanwhile wait in the backlog for the next child.
    On a restart nobody waits for this process, so a client it accepted whose request is slow to
    arrive (a TLS handshake while the next child starts and takes the CPU) is given longer.
    """
    if restarting:
        server.stop_gracefully(arrival_timeout=RESTART_ARRIVAL_TIMEOUT)
    else:
        server.stop_gracefully()


def _serve_error(app: WSGIApplication, files: list[str], options: ReloaderOptions) -> None:
    """Serve ``app`` on the inherited socket until a change; ``files`` are watched too."""
    target = Target.from_json(os.environ[TARGET_ENV])
    here = os.getcwd() if target.kind == "module" else os.path.dirname(target.target)
    options = dataclasses.replace(
        options,
        extra_files=options.extra_files + tuple(files),
        project_dirs=(*options.project_dirs, here),
    )
    if options.ssl == "unavailable":
        logger.error(
            " * Cannot show this error over TLS: an ssl.SSLContext object cannot be passed to a"
            " restarted process (pass (cert, key) or 'adhoc' instead)"
        )
        raise SystemExit(1)
    from .._server.servers import (
        make_server,  # only now: a healthy child imports it through serving
    )

    server = make_server(
        options.hostname,
        options.port,
        app,
        threaded=options.threaded,
        ssl_context=options.ssl,
        fd=int(os.environ[SERVER_FD_ENV]),
    )
    try:
        serve_with_reloader(server, options)
    finally:
        server.server_close()
