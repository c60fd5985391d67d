"""Step 4 of the request path: answer for static files, pass everything else to the app.

_static_paths makes URL paths safe, _static_find turns them into cached StaticFile values,
_static_http reads the request headers and _static_body streams the bytes; this module picks
the status (RFC 9110 order of preconditions, then ranges) and keeps the per-request path lean."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from urllib.parse import quote

from .._types import StartResponse, WSGIApplication, WSGIEnvironment
from ._static_body import BLOCK_SIZE, FileBody, Multipart, MultipartBody, plan_multipart
from ._static_exports import ExportSource, parse_exports
from ._static_find import (
    NOT_OURS,
    REDIRECT,
    FinderOptions,
    Found,
    StaticFile,
    StaticFinder,
    Variant,
    is_hashed_name,
    is_safe_index,
    stat_key,
)
from ._static_http import choose_encoding, etag_matches, parse_http_date, parse_ranges
from ._static_paths import compile_disallow

__all__ = ["SharedDataMiddleware"]

# A cached StaticFile is found again after this many seconds even when its stat is unchanged,
# so new precompressed siblings and swapped symlinks are noticed.
REFIND_AFTER = 2.0
CACHE_LIMIT = 4096  # URL paths remembered; the cache starts over when full
CACHED_PATH_LIMIT = 1024  # longer paths are looked up each time rather than kept
# Servers whose wsgi.file_wrapper sends from the file's position (checked by the live tests).
OFFSET_AWARE_WRAPPERS = ("wsgidev.", "gunicorn.", "waitress.", "wsgiref.")
_ALLOW = ("Allow", "GET, HEAD")
_SAFE_URL_CHARS = "/!$&'()*+,;=:@-._~"


class SharedDataMiddleware:
    """Serve files from directories, single files or packages in front of a WSGI app.

    ``exports`` maps URL prefixes to a directory, a file or a ``(package, path)`` tuple (a
    dict or a list of pairs); the longest prefix is tried first and a path with no file falls
    through to ``app``. ``disallow`` is an fnmatch pattern or a list of them, matched against
    the path inside the export (and, for patterns without "/", its base name).

    wsgidev adds, all off by default: ``index`` (a file name served for "dir/", with
    "dir" redirected there), ``follow_symlinks`` (serve symlinks that leave the export) and
    ``allow_hidden`` (serve names starting with ".").

    Raises TypeError/ValueError naming the argument when one is malformed; an export
    directory that does not exist yet only warns.
    """

    def __init__(
        self,
        app: WSGIApplication,
        exports: Mapping[str, ExportSource] | Iterable[tuple[str, ExportSource]],
        disallow: str | Iterable[str] | None = None,
        cache: bool = True,
        cache_timeout: int = 60 * 60 * 12,
        fallback_mimetype: str = "application/octet-stream",
        *,
        index: str | None = None,
        follow_symlinks: bool = False,
        allow_hidden: bool = False,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {type(app).__name__}")
        if (
            isinstance(cache_timeout, bool)
            or not isinstance(cache_timeout, int)
            or cache_timeout < 0
        ):
            raise ValueError(
                f"cache_timeout must be a non-negative int of seconds, got {cache_timeout!r}"
            )
        if not isinstance(fallback_mimetype, str) or "/" not in fallback_mimetype:
            raise ValueError(
                f"fallback_mimetype must be a type/subtype string, got {fallback_mimetype!r}"
            )
        if index is not None and not (isinstance(index, str) and is_safe_index(index)):
            raise ValueError(f"index must be a plain file name such as 'index.html', got {index!r}")
        self.app = app
        self.cache = cache
        self.cache_timeout = cache_timeout
        self.fallback_mimetype = fallback_mimetype
        self._disallowed = compile_disallow(disallow)
        options = FinderOptions(
            is_disallowed=self._is_disallowed,
            index=index,
            follow_symlinks=follow_symlinks,
            allow_hidden=allow_hidden,
            cache=bool(cache),
            cache_timeout=cache_timeout,
            fallback_mimetype=fallback_mimetype,
            is_hashed_name=is_hashed_name,
        )
        self.exports = parse_exports(exports)
        self._finder = StaticFinder(self.exports, options)
        self._found: dict[str, Found] = {}
        self._expires: dict[int, tuple[int, str]] = {}

    def is_allowed(self, filename: str) -> bool:
        """Whether the path inside an export may be served; override to add rules.

        Werkzeug passes the file-system path here; wsgidev passes the "/"-separated path
        inside the export, which is what ``disallow`` patterns are written against.
        """
        return not self._disallowed(filename)

    def _is_disallowed(self, relative: str) -> bool:
        return not self.is_allowed(relative)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        found = self._found.get(path)
        if found is NOT_OURS:  # the hot path of every request for the app: one dict lookup
            return self.app(environ, start_response)
        if found is None or (isinstance(found, StaticFile) and not _is_fresh(found)):
            found = self._find(path)
        if isinstance(found, StaticFile):
            return self._serve(found, environ, start_response)
        if found is REDIRECT:
            return _redirect(environ, start_response)
        return self.app(environ, start_response)

    def _find(self, path: str) -> Found:
        found = self._finder.find(path)
        if (isinstance(found, StaticFile) or found is NOT_OURS) and len(path) <= CACHED_PATH_LIMIT:
            if len(self._found) >= CACHE_LIMIT:
                self._found.clear()
            self._found[path] = found
        else:
            self._found.pop(path, None)
        return found

    def _serve(
        self,
        file: StaticFile,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        retry: bool = True,
    ) -> Iterable[bytes]:
        """Answer for a found file: 405, the encoding, preconditions, ranges, then the body."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method != "GET" and method != "HEAD":
            return _plain(start_response, "405 Method Not Allowed", file, [_ALLOW])
        variant = file.identity
        if file.codings:
            accept = environ.get("HTTP_ACCEPT_ENCODING")
            if accept:
                coding = choose_encoding(accept, file.codings)
                if coding is not None:
                    variant = file.encoded[coding]
        failed = _failed_precondition(file, variant, environ)
        if failed is not None:
            return self._precondition_answer(failed, file, variant, start_response)
        headers = list(variant.headers_200)
        if file.max_age is not None:
            headers.append(("Expires", self._expires_header(file.max_age)))
        range_value = environ.get("HTTP_RANGE")
        if range_value and _if_range_holds(file, variant, environ):
            spans = parse_ranges(range_value, variant.size)
            if spans is not None:
                return self._partial(file, variant, spans, headers, environ, start_response, retry)
        if method == "HEAD":
            start_response("200 OK", headers)
            return []
        body = _open_body(variant, environ, 0, variant.size)
        if body is None:
            return self._changed(environ, start_response, retry)
        start_response("200 OK", headers)
        return body

    def _precondition_answer(
        self, code: int, file: StaticFile, variant: Variant, start_response: StartResponse
    ) -> Iterable[bytes]:
        """304 with the validators and caching headers and no body (RFC 9110 15.4.5), or 412."""
        if code == 412:
            return _plain(start_response, "412 Precondition Failed", file, [("ETag", variant.etag)])
        headers = list(variant.headers_304)
        if file.max_age is not None:
            headers.append(("Expires", self._expires_header(file.max_age)))
        start_response("304 Not Modified", headers)
        return []

    def _partial(
        self,
        file: StaticFile,
        variant: Variant,
        spans: list[tuple[int, int]],
        headers: list[tuple[str, str]],
        environ: WSGIEnvironment,
        start_response: StartResponse,
        retry: bool,
    ) -> Iterable[bytes]:
        """206 for satisfiable ranges (one span, or multipart/byteranges for several), else 416."""
        size = variant.size
        if not spans:
            extra = [("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")]
            return _plain(start_response, "416 Range Not Satisfiable", file, extra)
        # headers[0] and [1] are Content-Type and Content-Length; the rest stay as in a 200.
        rest = headers[2:]
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if len(spans) == 1:
            start, stop = spans[0]
            content = [headers[0], ("Content-Length", str(stop - start))]
            content.append(("Content-Range", f"bytes {start}-{stop - 1}/{size}"))
            if head:
                start_response("206 Partial Content", content + rest)
                return []
            body = _open_body(variant, environ, start, stop)
        else:
            plan = plan_multipart(spans, size, file.content_type, variant.data)
            content = [("Content-Type", plan.content_type), ("Content-Length", str(plan.length))]
            if head:
                start_response("206 Partial Content", content + rest)
                return []
            body = _open_multipart(variant, plan)
        if body is None:
            return self._changed(environ, start_response, retry)
        start_response("206 Partial Content", content + rest)
        return body

    def _changed(
        self, environ: WSGIEnvironment, start_response: StartResponse, retry: bool
    ) -> Iterable[bytes]:
        """The file changed or went away between its stat and its open: look once more.

        When it changes again (or cannot be read at all) the app answers, rather than send
        headers that describe other bytes than the body.
        """
        path = environ.get("PATH_INFO", "")
        self._found.pop(path, None)
        if retry:
            found = self._find(path)
            if isinstance(found, StaticFile):
                return self._serve(found, environ, start_response, retry=False)
        return self.app(environ, start_response)

    def _expires_header(self, max_age: int) -> str:
        """Expires for a response sent now; formatted once per second per max-age."""
        now = int(time.time())
        cached = self._expires.get(max_age)
        if cached is not None and cached[0] == now:
            return cached[1]
        value = formatdate(now + max_age, usegmt=True)
        self._expires[max_age] = (now, value)
        return value


def _is_fresh(file: StaticFile) -> bool:
    """Whether a cached StaticFile still describes the files on disk (one stat per variant)."""
    if time.monotonic() - file.found_at > REFIND_AFTER:
        return False
    identity = file.identity
    if identity.path is not None and stat_key(identity.path) != identity.key:
        return False
    if not file.encoded:
        return True
    return all(stat_key(v.path) == v.key for v in file.encoded.values() if v.path is not None)


def _failed_precondition(
    file: StaticFile, variant: Variant, environ: WSGIEnvironment
) -> int | None:
    """412 or 304 when a precondition decides the answer, in RFC 9110 13.2.2 order."""
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match is not None:
        if not etag_matches(if_match, variant.etag, weak=False):
            return 412
    else:
        since = environ.get("HTTP_IF_UNMODIFIED_SINCE")
        if since:
            date = parse_http_date(since)
            if date is not None and file.mtime > date:
                return 412
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        return 304 if etag_matches(if_none_match, variant.etag, weak=True) else None
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        if since == file.last_modified:
            return 304
        date = parse_http_date(since)
        if date is not None and file.mtime <= date:
            return 304
    return None


def _if_range_holds(file: StaticFile, variant: Variant, environ: WSGIEnvironment) -> bool:
    """RFC 9110 13.1.5: an If-Range that no longer matches turns the Range into a full 200."""
    raw: str | None = environ.get("HTTP_IF_RANGE")
    if raw is None:
        return True
    if_range = raw.strip()
    if if_range.startswith(('"', "W/")):
        return if_range == variant.etag  # strong comparison: a weak tag never matches
    return bool(parse_http_date(if_range) == file.mtime)


def _open_body(
    variant: Variant, environ: WSGIEnvironment, start: int, stop: int
) -> Iterable[bytes] | None:
    """The bytes ``start:stop``: the server's file wrapper (sendfile) when it can send them."""
    if variant.data is not None:
        return [variant.data if (start, stop) == (0, variant.size) else variant.data[start:stop]]
    file = _open(variant)
    if file is None:
        return None
    wrapper = environ.get("wsgi.file_wrapper")
    if (
        wrapper is not None
        and stop == variant.size
        and (start == 0 or _sends_from_position(wrapper))
    ):
        if start:
            file.seek(start)
        wrapped: Iterable[bytes] = wrapper(file, BLOCK_SIZE)
        return wrapped
    return FileBody(file, start, stop - start)


def _sends_from_position(wrapper: object) -> bool:
    """Whether a server's file wrapper sends from the file's current position.

    PEP 3333 leaves it open, and some servers' sendfile starts at byte 0 whatever the
    position; only wrappers known to start at the position get a range's file.
    """
    return getattr(wrapper, "__module__", "").startswith(OFFSET_AWARE_WRAPPERS)


def _open_multipart(variant: Variant, plan: Multipart) -> Iterable[bytes] | None:
    if variant.data is not None:
        return MultipartBody(None, plan)
    file = _open(variant)
    if file is None:
        return None
    return MultipartBody(file, plan)


def _open(variant: Variant) -> io.FileIO | None:
    """Open the file a Variant describes; None when it is gone or is no longer that file.

    The fstat catches a file replaced (an editor's atomic save) since it was described, whose
    bytes would not match the ETag and Content-Length already computed.
    """
    assert variant.path is not None
    try:
        file = open(variant.path, "rb", buffering=0)  # noqa: SIM115 - the body closes it
    except OSError:
        return None
    try:
        info = os.fstat(file.fileno())
    except OSError:
        info = None
    if info is None or (info.st_mtime_ns, info.st_size, info.st_ino) != variant.key:
        file.close()
        return None
    return file


def _plain(
    start_response: StartResponse, status: str, file: StaticFile, extra: list[tuple[str, str]]
) -> Iterable[bytes]:
    """A short text/plain answer about a static file (405, 412, 416)."""
    body = status.split(" ", 1)[1].encode("ascii") + b"\n"
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    if file.has_vary:
        headers.append(("Vary", "Accept-Encoding"))
    start_response(status, headers)
    return [body]


def _redirect(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """301 from a directory to its slash form, which serves its index file."""
    raw = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode(
        "latin-1", "replace"
    )
    # Exactly one leading slash: "//docs/" would be a protocol-relative URL to the host "docs".
    location = "/" + quote(raw, safe=_SAFE_URL_CHARS).lstrip("/") + "/"
    query = environ.get("QUERY_STRING")
    if query:
        location += "?" + query
    if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        body = b"Method Not Allowed\n"
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            _ALLOW,
        ]
        start_response("405 Method Not Allowed", headers)
        return [body]
    body = b"Moved Permanently\n"
    headers = [
        ("Location", location),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    start_response("301 Moved Permanently", headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
