"""LiveReloadMiddleware: open pages follow the code, and show errors of background requests.

It adds one external script to each whole HTML document the app answers to a page load, and
serves three things under ``/__wsgidev__/live/``: the script (``client.js``), one event stream
per tab (``events``) and a short summary of a retained error (``error?tb=TOKEN``). The stream
says which server process answers (a restart means new code: the page reloads) and which
watched file changed (a stylesheet is swapped in place; anything else reloads the page). The
script also watches the page's ``fetch()``/XHR responses: one carrying ``X-Wsgidev-Traceback``
shows an overlay with the error, in a shadow root the app's CSS cannot reach.

Under wsgidev's server the I/O loop keeps the streams, so they hold no worker; under another
server each open tab holds one worker thread (use a threaded worker class).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any
from urllib.parse import parse_qsl, quote

from markupsafe import escape

from wsgidev._events import EventChannel, EventStream, encode_event
from wsgidev._log import logger, neutralise
from wsgidev._resources import asset_dir
from wsgidev._types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgidev.debug._trust import DEFAULT_TRUSTED_HOSTS, host_is_trusted, origin_matches_host

from ._live_csp import CannotAllow, LiveSources, amend_headers
from ._live_errors import error_summary
from ._live_inject import (
    MAX_HELD,
    ClosingIterator,
    Headers,
    HeldHead,
    content_length,
    fresh_every_time,
    insert_before_body_end,
    is_document,
    read_prefix,
    response_fits,
    stream_with_tag,
    wants_script,
    with_length,
)
from ._live_watch import AssetWatcher

__all__ = ["LiveReloadMiddleware"]

PREFIX = "/__wsgidev__/live/"
StaticFiles = (
    Mapping[str, "str | os.PathLike[str]"] | Iterable[tuple[str, "str | os.PathLike[str]"]]
)
# How long a browser waits before it reconnects a stream that ended (the script also retries).
RETRY_MS = 500
# Under another server, a stream lasts this long, then the tab reconnects: its reload or stop
# waits no longer for the open tabs.
FOREIGN_MAX_AGE = 3.0
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HOST = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


class LiveReloadMiddleware:
    """Wrap ``app`` so that open pages reload on changes and show background-request errors.

    ``static_files`` maps URL prefixes to folders (as SharedDataMiddleware's exports; also
    a list of (prefix, folder) pairs, for several folders under one prefix): a saved
    ``.css`` file there is swapped into open pages, any other file reloads them. ``watch``
    lists more folders or files whose change reloads the pages (templates). A restart of the
    app (the reloader) always reloads them. ``trusted_hosts`` are the Host names the script,
    the stream and error summaries answer (the debugger's list when run_simple wires both).
    Wrap it outside DebuggedApplication, so the debugger's error pages follow the code too.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        static_files: StaticFiles | None = None,
        watch: Iterable[str | os.PathLike[str]] = (),
        trusted_hosts: list[str] | None = None,
        heartbeat: float = 15.0,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {type(app).__name__} object")
        self.app = app
        self.static = _static_roots(static_files)
        self.watched = _watched_paths(watch)
        if trusted_hosts is not None and not isinstance(trusted_hosts, list):
            raise TypeError(
                "trusted_hosts must be a list of host names such as ['localhost'], got "
                f"{type(trusted_hosts).__name__}"
            )
        self.trusted_hosts = list(DEFAULT_TRUSTED_HOSTS) if trusted_hosts is None else trusted_hosts
        if not isinstance(heartbeat, (int, float)) or isinstance(heartbeat, bool) or heartbeat <= 0:
            raise ValueError(f"heartbeat must be a positive number of seconds, got {heartbeat!r}")
        self.heartbeat = float(heartbeat)
        # A new one in every process that builds the middleware: a restarted app (new code, or
        # its startup error) answers the stream with a boot the open pages have not seen.
        self.boot = secrets.token_urlsafe(9)
        self.channel = EventChannel()
        self._untouched_logged: set[str] = set()
        self._lock = threading.Lock()
        self.watcher = AssetWatcher(
            [root for root, _ in self.static] + list(self.watched), self.file_changed
        )
        self.watcher.start()

    # -- events --------------------------------------------------------------------------------

    def file_changed(self, path: str) -> None:
        """Tell open pages that ``path`` changed (called by the watcher; any thread)."""
        path = os.path.abspath(path)
        for root, prefix in self.static:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                relative = os.path.relpath(path, root) if path != root else ""
                url = prefix.rstrip("/") + (
                    "/" + quote(relative.replace(os.sep, "/")) if relative else ""
                )
                if path.endswith(".css") and os.path.exists(path):
                    self.channel.publish("css", {"url": url or "/"})
                else:
                    self.channel.publish("reload", {"path": url or "/"})
                return
        self.channel.publish("reload", {"path": os.path.basename(path)})

    def close(self) -> None:
        """Stop watching files (the streams end with the server)."""
        self.watcher.stop()

    # -- requests ------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            return self._route(path[len(PREFIX) :], environ, start_response)
        if not wants_script(environ) or not self._host_ok(environ):
            return self.app(environ, start_response)
        return self._with_script(environ, start_response)

    def _host_ok(self, environ: WSGIEnvironment) -> bool:
        host = str(environ.get("HTTP_HOST", ""))
        return _HOST.fullmatch(host) is not None and host_is_trusted(host, self.trusted_hosts)

    def _route(
        self, name: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        refusal = self._refusal(environ)
        if refusal is not None:
            status, text = refusal
            return _plain(start_response, status, text)  # logged: someone else is asking
        environ["wsgidev.log_request"] = False  # every page load asks for these: keep logs clean
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _plain(
                start_response, "405 Method Not Allowed", "Use GET.\n", [("Allow", "GET, HEAD")]
            )
        if name == "client.js":
            return self._client(environ, start_response)
        if name == "events":
            return self._events(environ, start_response)
        if name == "error":
            return self._error(environ, start_response)
        return _plain(start_response, "404 Not Found", "No such live-reload resource.\n")

    def _refusal(self, environ: WSGIEnvironment) -> tuple[str, str] | None:
        """The debugger's checks: a trusted Host (DNS rebinding), no other site asking."""
        if not self._host_ok(environ):
            shown = neutralise(str(environ.get("HTTP_HOST", "(none)")))[:100]
            return "400 Bad Request", f"Live reload does not answer for host {shown!r}.\n"
        if environ.get("HTTP_SEC_FETCH_SITE", "").lower() in ("cross-site", "same-site"):
            return "403 Forbidden", "Live reload refuses requests sent by another site.\n"
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not origin_matches_host(
            origin, environ["HTTP_HOST"], environ.get("wsgi.url_scheme", "http")
        ):
            return "403 Forbidden", "Live reload refuses requests from another origin.\n"
        return None

    def _client(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = (asset_dir("static") / "live.js").read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
        headers = [
            ("Content-Type", "text/javascript; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("ETag", etag),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", headers)
            return []
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _events(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not ("wsgidev.socket" in environ and environ.get("wsgi.multiprocess")):
            self.watcher.start()  # again in a worker another server forked after building us
        first = f"retry: {RETRY_MS}\n".encode() + encode_event("hello", {"boot": self.boot})
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-store"),
                ("X-Accel-Buffering", "no"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        # wsgidev's server keeps the stream in its I/O loop; any other server iterates it, and
        # there it ends every few seconds (see EventStream.max_age).
        return EventStream(self.channel, first, self.heartbeat, max_age=FOREIGN_MAX_AGE)

    def _error(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        token = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("tb", "")
        summary = error_summary(self.app, environ, token) if _TOKEN.fullmatch(token) else None
        if summary is None:
            data: dict[str, Any] = {"error": "This error is no longer kept, or never was."}
            status = "404 Not Found"
        else:
            data, status = summary, "200 OK"
        body = json.dumps(data, ensure_ascii=False).encode("utf-8", "replace")
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [body]

    # -- the script in pages -------------------------------------------------------------------

    def _with_script(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        # The page must come whole: a 304 would show the cached copy, with the old boot.
        environ.pop("HTTP_IF_NONE_MATCH", None)
        environ.pop("HTTP_IF_MODIFIED_SINCE", None)
        head = HeldHead(start_response)
        result = self.app(environ, head.start_response)
        close = getattr(result, "close", None)
        blocks = head.blocks(result)
        early: list[bytes] = []
        try:
            if head.status is None:  # a generator app calls start_response when first iterated
                for block in blocks:
                    early.append(block)
                    if head.status is not None:
                        break
            if head.sent or head.status is None:  # write() was used, or no head at all
                return ClosingIterator(chain(early, blocks), close)
            answer = self._add_script(environ, head, early, blocks)
            if answer is None:
                head.send(head.headers)
                return ClosingIterator(chain(early, blocks), close)
            new_headers, new_blocks = answer
            head.send(new_headers)
            return ClosingIterator(new_blocks, close)
        except BaseException:
            if close is not None:
                close()
            raise

    def _add_script(
        self, environ: WSGIEnvironment, head: HeldHead, early: list[bytes], blocks: Iterator[bytes]
    ) -> tuple[Headers, Iterable[bytes]] | None:
        """The headers and body with the script in, or None to send the response as it is
        (``early`` then holds whatever was read of the body).

        The head is read again after each read of the body: an app (the debugger) may replace
        it, with ``exc_info``, until its first body byte.
        """
        if head.status is None or not response_fits(head.status, head.headers):
            return None
        start = read_prefix(blocks, b"".join(early))
        early[:] = [start]
        if not (response_fits(head.status, head.headers) and is_document(start)):
            return None
        length = content_length(head.headers)
        if length is not None and length > MAX_HELD:
            return None
        if length is not None:
            start += b"".join(blocks)
            early[:] = [start]
        nonce = secrets.token_urlsafe(12)
        try:
            headers = amend_headers(head.headers, self._sources(environ, nonce))
        except CannotAllow as refusal:
            self._log_untouched(str(refusal))
            return None
        headers = fresh_every_time(headers)
        tag = self._tag(environ, nonce)
        if length is None:
            return headers, stream_with_tag(start, blocks, tag)
        with_tag = insert_before_body_end(start, tag)
        if with_tag is None:
            return None
        return with_length(headers, len(with_tag)), [with_tag]

    def _sources(self, environ: WSGIEnvironment, nonce: str) -> LiveSources:
        scheme = "https" if environ.get("wsgi.url_scheme") == "https" else "http"
        origin = f"{scheme}://{environ['HTTP_HOST']}"
        prefix = origin + _script_root(environ) + PREFIX
        return LiveSources(nonce, prefix + "client.js", prefix, origin)

    def _tag(self, environ: WSGIEnvironment, nonce: str) -> bytes:
        prefix = _script_root(environ) + PREFIX
        return (
            f'<script src="{escape(prefix)}client.js" data-wsgidev-boot="{escape(self.boot)}"'
            f' data-wsgidev-events="{escape(prefix)}events"'
            f' data-wsgidev-error="{escape(prefix)}error" nonce="{escape(nonce)}" defer></script>'
        ).encode()

    def _log_untouched(self, reason: str) -> None:
        reason = neutralise(reason)[:200]  # it quotes the app's own header
        with self._lock:
            if reason in self._untouched_logged:
                return
            self._untouched_logged.add(reason)
        logger.warning(
            " * Live reload left pages untouched because %s: open pages will not reload by "
            "themselves (allow 'self' in that directive to have them reload)",
            reason,
        )


def _script_root(environ: WSGIEnvironment) -> str:
    return quote(str(environ.get("SCRIPT_NAME", "")).encode("latin-1", "replace")).rstrip("/")


def _plain(
    start_response: StartResponse, status: str, text: str, extra: Headers | None = None
) -> list[bytes]:
    body = text.encode("utf-8", "replace")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *(extra or []),
        ],
    )
    return [body]


def _static_roots(static_files: StaticFiles | None) -> list[tuple[str, str]]:
    if static_files is None:
        return []
    if isinstance(static_files, (str, bytes)) or not isinstance(static_files, Iterable):
        raise TypeError(
            "static_files must be a mapping of URL prefix to folder, such as "
            f"{{'/static': 'static'}}, got {type(static_files).__name__}"
        )
    pairs = static_files.items() if isinstance(static_files, Mapping) else static_files
    roots = []
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"static_files must hold (URL prefix, folder) pairs, got {pair!r}")
        prefix, folder = pair
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ValueError(
                f"static_files keys must be URL paths such as '/static', got {prefix!r}"
            )
        if not isinstance(folder, (str, os.PathLike)):
            raise TypeError(
                f"static_files[{prefix!r}] must be a folder path, got {type(folder).__name__}"
            )
        roots.append((os.path.abspath(os.fspath(folder)), prefix))
    # The longest folder first, so a file in a nested export gets that export's URL.
    return sorted(roots, key=lambda pair: len(pair[0]), reverse=True)


def _watched_paths(watch: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    if isinstance(watch, (str, bytes, os.PathLike)) or not isinstance(watch, Iterable):
        raise TypeError(f"watch must be a list of folders or files, got {type(watch).__name__}")
    paths = []
    for item in watch:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"watch must contain paths, got {type(item).__name__} {item!r}")
        paths.append(os.path.abspath(os.fspath(item)))
    return tuple(paths)
