"""The debugger's POST commands (code, complete, pinauth, printpin) and the standalone console page.

DebuggedApplication routes ``?__debugger__=yes`` here (except ``cmd=resource``); security.py
decides who may ask, console.py runs the code. Every refusal happens before anything runs.
"""

from __future__ import annotations

import json
import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from markupsafe import Markup

from wsgidev._log import logger
from wsgidev._resources import asset_dir
from wsgidev._types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgidev.debug.console import Console
from wsgidev.debug.security import LOCKED_MESSAGE, DebuggerSecurity, Refusal

# Code and completions are small; a bigger body is a mistake or an attack.
MAX_BODY = 1024 * 1024
MAX_FIELDS = 16
MULTIPROCESS_MESSAGE = (
    "The console is unavailable under a multi-process server: the next request may reach another "
    "process, which does not have this traceback. Serve with threads (or one process) to use it."
)
PIN_LOGGING_OFF_MESSAGE = (
    "The PIN is not printed: the debugger was started with pin_logging=False. Use the PIN you "
    "set (WSGIDEV_DEBUG_PIN), or restart with PIN logging on."
)
EXPIRED_MESSAGE = "This traceback has expired (newer errors replaced it); reload the page."


def console_csp(nonce: str) -> str:
    """Scripts and styles only from elements carrying this response's nonce, not from any URL
    of the origin (the app's own responses share it); requests only to this origin."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return (
        f"default-src 'none'; script-src {script}; style-src {script}; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class FrameHandle(Protocol):
    """What the traceback store keeps for a frame while its traceback is retained."""

    @property
    def globals(self) -> Mapping[str, Any]: ...
    @property
    def locals(self) -> Mapping[str, Any]: ...
    @property
    def environ(self) -> Mapping[str, Any]: ...


class Debugger(Protocol):
    """The parts of ``DebuggedApplication`` the commands use."""

    @property
    def secret(self) -> str: ...
    @property
    def evalex(self) -> bool: ...
    @property
    def console_init_func(self) -> Callable[[], Mapping[str, Any]] | None: ...
    @property
    def security(self) -> DebuggerSecurity: ...
    def find_frame(self, frame_id: int) -> FrameHandle | None: ...


@dataclass(frozen=True, slots=True)
class CommandError(Exception):
    """A refusal that becomes a JSON ``{"error", "reason"}`` response with ``status``."""

    status: int
    reason: str
    message: str

    @classmethod
    def of(cls, refusal: Refusal) -> CommandError:
        return cls(refusal.status, refusal.reason, refusal.message)


# -- consoles, one per opened frame plus the standalone one, per debugger ----------------------


class _Consoles:
    """The consoles a debugger has opened; a frame's console goes when its traceback does."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[int, tuple[FrameHandle, Console]] = {}
        self.standalone: Console | None = None

    def _forget_evicted(self, debugger: Debugger) -> None:
        # A console whose traceback was evicted goes too, so its namespace is freed with it.
        for known, (handle, _) in list(self.frames.items()):
            if debugger.find_frame(known) is not handle:
                del self.frames[known]

    def for_frame(self, debugger: Debugger, frame_id: int) -> Console | None:
        with self.lock:
            self._forget_evicted(debugger)
            found = debugger.find_frame(frame_id)
            if found is None:
                return None
            entry = self.frames.get(frame_id)
            if entry is None:
                console = Console(found.locals, found.globals, found.environ)
                self.frames[frame_id] = entry = (found, console)
            return entry[1]

    def for_page(self, debugger: Debugger) -> Console:
        with self.lock:
            self._forget_evicted(debugger)
            if self.standalone is None:
                self.standalone = Console(
                    _initial_namespace(debugger), locals_title="Names in this console"
                )
            return self.standalone


def _initial_namespace(debugger: Debugger) -> dict[str, Any]:
    init = debugger.console_init_func
    if init is None:
        return {}
    try:
        return dict(init())
    except Exception as exc:  # the user's console_init_func: report it, keep the server up
        logger.exception("console_init_func() failed; the standalone console has no namespace.")
        raise CommandError(
            500, "init", f"console_init_func() failed: {type(exc).__name__}: {exc}"
        ) from exc


_registry: weakref.WeakKeyDictionary[Any, _Consoles] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def consoles_of(debugger: Debugger) -> _Consoles:
    with _registry_lock:
        found = _registry.get(debugger)
        if found is None:
            found = _registry[debugger] = _Consoles()
        return found


# -- responses ---------------------------------------------------------------------------------


def json_response(
    status: int, payload: Mapping[str, object], headers: Iterable[tuple[str, str]] = ()
) -> WSGIApplication:
    body = json.dumps(payload).encode("utf-8")
    reason = _REASONS.get(status, "")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                ("Cross-Origin-Resource-Policy", "same-origin"),
                *headers,
            ],
        )
        return [body]

    return app


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


def error_response(error: CommandError) -> WSGIApplication:
    headers = [("Allow", "POST")] if error.status == 405 else []
    return json_response(error.status, {"error": error.message, "reason": error.reason}, headers)


# -- reading the form body ---------------------------------------------------------------------


def read_form(environ: WSGIEnvironment) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body; the query string is never consulted."""
    content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise CommandError(415, "body", "Debugger commands are sent as a form-encoded POST body.")
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise CommandError(400, "body", "Content-Length is not a number.") from None
        if length < 0 or length > MAX_BODY:
            raise CommandError(413, "body", f"A debugger command may be at most {MAX_BODY} bytes.")
        raw = stream.read(length) if length else b""
    elif environ.get("wsgi.input_terminated"):
        raw = stream.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise CommandError(413, "body", f"A debugger command may be at most {MAX_BODY} bytes.")
    else:
        raw = b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(400, "body", "The command body is not valid UTF-8 form data.") from None
    try:
        fields = parse_qs(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
        )
    except ValueError:
        raise CommandError(
            400, "body", f"A debugger command has at most {MAX_FIELDS} form fields."
        ) from None
    return {name: values[-1] for name, values in fields.items()}


# -- the commands ------------------------------------------------------------------------------


def dispatch_command(debugger: Debugger, environ: WSGIEnvironment) -> WSGIApplication:
    """Answer a ``__debugger__=yes`` request other than ``cmd=resource``.

    Checks, in order, before anything runs: POST, trusted Host, same-site, trusted client, the
    page's secret, the multi-process case, the PIN token, the frame. Each refusal is JSON
    ``{"error", "reason"}`` with a 4xx status.
    """
    try:
        return _dispatch(debugger, environ)
    except CommandError as error:
        return error_response(error)


def _dispatch(debugger: Debugger, environ: WSGIEnvironment) -> WSGIApplication:
    security = debugger.security
    if environ.get("REQUEST_METHOD", "GET").upper() != "POST":
        raise CommandError(
            405, "method", "Debugger commands must be sent by POST (the page's script does this)."
        )
    refusal = security.check_origin(environ)
    if refusal is not None:
        raise CommandError.of(refusal)
    form = read_form(environ)
    refusal = security.check_secret(form.get("s"))
    if refusal is not None:
        if refusal.reason == "restarted" and environ.get("wsgi.multiprocess"):
            # Another worker of this app made the page: the real cause, which no reload fixes.
            raise CommandError(409, "multiprocess", MULTIPROCESS_MESSAGE)
        raise CommandError.of(refusal)
    cmd = form.get("cmd", "")
    if environ.get("wsgi.multiprocess") and cmd != "printpin":
        raise CommandError(409, "multiprocess", MULTIPROCESS_MESSAGE)
    if cmd == "pinauth":
        return _pin_auth(security, form.get("pin"), form.get("token"))
    if cmd == "printpin":
        if not security.log_pin():
            raise CommandError(403, "pin-logging", PIN_LOGGING_OFF_MESSAGE)
        return json_response(200, {"printed": True})
    if not debugger.evalex:
        raise CommandError(403, "evalex", "The console is turned off (evalex=False).")
    refusal = security.check_token(form.get("token"))
    if refusal is not None:
        raise CommandError.of(refusal)
    console = _find_console(debugger, form.get("frm", ""))
    if cmd == "complete":
        completion = console.complete(form.get("text", ""))
        return json_response(200, {"start": completion.start, "matches": list(completion.matches)})
    # interrupt=1 is the page's Ctrl+C: it only clears a pending multi-line statement.
    result = console.interrupt() if form.get("interrupt") == "1" else console.run(cmd)
    return json_response(
        200, {"html": str(result.html), "more": result.more, "prompt": result.prompt}
    )


def _find_console(debugger: Debugger, frame_field: str) -> Console:
    # No frame, or frame 0 as in Werkzeug's protocol, is the standalone console (ids start at 1).
    if frame_field in ("", "0"):
        return consoles_of(debugger).for_page(debugger)
    try:
        frame_id = int(frame_field)
    except ValueError:
        raise CommandError(
            400, "frame", f"frm must be a frame number, not {frame_field!r}."
        ) from None
    console = consoles_of(debugger).for_frame(debugger, frame_id)
    if console is None:
        raise CommandError(410, "expired", EXPIRED_MESSAGE)
    return console


def _pin_auth(security: DebuggerSecurity, pin: str | None, token: str | None) -> WSGIApplication:
    """``pin=`` absent: report the state (``auth``: whether ``token`` is still valid). Otherwise
    check the PIN; a right one answers a fresh ``token`` for the page to send with commands."""
    state: dict[str, object] = {
        "pin_required": security.pin is not None,
        "locked": security.is_locked,
    }
    if pin is None:
        state["auth"] = security.token_is_valid(token)
        state["failures_left"] = security.failures_left
        return json_response(200, state)
    verdict = security.try_pin(pin)
    state["auth"] = verdict in ("ok", "disabled")
    state["locked"] = verdict == "locked"
    state["failures_left"] = security.failures_left
    if verdict == "locked":
        state["error"] = LOCKED_MESSAGE
        return json_response(403, state)
    if verdict == "ok":
        state["token"] = security.make_token()
        return json_response(200, state)
    if verdict == "wrong":
        left = security.failures_left
        state["error"] = (
            f"Wrong PIN. {left} {'try' if left == 1 else 'tries'} left before the debugger locks."
        )
    return json_response(200, state)


# -- the standalone console page ---------------------------------------------------------------


def console_page(debugger: Debugger, environ: WSGIEnvironment) -> WSGIApplication:
    """The page at ``console_path``: an empty console seeded by ``console_init_func()``."""
    security = debugger.security
    if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD"):
        return _html_response(405, Markup("<p>The console page is opened with GET.</p>"))
    host_refusal = security.check_origin(
        {k: v for k, v in environ.items() if k not in ("HTTP_SEC_FETCH_SITE", "HTTP_ORIGIN")}
    )
    if host_refusal is not None:
        return _html_response(host_refusal.status, Markup("<p>{}</p>").format(host_refusal.message))
    template = (asset_dir("templates") / "console.html").read_text(encoding="utf-8")
    nonce = secrets.token_urlsafe(16)
    page = Markup(template).format(
        nonce=nonce,
        secret=debugger.secret,
        evalex="true" if debugger.evalex else "false",
        multiprocess="true" if environ.get("wsgi.multiprocess") else "false",
        pin_required="true" if security.pin is not None else "false",
        intro=_STANDALONE_INTRO if debugger.console_init_func is None else _SEEDED_INTRO,
    )
    return _html_response(200, page, full_page=True, nonce=nonce)


_STANDALONE_INTRO = Markup(
    "Its namespace starts empty. To run code inside a failing frame, open the console of that "
    "frame on the traceback page."
)
_SEEDED_INTRO = Markup(
    "Its namespace was prepared by the application's <code>console_init_func()</code>."
)


def _html_response(
    status: int, html: Markup, *, full_page: bool = False, nonce: str = ""
) -> WSGIApplication:
    if not full_page:
        html = Markup(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>wsgidev console</title></head><body>{}</body></html>"
        ).format(html)
    body = str(html).encode("utf-8")
    reason = _REASONS.get(status, "")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Content-Security-Policy", console_csp(nonce)),
                ("X-Content-Type-Options", "nosniff"),
                ("X-Frame-Options", "DENY"),
                ("Referrer-Policy", "no-referrer"),
                # Another site may neither embed the page nor keep a handle on its window.
                ("Cross-Origin-Resource-Policy", "same-origin"),
                ("Cross-Origin-Opener-Policy", "same-origin"),
            ],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app
