"""The request-head parser, driven from one table of cases, fed whole and one byte at a time.

Then hypothesis throws malformed heads at the parser and at a live server: the parser only ever
answers with an HTTPError, and the server answers with a status and keeps serving."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serverkit import Client, hello, running
from wsgidev._http.head import HTTPError, RequestHead, read_head

H = "Host: example.com\r\n"

# (name, raw head, expected): expected is an int status for a rejected head, or a dict of
# RequestHead attributes (and "env:KEY" environ entries) that must match.
CASES: list[tuple[str, bytes, Any]] = [
    (
        "simple",
        f"GET / HTTP/1.1\r\n{H}\r\n".encode(),
        {"method": "GET", "path": "/", "query": "", "keep_alive": True},
    ),
    (
        "query",
        f"GET /a/b?x=1&y=%20 HTTP/1.1\r\n{H}\r\n".encode(),
        {"path": "/a/b", "query": "x=1&y=%20"},
    ),
    (
        "percent-decoded path is latin-1",
        f"GET /caf%C3%A9%2Fx HTTP/1.1\r\n{H}\r\n".encode(),
        {"path": "/caf\xc3\xa9/x"},
    ),
    (
        "raw high bytes kept as latin-1",
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        {"path": "/\xc3\xa9", "target": "/\xc3\xa9"},
    ),
    (
        "double slash is a path",
        f"GET //evil.com/x?q HTTP/1.1\r\n{H}\r\n".encode(),
        {"path": "//evil.com/x", "query": "q", "env:HTTP_HOST": "example.com"},
    ),
    (
        "absolute form sets the host",
        b"GET http://other.test:8080/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n",
        {"path": "/p", "query": "q=1", "env:HTTP_HOST": "other.test:8080"},
    ),
    (
        "absolute form without path",
        b"GET http://other.test HTTP/1.1\r\n\r\n",
        {"path": "/", "env:HTTP_HOST": "other.test"},
    ),
    (
        "asterisk form",
        f"OPTIONS * HTTP/1.1\r\n{H}\r\n".encode(),
        {"method": "OPTIONS", "path": "*"},
    ),
    (
        "fragment dropped",
        f"GET /p?q#frag HTTP/1.1\r\n{H}\r\n".encode(),
        {"path": "/p", "query": "q"},
    ),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: a\nX-A: 1\n\n", {"env:HTTP_X_A": "1"}),
    ("leading blank lines skipped", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", {"path": "/"}),
    (
        "http/1.0 closes by default",
        b"GET / HTTP/1.0\r\n\r\n",
        {"version": "HTTP/1.0", "keep_alive": False},
    ),
    (
        "http/1.0 keep-alive",
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        {"keep_alive": True},
    ),
    (
        "connection close",
        f"GET / HTTP/1.1\r\n{H}Connection: foo, close\r\n\r\n".encode(),
        {"keep_alive": False},
    ),
    (
        "value whitespace trimmed",
        f"GET / HTTP/1.1\r\n{H}X-Pad: \t a b \t\r\n\r\n".encode(),
        {"env:HTTP_X_PAD": "a b"},
    ),
    ("empty value", f"GET / HTTP/1.1\r\n{H}X-Empty:\r\n\r\n".encode(), {"env:HTTP_X_EMPTY": ""}),
    (
        "repeated headers joined",
        f"GET / HTTP/1.1\r\n{H}Accept: a\r\nAccept: b\r\n\r\n".encode(),
        {"env:HTTP_ACCEPT": "a, b"},
    ),
    (
        "repeated cookies joined with ;",
        f"GET / HTTP/1.1\r\n{H}Cookie: a=1\r\nCookie: b=2\r\n\r\n".encode(),
        {"env:HTTP_COOKIE": "a=1; b=2"},
    ),
    (
        "content type and length",
        f"POST / HTTP/1.1\r\n{H}Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n".encode(),
        {"content_length": 5, "env:CONTENT_TYPE": "text/plain", "env:CONTENT_LENGTH": "5"},
    ),
    (
        "chunked",
        f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: Chunked\r\n\r\n".encode(),
        {"chunked": True, "content_length": None},
    ),
    (
        "expect 100-continue",
        f"POST / HTTP/1.1\r\n{H}Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n".encode(),
        {"expect_continue": True},
    ),
    (
        "underscore header dropped",
        f"GET / HTTP/1.1\r\n{H}X_Forwarded_For: spoof\r\n\r\n".encode(),
        {"env:HTTP_X_FORWARDED_FOR": None},
    ),
    ("extension method", f"PROPFIND /dav HTTP/1.1\r\n{H}\r\n".encode(), {"method": "PROPFIND"}),
    # rejected heads
    ("missing version", b"GET /\r\nHost: a\r\n\r\n", 400),
    ("http/0.9 style", b"GET\r\n\r\n", 400),
    ("two spaces", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("lowercase version", b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("control in target", b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("relative target", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("http/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ("no host in 1.1", b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
    ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("space before colon", f"GET / HTTP/1.1\r\n{H}X-Bad : 1\r\n\r\n".encode(), 400),
    ("no colon", f"GET / HTTP/1.1\r\n{H}garbage\r\n\r\n".encode(), 400),
    ("empty name", f"GET / HTTP/1.1\r\n{H}: value\r\n\r\n".encode(), 400),
    ("bare CR in value", f"GET / HTTP/1.1\r\n{H}X-A: a\rb\r\n\r\n".encode(), 400),
    ("NUL in value", f"GET / HTTP/1.1\r\n{H}X-A: a\x00b\r\n\r\n".encode(), 400),
    ("fold before first header", b"GET / HTTP/1.1\r\n folded\r\nHost: a\r\n\r\n", 400),
    # Framing two parsers could read differently is refused (see test_framing_differential).
    (
        "obsolete folding",
        f"GET / HTTP/1.1\r\n{H}X-Long: one\r\n  two\r\n\tthree\r\n\r\n".encode(),
        400,
    ),
    (
        "same content-length twice",
        f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5\r\n\r\n".encode(),
        400,
    ),
    (
        "content-length list of equal values",
        f"POST / HTTP/1.1\r\n{H}Content-Length: 7, 7\r\n\r\n".encode(),
        400,
    ),
    ("mixed line ends", b"GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", 400),
    ("head ended by LF CRLF", b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    (
        "CL and TE together",
        f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n".encode(),
        400,
    ),
    (
        "differing content-lengths",
        f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\n".encode(),
        400,
    ),
    ("negative content-length", f"POST / HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n".encode(), 400),
    ("signed content-length", f"POST / HTTP/1.1\r\n{H}Content-Length: +5\r\n\r\n".encode(), 400),
    ("hex content-length", f"POST / HTTP/1.1\r\n{H}Content-Length: 0x5\r\n\r\n".encode(), 400),
    (
        "gzip transfer coding",
        f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: gzip, chunked\r\n\r\n".encode(),
        501,
    ),
    (
        "identity transfer coding",
        f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: identity\r\n\r\n".encode(),
        501,
    ),
    (
        "chunked twice",
        f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked, chunked\r\n\r\n".encode(),
        400,
    ),
    ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("unknown expectation", f"POST / HTTP/1.1\r\n{H}Expect: 200-ok\r\n\r\n".encode(), 417),
    ("request line over 8 KiB", b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (
        "header block over 64 KiB",
        f"GET / HTTP/1.1\r\n{H}".encode() + b"X-Big: " + b"b" * 66000 + b"\r\n\r\n",
        431,
    ),
    (
        "more than 100 headers",
        f"GET / HTTP/1.1\r\n{H}".encode()
        + b"".join(b"X-%d: v\r\n" % i for i in range(101))
        + b"\r\n",
        431,
    ),
]


def check(head: RequestHead, expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if key.startswith("env:"):
            assert head.environ.get(key[4:]) == value, key
        else:
            assert getattr(head, key) == value, key


def feed_whole(raw: bytes) -> RequestHead | None:
    head, _ = read_head(bytearray(raw))
    return head


def feed_bytewise(raw: bytes) -> RequestHead | None:
    buffer = bytearray()
    scan = 0
    for index in range(len(raw)):
        buffer.append(raw[index])
        head, scan = read_head(buffer, scan)
        if head is not None:
            assert index == len(raw) - 1, "head complete before its blank line"
            return head
    return None


@pytest.mark.parametrize("feed", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])
@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_head_table(feed: Any, raw: bytes, expected: Any) -> None:
    if isinstance(expected, int):
        with pytest.raises(HTTPError) as caught:
            feed(raw)
        assert caught.value.status == expected
    else:
        head = feed(raw)
        assert head is not None
        check(head, expected)


def test_oversized_heads_are_refused_before_they_complete() -> None:
    with pytest.raises(HTTPError) as caught:
        read_head(bytearray(b"GET /" + b"a" * 9000))
    assert caught.value.status == 414
    with pytest.raises(HTTPError) as caught:
        read_head(bytearray(b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 70000))
    assert caught.value.status == 431


def test_pipelined_heads_come_out_one_at_a_time() -> None:
    buffer = bytearray(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HT"
    )
    first, scan = read_head(buffer)
    second, scan = read_head(buffer, scan)
    third, scan = read_head(buffer, scan)
    assert (first and first.path, second and second.path, third) == ("/1", "/2", None)
    assert buffer == b"GET /3 HT"


def test_headers_keep_their_original_spelling_and_order() -> None:
    head = feed_whole(b"GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nx-one: 2\r\n\r\n")
    assert head is not None
    assert head.headers == (("Host", "a"), ("X-One", "1"), ("x-one", "2"))
    assert head.environ["HTTP_X_ONE"] == "1, 2"


# -- hypothesis: malformed heads ---------------------------------------------------------------

head_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                b"GET",
                b" ",
                b"/",
                b"HTTP/1.1",
                b"HTTP/1.0",
                b"\r\n",
                b"\n",
                b"\r",
                b":",
                b"Host",
                b"Content-Length",
                b"Transfer-Encoding",
                b"chunked",
                b"\t",
                b"\x00",
                b"%",
                b"0",
                b"-5",
                b"\xff",
                b"Expect",
                b"100-continue",
                b"http://",
                b"*",
                b"?",
                b"#",
            ]
        ),
        max_size=40,
    ).map(b"".join),
)


@settings(max_examples=400, deadline=None)
@given(raw=head_bytes)
def test_parser_only_ever_raises_http_errors(raw: bytes) -> None:
    for feed in (feed_whole, feed_bytewise):
        try:
            feed(raw + b"\r\n\r\n")
        except HTTPError as error:
            assert 400 <= error.status < 600


@pytest.fixture(scope="module")
def fuzz_server() -> Any:
    with running(hello, "threaded", request_head_timeout=0.5, keep_alive_timeout=0.5) as server:
        yield server


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=head_bytes)
def test_malformed_heads_never_crash_the_server(fuzz_server: Any, raw: bytes) -> None:
    with Client.connect(fuzz_server, timeout=3) as client:
        client.send(raw + b"\r\n\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        answer = client.read_to_eof()
    if answer:
        assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    with Client.connect(fuzz_server) as client:
        assert client.get("/").status == 200


# -- request bodies: the chunked decoder and Content-Length framing ---------------------------


class ScriptedSocket:
    """Stands in for a client socket: ``recv`` hands out ``data`` ``step`` bytes at a time."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.step = step
        self.sent = b""

    def recv(self, size: int) -> bytes:
        block, self.data = self.data[: min(size, self.step)], self.data[min(size, self.step) :]
        return block

    def send(self, data: bytes) -> int:
        self.sent += bytes(data)
        return len(data)


def read_body(
    data: bytes, step: int, *, length: int | None = None, expect: bool = False
) -> tuple[bytes, bytes, ScriptedSocket]:
    """Decode ``data`` as a body (chunked unless ``length``); return body, leftover, socket."""
    from wsgidev._http.body import RequestBody

    sock = ScriptedSocket(data, step)
    buffer = bytearray()
    body = RequestBody(sock, buffer, length, length is None, expect, 1.0)  # type: ignore[arg-type]
    out = body.read()
    assert body.complete
    return out, bytes(buffer) + sock.data, sock


CHUNKED: list[tuple[str, bytes, bytes | int]] = [
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("several chunks", b"3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", b"abcd"),
    ("uppercase hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    ("leading zeros", b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
    ("extensions ignored", b"5;name=value;x\r\nhello\r\n0;end\r\n\r\n", b"hello"),
    ("trailers dropped", b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", b"hello"),
    ("empty body", b"0\r\n\r\n", b""),
    ("binary data with CRLF inside", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n"),
    ("not hex", b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    # Framing two parsers could read differently (see test_framing_differential).
    ("whitespace before extension", b"5 \t;x=1\r\nhello\r\n0\r\n\r\n", 400),
    ("whitespace after size", b"5 \r\nhello\r\n0\r\n\r\n", 400),
    ("bare LF", b"5\nhello\n0\n\n", 400),
    ("bare CR in extension", b"5;a\rb\r\nhello\r\n0\r\n\r\n", 400),
    ("plus sign", b"+5\r\nhello\r\n0\r\n\r\n", 400),
    ("minus sign", b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("underscore", b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", 400),
    ("leading space", b" 5\r\nhello\r\n0\r\n\r\n", 400),
    ("empty size", b"\r\nhello\r\n0\r\n\r\n", 400),
    ("too many digits", b"1" + b"0" * 16 + b"\r\n", 400),
    ("data longer than size", b"3\r\nhello\r\n0\r\n\r\n", 400),
    ("size line too long", b"5;" + b"x" * 5000 + b"\r\nhello\r\n0\r\n\r\n", 400),
]


@pytest.mark.parametrize("step", [65536, 1], ids=["whole", "bytewise"])
@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in CHUNKED], ids=[c[0] for c in CHUNKED]
)
def test_chunked_body_table(step: int, data: bytes, expected: bytes | int) -> None:
    if isinstance(expected, int):
        with pytest.raises(HTTPError) as caught:
            read_body(data, step)
        assert caught.value.status == expected
    else:
        body, leftover, _ = read_body(data + b"GET /next", step)
        assert (body, leftover) == (expected, b"GET /next")


def spool_body(data: bytes, step: int) -> tuple[bytes, bytes]:
    """Feed ``data`` to the base server's body spool ``step`` bytes at a time, as the I/O loop
    does after each receive; return the body and what is left for the next request."""
    from wsgidev._http.spool import BodyReceiver

    receiver = BodyReceiver(None, True, None, 1 << 20)
    buffer = bytearray()
    try:
        for start in range(0, len(data), step):
            buffer += data[start : start + step]
            if receiver.feed(buffer):
                body = receiver.body()
                try:
                    return body.read(), bytes(buffer) + data[start + step :]
                finally:
                    body.release()
    finally:
        receiver.close()
    raise AssertionError("the spool never saw the end of the body")


@pytest.mark.parametrize("step", [65536, 1], ids=["whole", "bytewise"])
@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in CHUNKED], ids=[c[0] for c in CHUNKED]
)
def test_the_body_spool_decodes_chunks_by_the_same_rules(
    step: int, data: bytes, expected: bytes | int
) -> None:
    # A body the base server receives ahead of the app must end where wsgi.input would end it.
    if isinstance(expected, int):
        with pytest.raises(HTTPError) as caught:
            spool_body(data, step)
        assert caught.value.status == expected
    else:
        assert spool_body(data + b"GET /next", step) == (expected, b"GET /next")


@pytest.mark.parametrize("step", [65536, 1], ids=["whole", "bytewise"])
def test_content_length_body_stops_at_its_end(step: int) -> None:
    body, leftover, _ = read_body(b"hello worldGET /next", step, length=11)
    assert (body, leftover) == (b"hello world", b"GET /next")


@pytest.mark.parametrize("data", [b"5\r\nhel", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\nX: y"])
def test_a_body_cut_short_is_a_disconnect(data: bytes) -> None:
    from wsgidev._http.head import ClientDisconnected

    with pytest.raises(ClientDisconnected):
        read_body(data, 3)
    with pytest.raises(ClientDisconnected):
        read_body(b"abc", 1, length=10)


def test_100_continue_goes_out_before_the_first_read_only() -> None:
    from wsgidev._http.body import CONTINUE, RequestBody

    sock = ScriptedSocket(b"body", 65536)
    body = RequestBody(sock, bytearray(), 4, False, True, 1.0)  # type: ignore[arg-type]
    assert sock.sent == b""
    assert body.read(0) == b"" and sock.sent == b""
    assert body.read() == b"body"
    assert sock.sent == CONTINUE
    body.read()
    assert sock.sent == CONTINUE


def test_readline_and_iteration_over_a_chunked_body() -> None:
    from wsgidev._http.body import RequestBody

    sock = ScriptedSocket(b"4\r\na\nbb\r\n3\r\n\nc\n\r\n1\r\nd\r\n0\r\n\r\n", 2)
    body = RequestBody(sock, bytearray(), None, True, False, 1.0)  # type: ignore[arg-type]
    assert body.readline(1) == b"a"
    assert body.readline() == b"\n"
    assert list(body) == [b"bb\n", b"c\n", b"d"]
    assert body.readline() == b""


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


@pytest.fixture(scope="module", params=["base", "threaded"])
def echo_server(request: pytest.FixtureRequest) -> Any:
    # base: the loop receives the body ahead of the app; threaded: the app streams it.
    with running(echo, request.param) as server:
        yield server


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=1, max_value=700), max_size=12),
)
def test_any_chunking_of_a_body_round_trips(echo_server: Any, body: bytes, cuts: list[int]) -> None:
    chunks, rest = [], body
    for size in cuts:
        if not rest:
            break
        chunks.append(rest[:size])
        rest = rest[size:]
    if rest:
        chunks.append(rest)
    wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    with Client.connect(echo_server) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + wire)
        reply = client.reply()
        assert reply.body == body
        assert client.get("/").status == 200  # the framing ended exactly where it should
