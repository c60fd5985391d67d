"""Step 4c of serving a static file: the response body, streamed from an open file.

Bodies are iterables with ``close()`` that close their file however the response ends
(exhausted, client gone, HEAD never iterating), as PEP 3333 asks the server to call it."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK_SIZE = 64 * 1024


class FileBody:
    """``length`` bytes of ``file`` from ``start``, read in 64 KiB blocks."""

    __slots__ = ("_file", "_remaining")

    def __init__(self, file: io.RawIOBase | io.BufferedIOBase, start: int, length: int) -> None:
        self._file = file
        self._remaining = length
        if start:
            file.seek(start)

    def __iter__(self) -> FileBody:
        return self

    def __next__(self) -> bytes:
        if self._remaining > 0:
            chunk = self._file.read(min(BLOCK_SIZE, self._remaining))
            if chunk:
                self._remaining -= len(chunk)
                return chunk
        self.close()
        raise StopIteration

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart/byteranges body: its header block and its byte span."""

    head: bytes
    start: int
    stop: int
    data: bytes | None  # the span itself when the source is in memory


@dataclass(frozen=True, slots=True)
class Multipart:
    """A planned multipart/byteranges body and the headers that announce it."""

    content_type: str
    parts: tuple[Part, ...]
    trailer: bytes
    length: int


class MultipartBody:
    """A ``multipart/byteranges`` body (RFC 9110 14.6): one part per span of the source."""

    __slots__ = ("_file", "_parts", "_trailer")

    def __init__(
        self,
        file: io.RawIOBase | io.BufferedIOBase | None,
        plan: Multipart,
    ) -> None:
        self._file = file
        self._parts = plan.parts
        self._trailer = plan.trailer

    def __iter__(self) -> Iterator[bytes]:
        for part in self._parts:
            yield part.head
            if part.data is not None:
                yield part.data
                continue
            assert self._file is not None
            self._file.seek(part.start)
            remaining = part.stop - part.start
            while remaining > 0:
                chunk = self._file.read(min(BLOCK_SIZE, remaining))
                if not chunk:
                    break  # the file shrank under us; the server sees a short body
                remaining -= len(chunk)
                yield chunk
        yield self._trailer
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def plan_multipart(
    spans: list[tuple[int, int]], size: int, content_type: str, data: bytes | None
) -> Multipart:
    """Lay out a multipart/byteranges body for ``spans`` of a ``size``-byte representation."""
    boundary = secrets.token_hex(16)
    parts: list[Part] = []
    length = 0
    for start, stop in spans:
        lead = "\r\n" if parts else ""  # the first delimiter needs no CRLF before it
        head = (
            f"{lead}--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n"
        ).encode("latin-1")
        parts.append(Part(head, start, stop, None if data is None else data[start:stop]))
        length += len(head) + stop - start
    trailer = f"\r\n--{boundary}--\r\n".encode("latin-1")
    announced = f"multipart/byteranges; boundary={boundary}"
    return Multipart(announced, tuple(parts), trailer, length + len(trailer))
