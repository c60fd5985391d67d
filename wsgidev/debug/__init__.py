"""Step 3: DebuggedApplication, the outermost middleware. It routes ``?__debugger__=yes`` and
turns an exception from the app into the traceback page.

model.py describes the error, render.py and _text.py show it, commands.py runs the console.
Routes, on any path: ``cmd=resource&f=NAME`` (static/ assets), ``tb=TOKEN[&format=html|text|
json|python]`` (a retained error, linked by the ``X-Wsgidev-Traceback`` header of every error
response), anything else with ``__debugger__=yes`` goes to commands.dispatch_command.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import traceback as pytraceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from wsgidev._log import TERMINAL_CONTROLS, ensure_handler, logger, neutralise
from wsgidev._resources import asset_dir
from wsgidev._types import StartResponse, WSGIApplication, WSGIEnvironment

from ._assets import AssetSet, not_found
from ._editor import check_editor, editor_from_env
from ._negotiate import choose_format
from ._page_spool import PageSpool
from ._request import describe_request, request_url
from ._store import FrameHandle, Retained, TracebackStore
from .security import DebuggerSecurity, get_pin_and_cookie_name, host_is_trusted

if TYPE_CHECKING:
    from .render import PageContext

# The console (commands.py), the error model and its rendering are imported on first use:
# an app that has not failed yet starts without them.

__all__ = ["DebuggedApplication", "FrameHandle", "get_pin_and_cookie_name"]

TRACEBACK_HEADER = "X-Wsgidev-Traceback"
# A Host header fit to be echoed in a URL and a response header: name or [IPv6], optional port.
_HOST = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_FORMS = frozenset({"html", "text", "json", "python", "markdown"})
_TEXT_TYPES = {
    "python": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
}


class DebuggedApplication:
    """Wrap ``app`` so that an exception shows the traceback page instead of a bare 500.

    Parameters are Werkzeug's; ``max_tracebacks`` bounds how many errors stay reachable (and
    their frames alive), ``editor`` (default: ``$WSGIDEV_EDITOR``) is a URL template such as
    ``vscode://file/{path}:{line}`` that turns file names into links, and ``trusted_clients``
    limits the console to these client networks.
    Raises ``TypeError``/``ValueError`` naming the argument that is wrong.
    """

    def __init__(
        self,
        app: WSGIApplication,
        evalex: bool = False,
        request_key: str = "werkzeug.request",
        console_path: str = "/console",
        console_init_func: Callable[[], Mapping[str, Any]] | None = None,
        show_hidden_frames: bool = False,
        pin_security: bool = True,
        pin_logging: bool = True,
        *,
        max_tracebacks: int = 32,
        editor: str | None = None,
        trusted_clients: Iterable[str] | None = None,
        mcp: bool = False,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {type(app).__name__}")
        if isinstance(max_tracebacks, bool) or not isinstance(max_tracebacks, int):
            raise TypeError(f"max_tracebacks must be an int, got {type(max_tracebacks).__name__}")
        if max_tracebacks < 1:
            raise ValueError(f"max_tracebacks must be at least 1, got {max_tracebacks}")
        if not isinstance(console_path, str) or not console_path.startswith("/"):
            raise ValueError(f"console_path must be a path starting with '/', got {console_path!r}")
        self.app = app
        self.evalex = bool(evalex)
        self.request_key = request_key
        self.console_path = console_path
        self.console_init_func = console_init_func
        self.show_hidden_frames = show_hidden_frames
        self.pin_security = pin_security
        self.pin_logging = pin_logging
        self.max_tracebacks = max_tracebacks
        # Serve the kept errors to coding agents at /__wsgidev__/mcp (read-only; see _mcp.py).
        self.mcp = bool(mcp)
        # The traceback text of an app that cannot import, when this debugger shows that error.
        self.startup_error: str | None = None
        self.editor = check_editor(editor, "editor") if editor is not None else editor_from_env()
        self.security = DebuggerSecurity(
            app, pin_security=pin_security, pin_logging=pin_logging, trusted_clients=trusted_clients
        )
        self.tracebacks = TracebackStore(max_tracebacks)
        # Under a multi-process server the page must outlive the process that rendered it.
        self.shared_pages = PageSpool(max_tracebacks)
        self.assets = AssetSet(asset_dir("static"))
        self._frame_ids = itertools.count(1)
        # The last error whose traceback reached the terminal: the same one again gets one line.
        self._logged_lock = threading.Lock()
        self._last_logged: tuple[BaseException | None, str] = (None, "")
        ensure_handler()
        if self.evalex:
            self.security.log_startup()

    # -- what the console and run_simple read ------------------------------------------------

    @property
    def secret(self) -> str:
        """Random per instance; the page hands it to its script, commands must echo it."""
        return self.security.secret

    @property
    def pin(self) -> str | None:
        return self.security.pin

    @property
    def pin_cookie_name(self) -> str:
        return self.security.pin_cookie_name

    @property
    def trusted_hosts(self) -> list[str]:
        """Host names the console accepts; append to it (a leading dot matches subdomains)."""
        return self.security.trusted_hosts

    def mark_logged(self, exc: BaseException) -> None:
        """Say that ``exc``'s traceback is already in the terminal (a server that could not load
        the app printed it): requests that raise it again log one line, not the traceback."""
        with self._logged_lock:
            self._last_logged = (exc, "")

    def find_frame(self, frame_id: int) -> FrameHandle | None:
        """The live frame behind ``data-frame-id``, while its traceback is retained (evalex only)."""
        return self.tracebacks.find_frame(frame_id)

    # -- the request path --------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # The common case must cost next to nothing: one substring test, one comparison.
        if "__debugger__" in environ.get("QUERY_STRING", ""):
            fields = dict(parse_qsl(environ["QUERY_STRING"], keep_blank_values=True))
            if fields.get("__debugger__") == "yes":
                return self._route(fields, environ)(environ, start_response)
        if self.mcp and environ.get("PATH_INFO") == "/__wsgidev__/mcp":
            from ._mcp import mcp_endpoint

            return mcp_endpoint(self, environ)(environ, start_response)
        if self.evalex and environ.get("PATH_INFO") == self.console_path:
            from . import commands

            return commands.console_page(self, environ)(environ, start_response)
        tracked = _TrackedStart(start_response, self._app_answered_5xx)
        try:
            app_iter = self.app(environ, tracked)
        except Exception as exc:  # layer boundary: an app error becomes the page here, once
            return self._error_response(exc, environ, tracked)
        if type(app_iter) is list:  # iterating a list cannot fail and it has no close()
            return app_iter
        return self._guard(app_iter, environ, tracked)

    def _guard(
        self, app_iter: Iterable[bytes], environ: WSGIEnvironment, start_response: _TrackedStart
    ) -> Iterator[bytes]:
        """Pass the body through; an error before the first byte becomes the page, after it
        is logged and re-raised so the server cuts the response (no terminating chunk)."""
        sent = abandoned = False
        try:
            try:
                for chunk in app_iter:
                    if chunk:
                        sent = True
                    try:
                        yield chunk
                    except GeneratorExit:  # the server closed us early (client went away)
                        abandoned = True
                        raise
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # layer boundary, as in __call__
            if sent or abandoned:
                self._log_after_start(exc, environ)
                raise
            yield from self._error_response(exc, environ, start_response)

    # -- errors ------------------------------------------------------------------------------

    def _app_answered_5xx(self, status: str) -> None:
        hint_errors_kept_from_the_debugger(self.app, status)

    def _error_response(
        self, exc: BaseException, environ: WSGIEnvironment, start_response: _TrackedStart
    ) -> Iterable[bytes]:
        try:
            retained = self._retain(exc, environ)
            page_url = self._page_url(environ, retained.token)
            if environ.get("wsgi.multiprocess") and not self._share(retained, environ, page_url):
                page_url = ""  # no other process could answer it: do not advertise it
            page = self._page(retained, environ, page_url)
        except Exception as failure:  # the debugger itself failed: still answer, in plain text
            return self._fallback_response(exc, failure, environ, start_response)
        if not _replace_response(start_response, page.headers, exc):
            self._log(exc, retained, environ, page_url, started=True)
            raise exc  # the original, its chain untouched: the server cuts the response
        self._log(exc, retained, environ, page_url, started=False)
        return [page.body]

    def _retain(self, exc: BaseException, environ: WSGIEnvironment) -> Retained:
        from .model import build_traceback

        built = build_traceback(
            exc,
            frame_ids=self._frame_ids,
            skip=1,  # the frame that caught it: this module's
            request=describe_request(environ),
            show_hidden_frames=self.show_hidden_frames,
            keep_frames=self.evalex,
        )
        handles: dict[int, FrameHandle] = {}
        if built.live_frames:
            models = {frame.id: frame for frame in built.traceback.all_frames()}
            for frame_id, live in built.live_frames.items():
                handles[frame_id] = FrameHandle(
                    frame_id, models[frame_id], live.f_globals, live.f_locals, environ
                )
        return self.tracebacks.add(built.traceback, handles)

    def _share(self, retained: Retained, environ: WSGIEnvironment, page_url: str) -> bool:
        """Store every form of ``retained``'s page where the server's other processes find
        it; the HTML without the secret, its nonce filled in when served."""
        from ._error_list import describe
        from ._page_spool import SUMMARY

        mark = self.shared_pages.nonce_mark
        forms = {
            form: self._render(retained, environ, page_url, form, mark, shared=True)
            for form in _FORMS
        }
        # No console crosses processes: the list says so for these errors.
        forms[SUMMARY] = json.dumps(describe(retained, page_url, console=False))
        return self.shared_pages.save(retained.token, forms)

    def _log_after_start(self, exc: BaseException, environ: WSGIEnvironment) -> None:
        try:
            retained = self._retain(exc, environ)
            page_url = self._page_url(environ, retained.token)
            if environ.get("wsgi.multiprocess") and not self._share(retained, environ, page_url):
                page_url = ""
        except Exception:  # describing failed; the plain traceback is still worth logging
            logger.exception("Error after the response started; it is cut short.")
            return
        self._log(exc, retained, environ, page_url, started=True)

    def _log(
        self,
        exc: BaseException,
        retained: Retained,
        environ: WSGIEnvironment,
        page_url: str,
        *,
        started: bool,
    ) -> None:
        request = retained.traceback.request
        # The client wrote the URL: no escape sequence or line break of its reaches the terminal.
        where = (
            _terminal_text(f"{request.method} {request.url}", lines=False)
            if request
            else "a request"
        )
        if started:
            intro = f"Error after the response to {where} started; the response is cut short."
        else:
            intro = f"Error on {where}; answered with the debugger page."
        if not page_url:
            page_url = "not kept (a multi-process server could not share it, see above)"
        elif not host_is_trusted(environ.get("HTTP_HOST"), self.trusted_hosts):
            # The client chose that Host: a terminal link to it could lead to a look-alike
            # page asking for the PIN. Link through the server's own name instead.
            page_url = self._page_url({**environ, "HTTP_HOST": ""}, retained.token)
        if self._seen_last(exc, retained.traceback.plaintext):
            # An app that cannot start raises the same error on every request: the terminal
            # shows its traceback once, then one line per request.
            summary = _terminal_text(_summary(exc), lines=False)
            logger.error(
                "%s The same error as logged above (%s); debugger page: %s",
                intro,
                summary,
                page_url,
            )
            return
        plaintext = _terminal_text(retained.traceback.plaintext, lines=True)
        logger.error("%s\n%s * Debugger page: %s", intro, plaintext, page_url)

    def _seen_last(self, exc: BaseException, plaintext: str) -> bool:
        """Whether ``exc`` (the same object, or the same traceback text) was logged last;
        remember it for next time."""
        with self._logged_lock:
            last, text = self._last_logged
            self._last_logged = (exc, plaintext)
        return exc is last or plaintext == text

    def _fallback_response(
        self,
        exc: BaseException,
        failure: Exception,
        environ: WSGIEnvironment,
        start_response: _TrackedStart,
    ) -> Iterable[bytes]:
        original = "".join(pytraceback.format_exception(type(exc), exc, exc.__traceback__))
        broken = "".join(
            pytraceback.format_exception(type(failure), failure, failure.__traceback__)
        )
        logger.error(
            "Error on a request:\n%s\nThe debugger could not describe it:\n%s", original, broken
        )
        body = f"{original}\nThe debugger could not describe this error:\n{broken}".encode(
            "utf-8", "replace"
        )
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if not _replace_response(start_response, headers, exc):
            raise exc
        return [body]

    # -- pages -------------------------------------------------------------------------------

    def _page(
        self, retained: Retained, environ: WSGIEnvironment, page_url: str, forced: str | None = None
    ) -> _Page:
        form = forced if forced in _FORMS else choose_format(environ)
        nonce = secrets.token_urlsafe(16) if form == "html" else ""
        return _respond(
            self._render(retained, environ, page_url, form, nonce), form, nonce, page_url
        )

    def _render(
        self,
        retained: Retained,
        environ: WSGIEnvironment,
        page_url: str,
        form: str,
        nonce: str,
        *,
        shared: bool = False,
    ) -> str:
        """``retained`` in ``form``; a ``shared`` copy (kept on disk) carries no secret."""
        from ._markdown import markdown_view
        from ._text import json_view, plaintext_view
        from .render import render_page

        if form == "html":
            context = self._page_context(
                retained.token, nonce, page_url, environ, retained.released
            )
            if shared:
                context = replace(context, secret="")
            return render_page(retained.traceback, context)
        if form == "python":
            return retained.traceback.plaintext
        if form == "json":
            return json_view(retained.traceback, page_url)
        if form == "markdown":
            return markdown_view(retained.traceback, page_url)
        return plaintext_view(retained.traceback, page_url)

    def _page_context(
        self,
        token: str,
        nonce: str,
        page_url: str,
        environ: WSGIEnvironment,
        released: bool = False,
    ) -> PageContext:
        names = ("debugger.css", "debugger.js", "favicon.svg")
        urls = {name: self.assets.url(name) for name in names}
        # A page whose frames were released to bound memory has no console to offer.
        console = self.evalex and not released
        scripts: tuple[str, ...] = ()
        if console and "console.js" in self.assets.names:
            scripts = (self.assets.url("console.js"),)
        styles: tuple[str, ...] = ()
        if console and "console.css" in self.assets.names:
            styles = (self.assets.url("console.css"),)
        from .render import PageContext

        return PageContext(
            # Empty for a Host or client the console refuses: its script then shows why.
            secret=self.secret if self.security.may_see_secret(environ) else "",
            token=token,
            nonce=nonce,
            page_url=page_url,
            asset_urls=urls,
            evalex=console,
            console_released=released,
            multiprocess=bool(environ.get("wsgi.multiprocess")),
            console_path=self.console_path,
            editor=self.editor,
            retained=self.max_tracebacks,
            extra_scripts=scripts,
            extra_styles=styles,
        )

    def _page_url(self, environ: WSGIEnvironment, token: str) -> str:
        """Absolute, so it works from a terminal; it goes into a header, so only safe bytes."""
        scheme = "https" if environ.get("wsgi.url_scheme") == "https" else "http"
        host = str(environ.get("HTTP_HOST", ""))
        if not _HOST.fullmatch(host):
            netloc = urlsplit(request_url({**environ, "HTTP_HOST": ""}, query=False)).netloc
            host = netloc if _HOST.fullmatch(netloc) else "localhost"
        script_name = quote(str(environ.get("SCRIPT_NAME", "")).encode("latin-1", "replace"))
        return f"{scheme}://{host}{script_name}/?__debugger__=yes&tb={token}"

    # -- ?__debugger__=yes -------------------------------------------------------------------

    def _route(self, fields: dict[str, str], environ: WSGIEnvironment) -> WSGIApplication:
        cmd = fields.get("cmd")
        if cmd == "resource":
            return self.assets.respond(fields.get("f", ""), fields.get("v"))
        method = environ.get("REQUEST_METHOD", "GET")
        if cmd is None and "tb" in fields and method in ("GET", "HEAD"):
            return self._retained_page(fields["tb"], fields.get("format"))
        if cmd == "errors" and method in ("GET", "HEAD"):
            return self._error_list(environ)
        from . import commands

        return commands.dispatch_command(self, environ)

    def _error_list(self, environ: WSGIEnvironment) -> WSGIApplication:
        """The kept errors, newest first; refused like a command for a foreign Host, another
        site or an untrusted client, since it leads to tracebacks."""
        from ._error_list import error_list

        refusal = self.security.check_origin(environ)
        if refusal is not None:
            from . import commands

            return commands.error_response(commands.CommandError.of(refusal))
        stylesheet = self.assets.url("debugger.css")
        return error_list(self.describe_errors(environ), environ, stylesheet, self.max_tracebacks)

    def describe_errors(self, environ: WSGIEnvironment) -> list[dict[str, Any]]:
        """The kept errors, newest first, as the error list and MCP's list_errors show them."""
        from ._error_list import describe

        kept = [
            describe(retained, self._page_url(environ, retained.token), console=self.evalex)
            for retained in self.tracebacks.recent()
        ]
        if not environ.get("wsgi.multiprocess"):
            return kept
        # Under a multi-process server the other processes' errors are on disk (_page_spool).
        listed = {str(entry["id"]) for entry in kept}
        shared = [e for e in self.shared_pages.summaries() if str(e.get("id")) not in listed]
        return sorted([*kept, *shared], key=lambda e: str(e.get("time")), reverse=True)[
            : self.max_tracebacks
        ]

    def error_text(self, token: str, form: str, environ: WSGIEnvironment) -> str | None:
        """A kept error as Markdown or JSON (for tools), or None when it is not kept."""
        if form not in ("markdown", "json"):
            return None
        retained = self.tracebacks.get(token)
        if retained is None:
            forms = self.shared_pages.load(token)  # another process's, under multi-process
            return forms[form] if forms is not None else None
        return self._render(retained, environ, self._page_url(environ, token), form, "")

    def _retained_page(self, token: str, form: str | None) -> WSGIApplication:
        """The page of a retained error (200); ``format=text|json|python`` forces that form,
        ``python`` being exactly Python's traceback text."""
        retained = self.tracebacks.get(token)
        if retained is None:
            forms = self.shared_pages.load(token)
            if forms is not None:
                return self._shared_page(token, forms, form)
            return not_found(
                "This traceback is no longer kept: the debugger keeps the last "
                f"{self.max_tracebacks} errors (max_tracebacks), the server restarted, or "
                "this request reached another process of a multi-process server.\n"
            )

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
            page = self._page(retained, environ, self._page_url(environ, retained.token), form)
            start_response("200 OK", page.headers)
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [page.body]

        return app

    def _shared_page(
        self, token: str, forms: dict[str, str], forced: str | None
    ) -> WSGIApplication:
        """A page another process of a multi-process server stored (see _page_spool.py)."""

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
            form = forced if forced in _FORMS else choose_format(environ)
            nonce = secrets.token_urlsafe(16) if form == "html" else ""
            text = (
                forms[form].replace(self.shared_pages.nonce_mark, nonce) if nonce else forms[form]
            )
            page = _respond(text, form, nonce, self._page_url(environ, token))
            start_response("200 OK", page.headers)
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [page.body]

        return app


def _respond(text: str, form: str, nonce: str, page_url: str) -> _Page:
    """The body and headers of a page in ``form`` (html, text, json, python)."""
    body = text.encode("utf-8", "replace")  # lone surrogates (odd file names) become "?"
    headers = [
        ("Content-Type", _TEXT_TYPES[form]),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Vary", "Accept"),
    ]
    if page_url:
        headers.append((TRACEBACK_HEADER, page_url))
    if nonce:
        headers += [("Content-Security-Policy", page_csp(nonce)), ("X-Frame-Options", "DENY")]
    return _Page(body, headers)


def _summary(exc: BaseException, limit: int = 160) -> str:
    """``ValueError: message``, on one line and bounded."""
    try:
        message = " ".join(str(exc).split())
    except Exception:  # a __str__ that raises
        message = ""
    line = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _Page:
    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.body = body
        self.headers = headers


def _terminal_text(text: str, *, lines: bool) -> str:
    """``text`` safe to print: escape sequences become visible, line breaks too unless ``lines``
    (the logger's filter then keeps each line from passing for one of wsgidev's own)."""
    return neutralise(text) if lines else text.translate(TERMINAL_CONTROLS)


def page_csp(nonce: str) -> str:
    """The page's policy: scripts and styles only from the elements carrying this response's
    nonce (our resource URLs), no inline code, no framing, requests only to this origin."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


class _TrackedStart:
    """The app's ``start_response``, remembering whether the app called it, and telling
    ``on_5xx`` when the app itself answers a server error."""

    __slots__ = ("called", "on_5xx", "start_response")

    def __init__(self, start_response: StartResponse, on_5xx: Callable[[str], None]) -> None:
        self.start_response = start_response
        self.on_5xx = on_5xx
        self.called = False

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        self.called = True
        if status[:1] == "5":
            self.on_5xx(status)
        return self.start_response(status, headers, exc_info)


_hinted_5xx = threading.Event()  # the hint below is logged once per process


def hint_errors_kept_from_the_debugger(app: object, status: str) -> None:
    """The app answered a 5xx itself: its framework caught the error, the debugger saw none.
    Say so once per process, naming the switch that lets errors through."""
    if _hinted_5xx.is_set():
        return
    _hinted_5xx.set()
    from wsgidev._frameworks import find_framework

    framework = find_framework(app)
    switch = (
        f"{framework.name}: {framework.switch}"
        if framework is not None
        else "the framework's setting that lets exceptions propagate (a debug or "
        "propagate-exceptions option)"
    )
    logger.warning(
        ' * The app answered "%s" itself: no exception reached the debugger, so there is no '
        "traceback page. To let errors through, set %s.",
        status,
        switch,
    )


def _replace_response(
    start_response: _TrackedStart, headers: list[tuple[str, str]], exc: BaseException
) -> bool:
    """Start the 500 over whatever the app started; False when the server refuses because the
    app's headers (and maybe body, through write()) went out already.

    ``exc_info`` goes along only when the app had started a response: that is what it is for,
    and Werkzeug's test client (so Flask's ``test_client()``) re-raises any ``exc_info`` it is
    given, which would turn the page into an exception under those clients.
    """
    exc_info = _exc_info(exc) if start_response.called else None
    try:
        start_response.start_response("500 INTERNAL SERVER ERROR", headers, exc_info)
    except Exception:  # PEP 3333: the server re-raises exc_info once headers are sent
        return False
    return True


def _exc_info(
    exc: BaseException,
) -> tuple[type[BaseException], BaseException, TracebackType] | None:
    """start_response's third argument: it lets a server replace headers it has not sent."""
    tb = exc.__traceback__
    return (type(exc), exc, tb) if tb is not None else None
