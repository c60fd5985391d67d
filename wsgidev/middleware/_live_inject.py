"""Which responses get the live-reload script, and how it goes in without breaking them.

Only whole HTML documents asked for by a navigation: ``text/html``, not encoded, not an htmx or
``fetch()`` request, starting with ``<!doctype html>`` or ``<html>``, with a ``</body>``. A body
of known length is held (up to ``MAX_HELD``) so ``Content-Length`` can be corrected; a streamed
one flows through and the tag goes in before the first ``</body>`` that passes by.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from wsgidev._types import WSGIEnvironment

Headers = list[tuple[str, str]]
# A body of known length larger than this is passed through untouched, not held in memory.
MAX_HELD = 8 * 1024 * 1024
# How much of a streamed body is held to see whether it starts like a document.
PREFIX_BYTES = 512
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
# A whole document: optional BOM, blank space and comments, then a doctype or <html>.
_DOCUMENT_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(?:\s|<!--.*?-->)*<(?:!doctype\s+html|html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_NAVIGATION_DESTS = frozenset({"", "document", "iframe", "frame", "embed", "object"})


def wants_script(environ: WSGIEnvironment) -> bool:
    """Whether the request is a page load a browser shows (judged before the app answers)."""
    if environ.get("REQUEST_METHOD") not in ("GET", "POST"):
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
        elif lower == "content-range" or (
            lower == "content-encoding" and value.strip().lower() not in ("", "identity")
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


def insert_before_body_end(body: bytes, tag: bytes) -> bytes | None:
    """``body`` with ``tag`` before its last ``</body>``; None when it has none."""
    matches = list(_BODY_END.finditer(body))
    if not matches:
        return None
    last = matches[-1]
    return body[: last.start()] + tag + body[last.start() :]


def stream_with_tag(first: bytes, rest: Iterator[bytes], tag: bytes) -> Iterator[bytes]:
    """Pass a streamed document through, ``tag`` added before the first ``</body>``."""
    pending = first
    for block in _blocks(rest):
        pending += block
        found = _BODY_END.search(pending)
        if found is not None:
            yield pending[: found.start()] + tag + pending[found.start() :]
            yield from _blocks(rest)
            return
        # Keep the tail that could be the start of a split "</body >".
        keep = max(len(pending) - 16, 0)
        if keep:
            yield pending[:keep]
            pending = pending[keep:]
    found = _BODY_END.search(pending)
    if found is not None:
        pending = pending[: found.start()] + tag + pending[found.start() :]
    if pending:
        yield pending


def _blocks(blocks: Iterator[bytes]) -> Iterator[bytes]:
    for block in blocks:
        if not isinstance(block, (bytes, bytearray)):
            raise TypeError(f"the app must yield bytes, got {type(block).__name__}")
        yield bytes(block)


def read_prefix(blocks: Iterator[bytes]) -> bytes:
    """At least PREFIX_BYTES of a streamed body (less if it ends first)."""
    start = b""
    for block in _blocks(blocks):
        start += block
        if len(start) >= PREFIX_BYTES:
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
