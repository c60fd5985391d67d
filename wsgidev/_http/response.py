"""Response pieces that do not depend on the request: the Date header, header checks, the file
wrapper, and the small error pages the server answers itself."""

from __future__ import annotations

import email.utils
import os
import re
import stat
import time
from collections.abc import Iterator
from typing import BinaryIO, Literal, NamedTuple

from markupsafe import escape

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]")
ERROR_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>{status}</title>\n<h1>{reason}</h1>\n<p>{detail}</p>\n"
)
_date_second = -1
_date_header = ""


def http_date_header() -> str:
    """``Date: ...\\r\\n`` for now (RFC 9110 5.6.7), formatted once per second."""
    global _date_second, _date_header
    now = int(time.time())
    if now != _date_second:
        _date_header = f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n"
        _date_second = now
    return _date_header


class FileWrapper:
    """``wsgi.file_wrapper``: an iterable over a file that the server may send with sendfile.

    Sent from the file's current position; ``close()`` closes the file (PEP 3333).
    """

    __slots__ = ("blksize", "filelike")

    def __init__(self, filelike: BinaryIO, blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        while block := self.filelike.read(self.blksize):
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def regular_fileno(self) -> int | None:
        """The file descriptor when the file is a regular file on disk, else None."""
        try:
            fd = self.filelike.fileno()
            return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except (AttributeError, OSError, ValueError):
            return None


def error_page(status: int, reason: str, detail: str) -> bytes:
    """The HTML body of an error the server answers itself; ``detail`` is escaped."""
    return ERROR_PAGE.format(
        status=f"{status} {reason}", reason=reason, detail=escape(detail)
    ).encode()


def error_response(status: int, reason: str, detail: str, server: str) -> bytes:
    """A complete small HTML response, ending the connection, for an error the server answers.

    ``server`` is the Server header value, the same one app responses get."""
    body = error_page(status, reason, detail)
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nServer: {server}\r\n{http_date_header()}"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


# Response header names already checked (apps send the same few); bounded.
_GOOD_NAMES: set[str] = set()


def check_header(name: object, value: object) -> None:
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"response header names and values must be str, got {name!r}: {value!r}")
    # A CR or LF from the app would let it (or its user input) inject headers or a second response.
    if name not in _GOOD_NAMES:
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"invalid response header {name!r}: {value!r}")
        if len(_GOOD_NAMES) < 512 and type(name) is str:  # a str subclass may compare oddly
            _GOOD_NAMES.add(name)
    if _BAD_HEADER_VALUE.search(value):
        raise ValueError(f"invalid response header {name!r}: {value!r}")


# RFC 9110 8.6, 15.3.5: 1xx and 204 never have a body nor its framing; 304 has no body.
NO_BODY_STATUSES = frozenset({204, 304})


class ResponseHead(NamedTuple):
    lines: list[str]  # the status line and header lines, each with its CRLF
    length: int | None  # the app's Content-Length
    close: bool  # the app said Connection: close


def response_head(
    status: str, code: int, headers: list[tuple[str, str]], server: str
) -> ResponseHead:
    """The head lines of the app's response, the Content-Length it set and whether it asked
    to close; a Server (``server``) and a Date header are added unless the app set them.

    Framing is the server's (PEP 3333 forbids hop-by-hop headers): a transfer coding other
    than chunked, Transfer-Encoding with Content-Length, or differing Content-Lengths are a
    ValueError naming the header, which becomes a 500 since nothing was sent yet.
    """
    lines = ["HTTP/1.1 ", status, "\r\n"]
    has_date = has_server = close = False
    length: int | None = None
    app_coding: str | None = None
    # A length copied from the app for a bodiless status could only mislead.
    bodiless = code < 200 or code in NO_BODY_STATUSES
    for name, value in headers:
        check_header(name, value)
        lower = name.lower()
        if bodiless and lower in ("content-length", "transfer-encoding"):
            continue
        if lower == "content-length":
            value_length = parse_length(value)
            if length is not None:
                if value_length != length:
                    raise ValueError(
                        f"the app set two different Content-Length headers: {length} "
                        f"and {value_length}"
                    )
                continue
            length = value_length
        elif lower == "connection":
            close = close or "close" in value.lower()
            continue  # hop-by-hop: the server decides
        elif lower == "transfer-encoding":
            if value.strip().lower() != "chunked" or app_coding is not None:
                raise ValueError(
                    f"the app set Transfer-Encoding: {value}; the server frames responses "
                    "itself (only a body the app chunk-encoded can be re-framed)"
                )
            app_coding = value
            continue  # decoded as the app writes it, and framed again by the server
        elif lower == "date":
            has_date = True
        elif lower == "server":
            has_server = True
        lines += (name, ": ", value, "\r\n")
    if not has_server:
        lines += ("Server: ", server, "\r\n")
    if not has_date:
        lines.append(http_date_header())
    if app_coding is not None and length is not None:
        raise ValueError(
            "the app set both Transfer-Encoding and Content-Length; a response has one framing"
        )
    return ResponseHead(lines, length, close)


def parse_length(value: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise ValueError(f"the app's Content-Length header must be digits, got {value!r}")
    return int(text)


def encode_head(parts: list[str]) -> bytes:
    try:
        return "".join(parts).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"response headers must be latin-1 text: {exc}") from None


class ChunkedDecoder:
    """Decodes a body the app chunk-encoded itself, so the server can frame it again.

    ``feed`` returns the data decoded so far and raises ValueError as soon as the bytes cannot
    be chunked framing (RFC 9112 7.1); ``done`` is True once the last chunk and trailers ended.
    """

    __slots__ = ("_buffer", "_left", "_state", "done")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._left = 0
        self._state: Literal["size", "data", "crlf", "trailer"] = "size"
        self.done = False

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        if self.done:
            if data:
                raise ValueError(_NOT_CHUNKED + ": bytes after its last chunk")
            return b""
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        while buffer and not self.done:
            state = self._state
            if state == "data":
                take = min(self._left, len(buffer))
                out.append(bytes(buffer[:take]))
                del buffer[:take]
                self._left -= take
                if self._left == 0:
                    self._state = "crlf"
                continue
            end = buffer.find(b"\n")
            line = bytes(buffer if end < 0 else buffer[:end])
            if end < 0:
                # Refuse a plain body at its first byte, not when it happens to end.
                if (
                    len(line) > _MAX_CHUNK_LINE
                    or (state == "size" and not _CHUNK_LINE_START.fullmatch(line))
                    or (state == "crlf" and line not in (b"", b"\r"))
                ):
                    raise ValueError(_NOT_CHUNKED)
                break
            del buffer[: end + 1]
            line = line[:-1] if line.endswith(b"\r") else line
            if state == "crlf":
                if line:
                    raise ValueError(_NOT_CHUNKED + ": chunk data longer than its size")
                self._state = "size"
            elif state == "size":
                match = _CHUNK_LINE.fullmatch(line)
                if match is None:
                    raise ValueError(_NOT_CHUNKED)
                self._left = int(match[1], 16)
                self._state = "data" if self._left else "trailer"
            elif not line:  # the empty line that ends the trailer section
                self.done = True
        if self.done and buffer:
            raise ValueError(_NOT_CHUNKED + ": bytes after its last chunk")
        return b"".join(out)


_NOT_CHUNKED = "the app set Transfer-Encoding: chunked but its body is not chunked framing"
_MAX_CHUNK_LINE = 4096
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
_CHUNK_LINE_START = re.compile(rb"[0-9A-Fa-f]{0,16}(?:[ \t]*(?:;[^\r\n]*)?)?\r?")
