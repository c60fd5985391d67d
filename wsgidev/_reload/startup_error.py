"""What a reloaded child serves when the program cannot run: its startup error, or why the
last child died, as a 500 for every request until a change restarts it.

Tracebacks start where Python would start them for the user's module: the frames that only
led there (runpy, a console-script launcher, wsgidev's own loading) are dropped.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from collections.abc import Generator, Iterable
from types import TracebackType

from .._log import ensure_handler, logger
from .._types import StartResponse, WSGIApplication, WSGIEnvironment
from .protocol import TARGET_ENV, ReloaderOptions, Target
from .watch.paths import is_library_path


def startup_failure(exc: Exception, options: ReloaderOptions) -> tuple[WSGIApplication, list[str]]:
    """Show ``exc`` once in the terminal; return the app that answers every request with it
    until a change, and the files to watch besides the usual ones."""
    ensure_handler()
    exc.with_traceback(
        _without_bootstrap(exc.__traceback__, keep_one=not isinstance(exc, SyntaxError))
    )
    text = "".join(traceback.format_exception(exc)).rstrip()
    logger.error(" * The application failed to start; fix it and save to reload.\n%s", text)
    # The program's module left sys.modules with the failure: name its files explicitly.
    return startup_error_app(exc, text, options), _files_of(exc)


def crash_report(how: str, options: ReloaderOptions) -> tuple[WSGIApplication, list[str]]:
    """After the last child died (``how``: "exited with status 7"), an app answering 500s
    that say so, and the files to watch.

    The program is not run again (it would only crash again in a loop): this process serves
    the explanation under the usual watch, and a change, SIGHUP or Enter restarts the program.
    """
    ensure_handler()
    body = (
        f"Internal Server Error\n\nThe server process {how}, so the application is not"
        " running.\nSave a file of the project to restart it, or ask for a restart by hand:"
        f" press Enter in the server's terminal or send SIGHUP (kill -HUP {os.getppid()}).\n"
    ).encode("utf-8", "replace")
    target = Target.from_json(os.environ[TARGET_ENV])
    files = [target.target] if target.kind == "path" else []
    return _plain_500(body), files


def startup_error_app(exc: BaseException, text: str, options: ReloaderOptions) -> WSGIApplication:
    """A 500 for every request: the debugger page of ``exc``, or ``text`` as plain text."""
    tb = exc.__traceback__

    def raise_it(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Raised once the body is iterated, from C code (map calling a finished generator's
        # throw()), so no frame of this module comes before the user's in the traceback.
        return map(_finished().throw, [exc.with_traceback(tb)])

    if options.use_debugger:
        from ..debug import DebuggedApplication

        debugger = DebuggedApplication(raise_it, evalex=options.use_evalex, mcp=True)
        debugger.mark_logged(exc)  # serve_startup_error printed it: requests log one line
        debugger.startup_error = text  # what MCP's server_status reports
        if options.live_reload:
            # Open pages show this error by themselves, and come back once it is fixed.
            from ..debug.security import prepare_for_serving
            from ..serving import wrap_live_reload

            prepare_for_serving(debugger, options.hostname)
            return wrap_live_reload(debugger, raise_it, None)
        return debugger

    body = (
        "Internal Server Error\n\nThe application failed to start. Fix the error and save the "
        f"file: the server reloads by itself.\n\n{text}\n"
    ).encode("utf-8", "replace")
    return _plain_500(body)


def _finished() -> Generator[bytes, None, None]:
    """A generator that already ran: its throw() raises what it is given and adds no frame."""

    def nothing() -> Generator[bytes, None, None]:
        yield from ()

    generator = nothing()
    generator.close()
    return generator


def _plain_500(body: bytes) -> WSGIApplication:
    """An app answering every request with ``body`` as a plain-text 500."""

    def show_it(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(
            "500 INTERNAL SERVER ERROR",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return show_it


def _without_bootstrap(tb: TracebackType | None, keep_one: bool = True) -> TracebackType | None:
    """Drop the leading frames that only led into the user's code: runpy, a console-script
    launcher and wsgidev's own (the CLI loading the app, this module), so the traceback starts
    where Python would start it for the user's module. One frame is kept if ``keep_one``; a
    SyntaxError needs none, its own lines name the file."""
    while (
        tb is not None
        and (tb.tb_next is not None or not keep_one)
        and _is_bootstrap(tb.tb_frame.f_code.co_filename)
    ):
        tb = tb.tb_next
    if not keep_one:
        # A SyntaxError reached through a framework's loader (``flask dev``): frames of
        # installed packages that only lead to the broken file say nothing either.
        rest = tb
        while rest is not None and _is_loader(rest.tb_frame.f_code.co_filename):
            rest = rest.tb_next
        if rest is None:
            return None
    return tb


def _is_loader(filename: str) -> bool:
    return _is_bootstrap(filename) or (
        not filename.startswith("<") and is_library_path(os.path.realpath(filename))
    )


def _is_bootstrap(filename: str) -> bool:
    if filename.startswith(("<frozen runpy", "<frozen importlib")):
        return True
    if filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    return (
        path == os.path.realpath(runpy.__file__)
        or path.startswith(_BOOTSTRAP_ROOTS)
        or (path in _launchers())
    )


# wsgidev's package directory and the interpreter's script directories (bin/, Scripts/).
_BOOTSTRAP_ROOTS = tuple(
    os.path.join(os.path.realpath(d), "")
    for d in {
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        *(
            os.path.join(prefix, folder)
            for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix}
            for folder in ("bin", "Scripts")
        ),
    }
)


def _launchers() -> set[str]:
    """The program as started (``sys.argv[0]``): a console script anywhere on PATH."""
    argv0 = sys.argv[0] if sys.argv else ""
    return {os.path.realpath(argv0)} if argv0 and os.path.isfile(argv0) else set()


def _files_of(exc: BaseException) -> list[str]:
    """The user's files an import error went through; the failing module left sys.modules."""
    files: list[str] = []
    if isinstance(exc, SyntaxError) and exc.filename:
        files.append(exc.filename)
    files.extend(frame.filename for frame in traceback.extract_tb(exc.__traceback__))
    found = []
    for name in files:
        path = os.path.abspath(name)
        if os.path.isfile(path) and not is_library_path(path) and path not in found:
            found.append(path)
    return found
