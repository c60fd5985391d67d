"""``wsgi.input``: the request body, read lazily from the connection as the app asks for it.

Content-Length and chunked bodies end exactly at the body's end (``wsgi.input_terminated``), so
bytes of a pipelined next request stay in the connection buffer for the next head."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

from .chunked import ChunkDecoder
from .head import ClientDisconnected, HTTPError
from .io import recv_some, send_all

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
RECV_BLOCK = 64 * 1024


class BodyFile:
    """What ``wsgi.input`` offers beyond ``read`` and ``readline``, built on those two."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        raise NotImplementedError

    def readline(self, size: int | None = -1) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:
        """Fill ``target`` from the body; return how many bytes were stored (0 at the end)."""
        view = memoryview(target).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class EmptyBody(BodyFile):
    """``wsgi.input`` of a request without a body (most of them): no socket, no decoder."""

    __slots__ = ("response_started",)

    complete = True
    awaiting_continue = False
    bytes_read = 0

    def __init__(self) -> None:
        self.response_started = False

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def close(self) -> None:
        """Does nothing: there is nothing to release."""

    def drain(self, limit: int, timeout: float) -> bool:
        return True


class RequestBody(BodyFile):
    """File-like request body: ``read``, ``readline``, ``readlines`` and iteration.

    A body framing error raises HTTPError (400); a client that goes away raises
    ClientDisconnected. ``read(n)`` returns ``n`` bytes unless the body ends first.
    """

    __slots__ = (
        "_buffer",
        "_chunked",
        "_continue",
        "_decoder",
        "_done",
        "_left",
        "_pending",
        "_sock",
        "_timeout",
        "bytes_read",
        "response_started",
    )

    def __init__(
        self,
        sock: socket.socket,
        buffer: bytearray,
        length: int | None,
        chunked: bool,
        expect_continue: bool,
        timeout: float,
    ) -> None:
        self._sock = sock
        self._buffer = buffer
        self._timeout = timeout
        self._chunked = chunked
        self._left = 0 if chunked else (length or 0)
        self._decoder = ChunkDecoder() if chunked else None
        self._done = not chunked and self._left == 0
        self._continue = expect_continue and not self._done
        self._pending = b""
        self.bytes_read = 0
        self.response_started = False

    @property
    def complete(self) -> bool:
        """True once the whole body (and any chunked trailer) has been consumed."""
        return self._done and not self._pending

    @property
    def awaiting_continue(self) -> bool:
        """True while the client still waits for ``100 Continue`` before sending the body."""
        return self._continue and not self._buffer

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._take_pending(-1)]
            while block := self._read_some(RECV_BLOCK):
                parts.append(block)
            return b"".join(parts)
        if size == 0:
            return b""
        data = self._take_pending(size)
        if len(data) == size:
            return data
        parts = [data]
        missing = size - len(data)
        while missing > 0 and (block := self._read_some(missing)):
            parts.append(block)
            missing -= len(block)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        if limit == 0:
            return b""
        line = self._pending
        while True:
            end = line.find(b"\n") + 1
            if end == 0 and 0 <= limit <= len(line):
                end = limit
            if end:
                if 0 <= limit < end:
                    end = limit
                self._pending = line[end:]
                return line[:end]
            block = self._read_some(RECV_BLOCK)
            if not block:
                self._pending = b""
                return line
            line += block

    def close(self) -> None:
        """Does nothing: the server owns the connection; leftovers are drained after the app."""

    def drain(self, limit: int, timeout: float) -> bool:
        """Read and drop the rest of the body; False if it is larger than ``limit`` or stalls."""
        if self._continue and not self._buffer:
            return False  # the client waits for 100 Continue; we never asked for the body
        if not self._chunked and self._left > limit + len(self._buffer):
            return False
        deadline = time.monotonic() + timeout
        self._pending = b""
        dropped = 0
        try:
            while dropped <= limit and time.monotonic() < deadline:
                block = self._read_some(RECV_BLOCK)
                if not block:
                    return True
                dropped += len(block)
        except (HTTPError, ClientDisconnected):
            return False
        return False

    def _take_pending(self, size: int) -> bytes:
        data = self._pending
        if not data:
            return b""
        if 0 <= size < len(data):
            self._pending = data[size:]
            return data[:size]
        self._pending = b""
        return data

    def _read_some(self, size: int) -> bytes:
        """Return 1..size bytes of decoded body, or b"" at its end."""
        data = self._read_chunked(size) if self._chunked else self._read_fixed(size)
        self.bytes_read += len(data)
        return data

    def _read_fixed(self, size: int) -> bytes:
        left = self._left
        if left <= 0:
            return b""
        want = min(size, left)
        buffer = self._buffer
        if buffer:
            data = bytes(buffer[:want])
            del buffer[:want]
        else:
            self._send_continue()
            # Read straight into the result: no copy through the connection buffer.
            data = recv_some(self._sock, self._timeout, min(max(want, 4096), RECV_BLOCK))
            if not data:
                raise ClientDisconnected(
                    f"client closed the connection with {left} body bytes unsent"
                )
            if len(data) > want:
                buffer += data[want:]
                data = data[:want]
        self._left = left - len(data)
        self._done = self._left == 0
        return data

    def _read_chunked(self, size: int) -> bytes:
        decoder = self._decoder
        assert decoder is not None  # a chunked body has one
        buffer = self._buffer
        while not decoder.in_data:
            if decoder.done:
                self._done = True
                return b""
            if not decoder.step(buffer):
                self._fill()
        if not buffer:
            self._fill()
        data = decoder.take(buffer, size)
        # The CRLF after a chunk's data is checked before the data is handed over.
        while decoder.in_crlf and not decoder.step(buffer):
            self._fill()
        return data

    def _fill(self) -> None:
        self._send_continue()
        data = recv_some(self._sock, self._timeout)
        if not data:
            raise ClientDisconnected("client closed the connection in the middle of the body")
        self._buffer += data

    def _send_continue(self) -> None:
        if self._continue:
            self._continue = False
            # A final status already sent answers the expectation; 100 after it is invalid.
            if not self.response_started and not self._buffer:
                send_all(self._sock, CONTINUE, self._timeout)
