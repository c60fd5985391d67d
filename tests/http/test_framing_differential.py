"""Where a request's head and body end: wsgidev's parser against h11, one table of framings.

A front proxy and this server must agree on every byte, or a second request hides in the
first one's body. Each row says whether wsgidev accepts the framing; h11 must agree, except
in the rows marked stricter, where RFC 9112 lets a server refuse what h11 tolerates and
wsgidev refuses it as gunicorn does. Every row is checked on the parser, fed whole and byte by
byte, and on a live server over a socket.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.serverkit import Client, running
from wsgidev._http.chunked import ChunkDecoder
from wsgidev._http.head import HTTPError, read_head

h11 = pytest.importorskip("h11")

CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
LENGTH = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\nhello"
H11_ACCEPTS = "h11 accepts it; RFC 9112 lets a server refuse it, and gunicorn does"

# (name, request, wsgidev accepts, why wsgidev is stricter than h11 or None when they agree)
FRAMINGS: list[tuple[str, bytes, bool, str | None]] = [
    ("chunked", CHUNKED + b"5\r\nhello\r\n0\r\n\r\n", True, None),
    ("chunk extension", CHUNKED + b"5;name=value\r\nhello\r\n0\r\n\r\n", True, None),
    ("trailer field", CHUNKED + b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", True, None),
    ("upper-case hex size", CHUNKED + b"A\r\nhelloworld\r\n0\r\n\r\n", True, None),
    ("content-length", LENGTH % b"5", True, None),
    ("bare LF heads", b"GET / HTTP/1.1\nHost: x\nX-A: 1\n\n", True, None),
    ("bare LF ends a chunk size", CHUNKED + b"5\nhello\r\n0\r\n\r\n", False, None),
    ("bare LF after chunk data", CHUNKED + b"5\r\nhello\n0\r\n\r\n", False, None),
    ("bare LF ends the last chunk", CHUNKED + b"5\r\nhello\r\n0\n\r\n", False, None),
    ("bare LF ends the trailers", CHUNKED + b"5\r\nhello\r\n0\r\n\n", False, H11_ACCEPTS),
    ("bare CR in an extension", CHUNKED + b"5;a\rb\r\nhello\r\n0\r\n\r\n", False, H11_ACCEPTS),
    ("space before an extension", CHUNKED + b"5 ;a=b\r\nhello\r\n0\r\n\r\n", False, None),
    ("space after the size", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", False, H11_ACCEPTS),
    ("tab after the size", CHUNKED + b"5\t\r\nhello\r\n0\r\n\r\n", False, H11_ACCEPTS),
    ("0x before the size", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", False, None),
    ("no CRLF after data", CHUNKED + b"5\r\nhelloX\r\n0\r\n\r\n", False, None),
    (
        "obs-folded Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        False,
        H11_ACCEPTS,
    ),
    ("obs-folded field", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", False, H11_ACCEPTS),
    ("head ended by LF CRLF", b"GET / HTTP/1.1\r\nHost: x\n\r\n", False, H11_ACCEPTS),
    ("content-length list", LENGTH % b"5, 5", False, H11_ACCEPTS),
    ("conflicting content-length list", LENGTH % b"5, 6", False, None),
    ("signed content-length", LENGTH % b"+5", False, None),
    (
        "chunked twice",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        False,
        None,
    ),
    ("space before a colon", b"GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n", False, None),
]
IDS = [row[0] for row in FRAMINGS]


def h11_accepts(raw: bytes) -> bool:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return False  # h11 still waits: it did not find the end where the bytes end
            if isinstance(event, h11.EndOfMessage):
                return True
    except h11.RemoteProtocolError:
        return False


def wsgidev_accepts(raw: bytes, piece: int | None = None) -> bool:
    """The head and body parsers on ``raw``, fed whole or ``piece`` bytes at a time."""
    buffer = bytearray()
    feed = [raw] if piece is None else [raw[i : i + piece] for i in range(0, len(raw), piece)]
    head = None
    decoder: ChunkDecoder | None = None
    try:
        for part in feed:
            buffer += part
            if head is None:
                head, _ = read_head(buffer)
                if head is None:
                    continue
                if head.chunked:
                    decoder = ChunkDecoder()
            if decoder is not None:
                while buffer and not decoder.done:
                    if decoder.in_data:
                        decoder.take(buffer, len(buffer))
                    elif not decoder.step(buffer):
                        break
    except HTTPError:
        return False
    if head is None:
        return False
    if decoder is not None:
        return decoder.done and not buffer
    return len(buffer) == (head.content_length or 0)


@pytest.mark.parametrize(("name", "raw", "accepted", "stricter"), FRAMINGS, ids=IDS)
def test_the_parser_and_h11_agree(name: str, raw: bytes, accepted: bool, stricter: Any) -> None:
    assert wsgidev_accepts(raw) is accepted
    assert wsgidev_accepts(raw, piece=1) is accepted  # framing decisions hold byte by byte
    assert h11_accepts(raw) is (accepted if stricter is None else True), stricter


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_the_live_server_answers_each_framing_and_keeps_serving() -> None:
    with running(echo, "threaded") as server:
        for name, raw, accepted, _ in FRAMINGS:
            client = Client.connect(server)
            try:
                client.send(raw)
                reply = client.reply()
            finally:
                client.sock.close()
            assert reply.status == (200 if accepted else 400), name
        last = Client.connect(server)
        assert last.get("/").status == 200
        last.sock.close()
