"""Chunked request-body decoding (RFC 9112 7.1), one framing line at a time.

Both the lazy ``wsgi.input`` and the loop's body spool decode through this one state machine, so
the rules that keep a front proxy and this server agreeing on where a body ends (hex-only sizes,
bounded framing lines, CRLF after each chunk, a bounded trailer section) cannot drift apart."""

from __future__ import annotations

import re
from typing import Literal

from .head import HTTPError

MAX_CHUNK_LINE = 4096
MAX_TRAILERS = 64 * 1024
# RFC 9112 7.1: chunk-size is hex digits only; int(x, 16) would also take "0x", "+", "_" and
# spaces, which is exactly the disagreement between parsers that smuggling needs.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class ChunkDecoder:
    """Decodes a chunked body out of a connection buffer that the caller keeps filling.

    ``step`` consumes one framing line (size, the CRLF after chunk data, or a trailer field) and
    ``take`` consumes chunk data; neither reads past the body's end, so a pipelined next request
    stays in the buffer. Framing errors raise HTTPError 400 (431 for a huge trailer section); a
    chunk that would take the body past ``max_size`` raises 413 before its data is read.
    """

    __slots__ = ("_chunk_left", "_max", "_state", "_trailer_bytes", "decoded")

    def __init__(self, max_size: int | None = None) -> None:
        self._max = max_size
        self._state: Literal["size", "data", "crlf", "trailer", "done"] = "size"
        self._chunk_left = 0
        self._trailer_bytes = 0
        self.decoded = 0

    @property
    def in_data(self) -> bool:
        """True while chunk data (not a framing line) comes next."""
        return self._state == "data"

    @property
    def in_crlf(self) -> bool:
        """True right after a chunk's data, before its CRLF has been read."""
        return self._state == "crlf"

    @property
    def done(self) -> bool:
        """True once the last chunk and the trailer section's empty line have been read."""
        return self._state == "done"

    def take(self, buffer: bytearray, size: int) -> bytes:
        """Remove and return up to ``size`` bytes of the current chunk's data from ``buffer``."""
        want = min(size, self._chunk_left, len(buffer))
        data = bytes(buffer[:want])
        del buffer[:want]
        self._chunk_left -= want
        self.decoded += want
        if self._chunk_left == 0:
            self._state = "crlf"
        return data

    def step(self, buffer: bytearray) -> bool:
        """Consume one framing line from ``buffer``; False if it has not fully arrived yet."""
        # Only CRLF may follow chunk data: a longer line there is refused at its third byte.
        limit = 2 if self._state == "crlf" else MAX_CHUNK_LINE
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > limit:
                raise HTTPError(400, "chunk framing line too long")
            return False
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        # Every framing line ends with CRLF and holds no other CR (RFC 9112 7.1): a bare LF or
        # CR is read as a line end by some parsers and not by others.
        if not line.endswith(b"\r"):
            raise HTTPError(400, "chunk framing line not ended by CRLF")
        line = line[:-1]
        if b"\r" in line:
            raise HTTPError(400, "bare CR in a chunk framing line")
        if len(line) > limit:
            raise HTTPError(400, "chunk framing line too long")
        if self._state == "crlf":
            if line:
                raise HTTPError(400, "chunk data not followed by CRLF")
            self._state = "size"
        elif self._state == "size":
            self._start_chunk(line)
        elif line:  # a trailer field: read and dropped (RFC 9112 7.1.2)
            self._trailer_bytes += len(line)
            if self._trailer_bytes > MAX_TRAILERS:
                raise HTTPError(431, "chunked trailer section too large")
        else:
            self._state = "done"  # the empty line after the last chunk (and trailers)
        return True

    def _start_chunk(self, line: bytes) -> None:
        # "size[;ext]": extensions are ignored; whitespace around the size is refused, as
        # gunicorn and h11 refuse it before an extension.
        size = line.split(b";", 1)[0]
        if not _CHUNK_SIZE.fullmatch(size):
            raise HTTPError(400, "malformed chunk size")
        self._chunk_left = int(size, 16)
        if self._max is not None and self.decoded + self._chunk_left > self._max:
            raise HTTPError(413, f"request body larger than {self._max} bytes")
        self._state = "data" if self._chunk_left else "trailer"
