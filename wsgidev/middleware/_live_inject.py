"""Which responses get the live-reload script, and how it goes in without breaking them.

Only whole HTML documents asked for by a navigation: ``text/html``, not encoded, not an htmx or
``fetch()`` request, starting with ``<!doctype html>`` or ``<html>``, with a ``</body>``. A body
of known length is held (up to ``MAX_HELD``) so ``Content-Length`` can be corrected; a streamed
one flows through and the tag goes in before the first ``</body>`` that passes by.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from wsgidev._types import WSGIEnvironment

Headers = list[tuple[str, str]]
# A body of known length larger than this is passed through untouched, not held in memory.
MAX_HELD = 8 * 1024 * 1024
# At most this much of a streamed body is held to see whether it starts like a document.
PREFIX_BYTES = 512
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
# A whole document: optional BOM, blank space and comments, then a doctype or <html>.
_DOCUMENT_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(?:\s|<!--.*?-->)*<(?:!doctype\s+html|html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_NAVIGATION_DESTS = frozenset({"", "document", "iframe", "frame", "embed", "object"})


def wants_script(environ: WSGIEnvironment) -> bool:
    """Whether the request is a page load a browser shows (judged before the app answers).

    Only GET: reloading the answer to a form's POST would send the form again.
    """
    if environ.get("REQUEST_METHOD") != "GET":
        return False
    if environ.get("HTTP_HX_REQUEST") or "__debugger__=yes" in environ.get("QUERY_STRING", ""):
        return False
    return environ.get("HTTP_SEC_FETCH_DEST", "").lower() in _NAVIGATION_DESTS


def response_fits(status: str, headers: Headers) -> bool:
    """Whether the headers allow adding a script: HTML, not encoded, a status with a body."""
    code = status[:3]
    if code in ("204", "304") or code.startswith("1"):
        return False
    content_type = ""
    for name, value in headers:
        lower = name.lower()
        if lower == "content-type":
            content_type = value
        elif (
            lower == "content-range"
            or (lower == "content-encoding" and value.strip().lower() not in ("", "identity"))
            or (lower == "content-disposition" and value.strip().lower().startswith("attachment"))
        ):
            return False
    return content_type.split(";", 1)[0].strip().lower() == "text/html"


def content_length(headers: Headers) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


def with_length(headers: Headers, length: int) -> Headers:
    return [
        (name, str(length) if name.lower() == "content-length" else value)
        for name, value in headers
    ]


def is_document(start: bytes) -> bool:
    return _DOCUMENT_START.match(start) is not None


_LEADING = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:\s|<!--.*?-->)*", re.DOTALL)
_OPENINGS = (b"<!doctype html", b"<html")


def document_verdict(start: bytes) -> bool | None:
    """Whether a body starting with ``start`` is a whole document; None while too little of
    it has arrived to tell (so a streamed page is held no longer than needed)."""
    if is_document(start):
        return True
    leading = _LEADING.match(start)
    rest = start[leading.end() if leading else 0 :].lower()
    if not rest or rest.startswith(b"<!--"):  # blank so far, or a comment still arriving
        return None
    if any(opening.startswith(rest) for opening in _OPENINGS):
        return None  # "<!doc", "<html": the next bytes decide
    return False


def insert_before_body_end(body: bytes, tag: bytes) -> bytes | None:
    """``body`` with ``tag`` before its last ``</body>``; None when it has none."""
    matches = list(_BODY_END.finditer(body))
    if not matches:
        return None
    last = matches[-1]
    return body[: last.start()] + tag + body[last.start() :]


def stream_with_tag(first: bytes, rest: Iterator[bytes], tag: bytes) -> Iterator[bytes]:
    """Pass a streamed document through with ``tag`` before its last ``</body>``.

    Everything before the latest ``</body>`` seen goes out as it comes; from there on the
    body is held (usually a few bytes: the end of the document), so a ``</body>`` written
    inside a script earlier in the page never gets the tag.
    """
    pending = first
    for block in chain([b""], _blocks(rest)):  # what came first goes out before more is read
        pending += block
        cut = _safe_cut(pending)
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield insert_before_body_end(pending, tag) or pending


def _safe_cut(pending: bytes) -> int:
    """How much of ``pending`` may go out: all before the last ``</body>``, or all but a tail
    that could be the start of one split across blocks."""
    matches = list(_BODY_END.finditer(pending))
    if matches:
        return matches[-1].start()
    tail_at = pending.rfind(b"<", max(len(pending) - 16, 0))
    if tail_at >= 0 and b"</body".startswith(pending[tail_at : tail_at + 6].lower()):
        return tail_at
    return len(pending)


def _blocks(blocks: Iterator[bytes]) -> Iterator[bytes]:
    for block in blocks:
        if not isinstance(block, (bytes, bytearray)):
            raise TypeError(f"the app must yield bytes, got {type(block).__name__}")
        yield bytes(block)


def read_prefix(blocks: Iterator[bytes], start: bytes = b"") -> bytes:
    """The body's first bytes, read until it is clear whether they start a document (at most
    PREFIX_BYTES, less if the body ends first)."""
    if document_verdict(start) is not None:
        return start
    for block in _blocks(blocks):
        start += block
        if len(start) >= PREFIX_BYTES or document_verdict(start) is not None:
            break
    return start


class ClosingIterator:
    """Yields ``blocks`` and, when the server closes it, closes the app's own iterable."""

    def __init__(self, blocks: Iterable[bytes], close: Callable[[], None] | None) -> None:
        self._blocks = iter(blocks)
        self._close = close

    def __iter__(self) -> Iterator[bytes]:
        return self._blocks

    def close(self) -> None:
        if self._close is not None:
            close, self._close = self._close, None
            close()


class HeldHead:
    """The ``start_response`` the wrapped app sees while the middleware holds the response.

    It behaves as a server would: a second call with ``exc_info`` replaces the head until a
    body byte has come (then it re-raises, as once the head is sent); once the middleware has
    called the real ``start_response`` (``send``), every call goes straight to it. The legacy
    ``write()`` sends the head as the app gave it.
    """

    def __init__(self, start_response: Callable[..., Any]) -> None:
        self._start = start_response
        self.status: str | None = None
        self.headers: Headers = []
        self.sent = False
        self.body_seen = False
        self._write: Callable[[bytes], Any] | None = None

    def start_response(self, status: str, headers: Headers, exc_info: Any = None) -> Any:
        if self.sent:
            return self._start(status, headers, exc_info)  # the server replaces or re-raises
        if exc_info is not None:
            try:
                if self.body_seen:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        self.status, self.headers = status, headers
        return self.write

    def write(self, data: bytes) -> None:
        if not self.sent:
            self.send(self.headers)
        assert self._write is not None
        self._write(data)

    def send(self, headers: Headers) -> None:
        assert self.status is not None
        self.sent = True
        self._write = self._start(self.status, headers)

    def blocks(self, iterable: Iterable[bytes]) -> Iterator[bytes]:
        for block in iterable:
            if block:
                self.body_seen = True
            yield block


_VALIDATORS = frozenset({"etag", "last-modified", "cache-control", "expires"})


def fresh_every_time(headers: Headers) -> Headers:
    """A page with the script is revalidated on every load and has no validators: a cached
    copy would carry the boot of a server that is gone. It varies on what decides whether
    the script is added."""
    kept = [(name, value) for name, value in headers if name.lower() not in _VALIDATORS]
    vary = [value for name, value in kept if name.lower() == "vary"]
    kept = [(name, value) for name, value in kept if name.lower() != "vary"]
    fields = [field.strip() for value in vary for field in value.split(",") if field.strip()]
    for field in ("Sec-Fetch-Dest", "HX-Request"):
        if field.lower() not in (f.lower() for f in fields):
            fields.append(field)
    return [*kept, ("Cache-Control", "no-cache"), ("Vary", ", ".join(fields))]
