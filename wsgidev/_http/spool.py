"""Request bodies the I/O loop receives whole before the app runs (the base server).

While the app runs in the loop's thread, nobody else is served; so the loop takes the body as it
arrives, between other clients' requests, and the app then reads it from a spool (memory, then
a temporary file) instead of waiting on a slow client."""

from __future__ import annotations

import tempfile

from .body import BodyFile
from .chunked import ChunkDecoder


class BodyReceiver:
    """Takes a request body out of the connection buffer as it arrives, into a spool.

    ``feed`` is called with the connection buffer after each receive; it removes the body's
    bytes (chunked framing decoded) and returns True once the body ended, leaving any pipelined
    next request in the buffer. Framing errors raise HTTPError (400, 431); a body past
    ``max_size`` raises 413.
    """

    __slots__ = ("_chunked", "_decoder", "_left", "spool")

    def __init__(
        self, length: int | None, chunked: bool, max_size: int | None, memory_limit: int
    ) -> None:
        # Owned for the request's lifetime, closed by close() or SpooledBody.release().
        self.spool = tempfile.SpooledTemporaryFile(max_size=memory_limit, prefix="wsgidev-body-")  # noqa: SIM115
        self._chunked = chunked
        self._left = 0 if chunked else (length or 0)
        # Only a chunked body can outgrow max_size here: a longer Content-Length is refused
        # from the head.
        self._decoder = ChunkDecoder(max_size)

    def feed(self, buffer: bytearray) -> bool:
        if not self._chunked:
            take = min(self._left, len(buffer))
            if take:
                self.spool.write(buffer[:take])
                del buffer[:take]
                self._left -= take
            return self._left == 0
        return self._feed_chunked(buffer)

    def _feed_chunked(self, buffer: bytearray) -> bool:
        decoder = self._decoder
        while buffer:
            if decoder.in_data:
                self.spool.write(decoder.take(buffer, len(buffer)))
            elif not decoder.step(buffer):
                return False
            elif decoder.done:
                return True
        return False

    def body(self) -> SpooledBody:
        """The received body, for ``wsgi.input``; it owns (and closes) the spool from now on."""
        size = self.spool.tell()
        self.spool.seek(0)
        return SpooledBody(self.spool, size)

    def close(self) -> None:
        self.spool.close()


class SpooledBody(BodyFile):
    """``wsgi.input`` over a body received whole: reads never wait on the client."""

    __slots__ = ("_file", "bytes_read", "response_started", "size")

    complete = True  # nothing of it is left on the connection
    awaiting_continue = False

    def __init__(self, file: tempfile.SpooledTemporaryFile[bytes], size: int) -> None:
        self._file = file
        self.size = size
        self.bytes_read = 0
        self.response_started = False

    def read(self, size: int | None = -1) -> bytes:
        data = self._file.read(-1 if size is None else size)
        self.bytes_read += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = self._file.readline(-1 if size is None else size)
        self.bytes_read += len(line)
        return line

    def close(self) -> None:
        """Does nothing: the server releases the spool after the response."""

    def drain(self, limit: int, timeout: float) -> bool:
        return True  # the whole body was received; nothing to drop from the connection

    def release(self) -> None:
        self._file.close()
