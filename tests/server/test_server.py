"""The server over real sockets: persistent connections in every mode, pipelining, bodies,
response framing, the environ. Each test starts make_server(...) on 127.0.0.1 port 0."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import threading
import time
from typing import Any

import pytest

from tests.serverkit import MODES, Client, hello, running


def environ_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with the environ's str/bool/tuple values as JSON, plus the serving pid."""
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or 0.5))
    data = {k: v for k, v in environ.items() if isinstance(v, (str, bool, tuple))}
    data["pid"] = os.getpid()
    data["thread"] = threading.get_ident()
    body = json.dumps(data).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Reads the body as the query says (all, lines, N bytes, or not at all) and echoes it."""
    stream = environ["wsgi.input"]
    how = environ["QUERY_STRING"]
    if how == "lines":
        body = b"|".join(stream)
    elif how == "none":
        body = b"unread"
    elif how.isdigit():
        body = stream.read(int(how))
    elif how == "into":
        target = bytearray(5)
        parts = []
        while count := stream.readinto(target):
            parts.append(bytes(target[:count]))
        body = b",".join(parts)
    else:
        body = stream.read()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("X-Terminated", str(environ["wsgi.input_terminated"]))],
    )
    return [body]


# -- persistent connections ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_keep_alive_in_every_mode(mode: str) -> None:
    with running(environ_app, mode) as server, Client.connect(server) as client:
        first = client.get("/one")
        second = client.get("/two")
        assert first.status == second.status == 200
        assert first.header("Connection") is None
        assert json.loads(first.body)["REMOTE_PORT"] == json.loads(second.body)["REMOTE_PORT"]
        assert not client.is_closed(0.2)


def test_an_idle_keep_alive_client_does_not_block_another_in_base_mode() -> None:
    with running(hello, "base") as server, Client.connect(server) as idle:
        assert idle.get("/").status == 200  # idle now holds a persistent connection
        with Client.connect(server, timeout=2) as other:
            started = time.monotonic()
            assert other.get("/").status == 200
            assert time.monotonic() - started < 1.0
        assert idle.get("/").status == 200  # and it is still usable


def test_a_half_sent_head_does_not_block_another_client_in_base_mode() -> None:
    with running(hello, "base") as server, Client.connect(server) as slow:
        slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        with Client.connect(server, timeout=2) as other:
            assert other.get("/").status == 200


def test_a_slow_client_does_not_pin_the_only_worker() -> None:
    with running(hello, "threaded", max_threads=1) as server, Client.connect(server) as slow:
        slow.send(b"GET / HTTP/1.1\r\nHo")
        with Client.connect(server, timeout=2) as other:
            assert other.get("/").status == 200


@pytest.mark.parametrize(("mode", "options"), [("base", {}), ("threaded", {"max_threads": 1})])
def test_a_slow_upload_does_not_block_other_clients(mode: str, options: dict[str, Any]) -> None:
    with running(echo_app, mode, **options) as server, Client.connect(server) as slow:
        slow.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123")
        time.sleep(0.1)
        with Client.connect(server, timeout=2) as other:
            started = time.monotonic()
            assert other.get("/?none").status == 200
            assert time.monotonic() - started < 1.0
        slow.send(b"4567890")
        assert slow.reply().body == b"1234567890"


# A worker that has just answered on a kept-alive connection waits a moment for the client's
# next request (KEEP_ALIVE_WINDOW) and serves it without the loop; these are the limits of that.


@pytest.mark.parametrize("body", [b"123", b""], ids=["partial-body", "head-only"])
def test_an_upload_right_after_a_response_is_received_by_the_loop_not_a_worker(
    body: bytes,
) -> None:
    with (
        running(echo_app, "threaded", max_threads=1) as server,
        Client.connect(server) as uploader,
        Client.connect(server, timeout=2) as other,
    ):
        assert uploader.get("/?none").status == 200
        # At once, as a browser would: the head of an upload, then a stall.
        uploader.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n" + body)
        for _ in range(3):  # the only thread stays free for everyone else
            started = time.monotonic()
            assert other.get("/?none").status == 200
            assert time.monotonic() - started < 1.0
        uploader.send(b"1234567890"[len(body) :])
        assert uploader.reply().body == b"1234567890"
        assert uploader.get("/?none").status == 200


def test_a_bad_or_partial_head_right_after_a_response_is_handled_by_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running(hello, "threaded", max_threads=1) as server:
        with Client.connect(server) as client:
            assert client.get("/").status == 200
            client.send(b"GET /next HT")  # the rest comes later than any short wait
            time.sleep(0.05)
            client.send(b"TP/1.1\r\nHost: x\r\n\r\n")
            assert client.reply().status == 200
        with Client.connect(server) as client:
            assert client.get("/").status == 200
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
            assert client.reply().status == 400
            assert client.is_closed()
    assert any(
        "400" in r.getMessage() and "malformed header line" in r.getMessage()
        for r in caplog.records
    )


def test_a_request_that_arrived_during_the_last_one_is_served_by_the_same_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wsgidev._server.loop import ConnectionLoop

    dispatched: list[str] = []
    original = ConnectionLoop.dispatch

    def counting(self: ConnectionLoop, conn: Any, head: Any) -> None:
        dispatched.append(head.path)
        original(self, conn, head)

    monkeypatch.setattr(ConnectionLoop, "dispatch", counting)
    second_sent = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/first":
            assert second_sent.wait(5)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with running(app, "threaded") as server, Client.connect(server) as client:
        client.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while not dispatched and time.monotonic() < deadline:
            time.sleep(0.001)  # until the loop has read /first (alone) and handed it over
        client.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        second_sent.set()
        assert client.reply().status == 200
        assert client.reply().status == 200
        assert client.get("/third").status == 200
    assert dispatched[:1] == ["/first"]
    assert "/second" not in dispatched  # read and served by the worker that answered /first


@pytest.mark.parametrize(
    ("head", "sent"),
    [
        ("Transfer-Encoding: chunked", b"5\r\nhel"),
        ("Content-Length: 10000000", b"0123456789"),
    ],
    ids=["chunked", "content-length"],
)
def test_a_stalled_upload_of_any_size_does_not_block_others_in_base_mode(
    head: str, sent: bytes
) -> None:
    with running(echo_app, "base") as server, Client.connect(server) as stalled:
        stalled.send(f"POST / HTTP/1.1\r\nHost: x\r\n{head}\r\n\r\n".encode() + sent)
        time.sleep(0.1)
        for _ in range(3):
            with Client.connect(server, timeout=2) as other:
                started = time.monotonic()
                assert other.get("/?none").status == 200
                assert time.monotonic() - started < 1.0
        if head.endswith("chunked"):
            stalled.send(b"lo\r\n0\r\n\r\n")
            assert stalled.reply().body == b"hello"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_body_is_received_whole_before_the_app_runs_in_base_mode(chunked: bool) -> None:
    payload = os.urandom(3 * 1024 * 1024)  # past the in-memory part of the spool
    pieces = [payload[i : i + 100_000] for i in range(0, len(payload), 100_000)]
    if chunked:
        head = b"Transfer-Encoding: chunked"
        data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        head, data = b"Content-Length: %d" % len(payload), payload
    with running(echo_app, "base") as server, Client.connect(server, timeout=10) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\n" + data[:5000])
        with Client.connect(server, timeout=2) as other:
            assert other.get("/?none").status == 200  # served while the upload is incomplete
        client.send(data[5000:] + b"GET /?none HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = client.reply()
        assert (reply.status, len(reply.body), reply.body == payload) == (200, len(payload), True)
        assert reply.header("X-Terminated") == "True"
        assert client.reply().body == b"unread"  # the pipelined request after it is intact


@pytest.mark.parametrize(
    ("head", "body"),
    [
        ("Content-Length: 1001", b""),
        ("Content-Length: 1001\r\nExpect: 100-continue", b""),
        ("Transfer-Encoding: chunked", b"3e8\r\n" + b"x" * 1000 + b"\r\n1\r\n"),
    ],
    ids=["content-length", "expect-100", "chunked"],
)
def test_a_body_over_max_body_size_gets_413_in_base_mode(head: str, body: bytes) -> None:
    with running(echo_app, "base", max_body_size=1000) as server:
        with Client.connect(server) as client:
            client.send(f"POST / HTTP/1.1\r\nHost: x\r\n{head}\r\n\r\n".encode() + body)
            reply = client.reply()
            assert reply.status == 413  # and never a 100 Continue first
            assert reply.header("Connection") == "close"
            assert client.is_closed()
        with Client.connect(server) as client:
            client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"y" * 1000)
            assert client.reply().body == b"y" * 1000  # the limit itself is allowed


def test_a_slow_but_steady_upload_outlasts_the_body_timeout() -> None:
    # The body timeout is the longest silence allowed, not a limit on the whole upload.
    with running(echo_app, body_timeout=0.5) as server, Client.connect(server) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):
            time.sleep(0.2)
            client.send(b"2\r\nab\r\n")
        client.send(b"0\r\n\r\n")
        assert client.reply().body == b"ab" * 6


@pytest.mark.parametrize(
    "start",
    [b"Content-Length: 10\r\n\r\n123", b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel"],
    ids=["content-length", "chunked"],
)
def test_a_body_that_never_arrives_gets_408(start: bytes) -> None:
    with running(echo_app, body_timeout=0.3) as server, Client.connect(server) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\n" + start)
        reply = client.reply()
        assert reply.status == 408
        assert (reply.header("Server") or "").startswith("wsgidev/")
        assert client.is_closed()


@pytest.mark.parametrize("mode", MODES)
def test_pipelined_requests_are_answered_in_order(mode: str) -> None:
    with running(environ_app, mode) as server, Client.connect(server) as client:
        client.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
        paths = [json.loads(client.reply().body)["PATH_INFO"] for _ in range(5)]
        assert paths == ["/0", "/1", "/2", "/3", "/4"]


def test_pipelined_request_after_a_body_is_not_misparsed() -> None:
    with running(echo_app, "threaded") as server, Client.connect(server) as client:
        client.send(
            b"POST /?none HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nGET /evil"
            b"POST /?all HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
        )
        assert client.reply().body == b"unread"
        assert client.reply().body == b"ok"


@pytest.mark.parametrize("mode", MODES)
def test_connection_close_is_honoured(mode: str) -> None:
    with running(hello, mode) as server, Client.connect(server) as client:
        reply = client.get("/", headers="Connection: close\r\n")
        assert reply.status == 200
        assert reply.header("Connection") == "close"
        assert client.is_closed()


def test_http_10_closes_unless_it_asks_for_keep_alive() -> None:
    with running(hello) as server:
        with Client.connect(server) as client:
            reply = client.get("/", version="HTTP/1.0")
            assert reply.body == b"Hello, World!"
            assert client.is_closed()
        with Client.connect(server) as client:
            reply = client.get("/", version="HTTP/1.0", headers="Connection: keep-alive\r\n")
            assert reply.header("Connection") == "keep-alive"
            assert (
                client.get("/", version="HTTP/1.0", headers="Connection: keep-alive\r\n").status
                == 200
            )


def test_idle_connections_time_out() -> None:
    with running(hello, keep_alive_timeout=0.3) as server, Client.connect(server) as client:
        assert client.get("/").status == 200
        assert client.is_closed(timeout=3)


def test_a_head_that_never_completes_gets_408() -> None:
    with running(hello, request_head_timeout=0.3) as server, Client.connect(server) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert client.reply().status == 408
        assert client.is_closed()


def test_a_request_sent_one_byte_at_a_time_is_served() -> None:
    with running(environ_app) as server, Client.connect(server) as client:
        for byte in b"GET /slowly?x=1 HTTP/1.1\r\nHost: x\r\nX-Long: a b\r\n\r\n":
            client.send(bytes([byte]))
        body = json.loads(client.reply().body)
        assert (body["PATH_INFO"], body["QUERY_STRING"], body["HTTP_X_LONG"]) == (
            "/slowly",
            "x=1",
            "a b",
        )


# -- request bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_content_length_body(mode: str) -> None:
    payload = os.urandom(300_000)
    with running(echo_app, mode) as server, Client.connect(server) as client:
        client.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
        )
        reply = client.reply()
        assert reply.body == payload
        assert reply.header("X-Terminated") == "True"
        assert client.get("/").status == 200


@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_chunked_body_is_decoded(mode: str) -> None:
    with running(echo_app, mode) as server, Client.connect(server) as client:
        client.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        assert client.reply().body == b"hello world!"
        assert client.get("/").status == 200


def test_a_decoded_chunked_body_keeps_its_transfer_encoding_in_the_environ() -> None:
    """Werkzeug's server keeps HTTP_TRANSFER_ENCODING; its request objects and apps read it."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        seen = f"{environ.get('HTTP_TRANSFER_ENCODING')}|{environ['wsgi.input_terminated']}|"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [seen.encode() + body]

    with running(app, "threaded") as server, Client.connect(server) as client:
        client.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n"
        )
        assert client.reply().body == b"chunked|True|hello"
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        assert client.reply().body == b"None|True|hi"  # the control: none was sent, none shown


@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_body_read_line_by_line_and_in_pieces(mode: str) -> None:
    with running(echo_app, mode) as server, Client.connect(server) as client:
        client.send(b"POST /?lines HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\na\nbb\nccc\ndd")
        assert client.reply().body == b"a\n|bb\n|ccc\n|dd"
        client.send(
            b"POST /?4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
        )
        assert client.reply().body == b"abcd"
        client.send(b"POST /?into HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nhello world!")
        assert client.reply().body == b"hello, worl,d!"


@pytest.mark.parametrize(
    "bad_chunk",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"-1\r\n",
    ],
)
@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_bad_chunk_framing_gets_400_and_the_server_keeps_serving(
    mode: str, bad_chunk: bytes
) -> None:
    with running(echo_app, mode) as server:
        with Client.connect(server) as client:
            client.send(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + bad_chunk
            )
            assert client.reply().status == 400
            assert client.is_closed()
        with Client.connect(server) as client:
            assert client.get("/?none").status == 200


@pytest.mark.parametrize("mode", MODES)
def test_expect_100_continue_is_answered_by_the_server_before_the_app_sees_the_request(
    mode: str,
) -> None:
    with running(echo_app, mode, body_timeout=0.5, max_body_size=1000) as server:
        with Client.connect(server) as client:
            client.send(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
            )
            assert client.reply().status == 100
            client.send(b"body")
            assert client.reply().body == b"body"
        # A body the server would refuse is refused from the head: no 100, so none is sent.
        with Client.connect(server) as client:
            client.send(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
            )
            reply = client.reply()
            assert reply.status == 413 and client.is_closed()
        # A client that never sends the body it announced holds nobody: others are served,
        # and it gets 408 once the body is overdue.
        with Client.connect(server) as stalled, Client.connect(server) as other:
            stalled.send(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
            )
            assert stalled.reply().status == 100
            assert other.get("/?none").status == 200
            assert stalled.reply().status == 408


STALLED_UPLOADS = [
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nxx",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 300_000,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
]


@pytest.mark.parametrize("mode", MODES)
def test_stalled_uploads_hold_no_worker(mode: str) -> None:
    """Uploads that stop halfway wait in the loop, not in a worker: with every worker slot
    covered twice over by stalled clients, a plain request is still answered at once."""
    with running(echo_app, mode, max_threads=4) as server:
        stalled = [Client.connect(server) for _ in range(8) for _ in STALLED_UPLOADS]
        try:
            for index, client in enumerate(stalled):
                client.send(STALLED_UPLOADS[index % len(STALLED_UPLOADS)])
            with Client.connect(server, timeout=3) as other:
                assert other.get("/?none").status == 200  # 30 s (body_timeout) before
        finally:
            for client in stalled:
                client.sock.close()


@pytest.mark.parametrize("mode", MODES)
def test_each_request_on_a_kept_connection_reads_its_own_body(mode: str) -> None:
    """A body received ahead is the request's alone: the next request on the connection (in a
    forked child too) never sees the previous one's."""
    big = os.urandom(400_000)  # over the read-ahead size: received through the spool
    with running(echo_app, mode) as server, Client.connect(server, timeout=20) as client:
        for body in (big, b"small", big[:1000], b"last"):
            client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            client.send(body)
            assert client.reply().body == body


def test_a_trickled_upload_gets_408_at_the_overall_body_deadline() -> None:
    """A byte now and then resets the pause timeout, never the deadline for the whole body."""
    options = {"body_timeout": 5.0, "body_total_timeout": 1.0}
    with running(echo_app, "threaded", **options) as server, Client.connect(server) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        started = time.monotonic()
        answered = None
        while time.monotonic() - started < 4 and answered is None:
            try:
                client.send(b"x")
            except OSError:  # the server answered and closed
                break
            ready, _, _ = select.select([client.sock], [], [], 0.2)
            if ready:
                answered = client.reply().status
        if answered is None:
            answered = client.reply().status
        assert answered == 408
        assert time.monotonic() - started < 3


def test_a_large_body_the_app_leaves_unread_keeps_the_connection() -> None:
    # The body was received whole before the app ran, so nothing is left on the connection.
    with running(echo_app, "threaded") as server, Client.connect(server, timeout=20) as client:
        client.send(
            b"POST /?none HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n" + b"x" * 3_000_000
        )
        reply = client.reply()
        assert reply.body == b"unread" and reply.header("Connection") != "close"
        assert client.get("/?none").status == 200


# -- responses -------------------------------------------------------------------------------


def streaming_app(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain")])

    def blocks() -> Any:
        yield b"one "
        yield b""
        yield b"two "
        if environ["PATH_INFO"] == "/fail":
            raise RuntimeError("failed while streaming")
        yield b"three"

    return blocks()


def test_a_response_without_length_is_chunked_for_http_11() -> None:
    with running(streaming_app) as server, Client.connect(server) as client:
        reply = client.get("/")
        assert reply.header("Transfer-Encoding") == "chunked"
        assert (reply.body, reply.complete) == (b"one two three", True)
        assert client.get("/").status == 200


def test_a_response_without_length_is_close_delimited_for_http_10() -> None:
    with running(streaming_app) as server, Client.connect(server) as client:
        reply = client.get("/", version="HTTP/1.0", headers="Connection: keep-alive\r\n")
        assert reply.header("Transfer-Encoding") is None
        assert reply.header("Connection") == "close"
        assert reply.body == b"one two three"


def test_an_error_mid_stream_truncates_without_the_last_chunk(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running(streaming_app) as server, Client.connect(server) as client:
        reply = client.get("/fail")
        assert reply.status == 200
        assert reply.complete is False
        assert reply.body == b"one two "
    assert "failed while streaming" in caplog.text
    assert "after the response started" in caplog.text


def test_list_bodies_get_a_content_length() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"a", b"bc", b""]

    with running(app) as server, Client.connect(server) as client:
        reply = client.get("/")
        assert (reply.header("Content-Length"), reply.body) == ("3", b"abc")


@pytest.mark.parametrize("app", [hello, streaming_app])
def test_head_sends_headers_only(app: Any) -> None:
    with running(app) as server, Client.connect(server) as client:
        reply = client.get("/", method="HEAD")
        assert reply.status == 200
        assert client.get("/", method="HEAD").status == 200  # nothing stray between the two
        assert client.get("/").status == 200


@pytest.mark.parametrize("app_headers", [[], [("Content-Length", "7")]])
def test_no_body_and_no_length_for_1xx_204_and_304(app_headers: list[tuple[str, str]]) -> None:
    # RFC 9110 8.6 and 15.3.5: no Content-Length (nor body) on these, even when the app set one.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        status = environ["QUERY_STRING"]
        start_response(f"{status} Status", [] if status == "200" else list(app_headers))
        return [b"ignored"]

    with running(app) as server, Client.connect(server) as client:
        for status in (103, 204, 304):
            reply = client.get(f"/?{status}", method="HEAD" if status == 103 else "GET")
            assert reply.status == status
            assert (
                reply.header("Content-Length") is None and reply.header("Transfer-Encoding") is None
            )
        assert client.get("/?200").body == b"ignored"  # nothing stray was sent before it


def test_head_gets_the_headers_get_gets_for_the_servers_own_500() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    with running(app) as server, Client.connect(server) as client:
        got = client.get("/")
        head = client.get("/", method="HEAD")
        assert got.status == head.status == 500
        assert head.header("Content-Length") == got.header("Content-Length") == str(len(got.body))
        assert head.header("Content-Type") == got.header("Content-Type")
        assert client.get("/").status == 500  # HEAD sent no body that would be misread


def test_server_and_date_headers() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [("Date", "Thu, 01 Jan 1970 00:00:00 GMT")] if environ["QUERY_STRING"] else []
        start_response("200 OK", headers)
        return [b"x"]

    with running(app) as server, Client.connect(server) as client:
        reply = client.get("/")
        assert (reply.header("Server") or "").startswith("wsgidev/")
        assert re.fullmatch(
            r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", reply.header("Date") or ""
        )
        assert client.get("/?own").all("Date") == ["Thu, 01 Jan 1970 00:00:00 GMT"]


@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_file_wrapper_is_sent_with_sendfile(
    mode: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wsgidev._http.io as http_io

    payload = os.urandom(3_000_000)
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    calls: list[int] = []
    real_sendfile = os.sendfile

    def counting_sendfile(*args: Any) -> int:
        calls.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(http_io.os, "sendfile", counting_sendfile)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        handle = open(path, "rb")  # noqa: SIM115 - the wrapper closes it
        handle.seek(int(environ["QUERY_STRING"] or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](handle)

    with running(app, mode) as server, Client.connect(server) as client:
        reply = client.get("/")
        assert reply.header("Content-Length") == str(len(payload))
        assert reply.body == payload
        assert calls
        assert client.get("/?1000").body == payload[1000:]
        assert client.get("/", method="HEAD").header("Content-Length") == str(len(payload))


def test_close_is_always_called() -> None:
    closed: list[str] = []

    class Body:
        def __init__(self, path: str) -> None:
            self.path = path

        def __iter__(self) -> Any:
            yield b"x" * 100
            if self.path == "/fail":
                raise RuntimeError("iteration failed")
            if self.path == "/big":
                for _ in range(2000):
                    yield b"y" * 65536

        def close(self) -> None:
            closed.append(self.path)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body(environ["PATH_INFO"])

    with running(app, "threaded") as server:
        with Client.connect(server) as client:
            client.get("/ok")
            client.get("/fail")
        with Client.connect(server) as client:
            client.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            client.read_until(b"\r\n\r\n")
            client.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        deadline = time.monotonic() + 5
        while len(closed) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert sorted(closed) == ["/big", "/fail", "/ok"]


# -- the environ -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_environ_is_pep_3333_exact(mode: str) -> None:
    with running(environ_app, mode) as server, Client.connect(server) as client:
        env = json.loads(
            client.get("/caf%C3%A9/%2e?q=%C3%A9&x", headers="Content-Type: text/x\r\n").body
        )
        local_port = client.sock.getsockname()[1]
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/."
    assert env["QUERY_STRING"] == "q=%C3%A9&x"
    assert env["REQUEST_URI"] == env["RAW_URI"] == "/caf%C3%A9/%2e?q=%C3%A9&x"
    assert env["SCRIPT_NAME"] == ""
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(server.port))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(local_port))
    assert env["CONTENT_TYPE"] == "text/x" and "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_HOST"] == "test"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multithread"] is (mode == "threaded")
    assert env["wsgi.multiprocess"] is (mode == "forking")
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    if mode == "forking":
        assert env["pid"] != os.getpid()


def test_a_double_slash_path_is_a_path() -> None:
    with running(environ_app) as server, Client.connect(server) as client:
        env = json.loads(client.get("//example.com/x").body)
    assert (env["PATH_INFO"], env["HTTP_HOST"]) == ("//example.com/x", "test")


def test_forking_mode_serves_in_children_and_keeps_connections() -> None:
    with running(environ_app, "forking") as server:
        clients = [Client.connect(server) for _ in range(3)]
        try:
            pids = {json.loads(c.get("/sleep?0.3").body)["pid"] for c in clients}
            again = json.loads(clients[0].get("/").body)
        finally:
            for c in clients:
                c.close()
    assert os.getpid() not in pids
    assert again["pid"] != os.getpid()


def test_forking_mode_runs_requests_in_parallel() -> None:
    with running(environ_app, "forking") as server:
        clients = [Client.connect(server) for _ in range(3)]
        started = time.monotonic()
        for c in clients:
            c.send(b"GET /sleep?0.6 HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in clients:
            assert c.reply().status == 200
            c.close()
        assert time.monotonic() - started < 1.5


def test_threaded_mode_runs_requests_in_parallel() -> None:
    with running(environ_app, "threaded") as server:
        clients = [Client.connect(server) for _ in range(4)]
        started = time.monotonic()
        for c in clients:
            c.send(b"GET /sleep?0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        threads = {json.loads(c.reply().body)["thread"] for c in clients}
        assert time.monotonic() - started < 1.5
        assert len(threads) == 4
        for c in clients:
            c.close()


# -- framing headers set by the app (PEP 3333: hop-by-hop headers are the server's) ---------


def framing_app(environ: dict[str, Any], start_response: Any) -> Any:
    """Sets the framing headers the query names: te, te-gzip, te-cl, cl-cl, cl-same, pre, cut."""
    case = environ["QUERY_STRING"]
    headers, body = {
        "te": ([("Transfer-Encoding", "chunked")], [b"hello"]),
        "te-gzip": ([("Transfer-Encoding", "gzip")], [b"hello"]),
        "te-empty": ([("Transfer-Encoding", "chunked")], []),
        "te-cl": ([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], [b"hello"]),
        "cl-cl": ([("Content-Length", "5"), ("Content-Length", "6")], [b"hello"]),
        "cl-same": ([("Content-Length", "5"), ("Content-Length", "5")], [b"hello"]),
        # An app written for Werkzeug that chunk-encodes its own body, framing split anywhere.
        "pre": (
            [("Transfer-Encoding", "chunked")],
            [b"3\r", b"\nab", b"c\r\n2;x=y\r\nde\r\n0\r\n", b"\r\n"],
        ),
        "cut": ([("Transfer-Encoding", "chunked")], [b"3\r\nabc\r\n"]),
    }[case]
    start_response("200 OK", headers)
    return iter(body)


@pytest.mark.parametrize("case", ["te", "te-gzip", "te-empty", "te-cl", "cl-cl"])
@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_framing_headers_the_app_cannot_honour_are_a_500_naming_them(
    mode: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    with running(framing_app, mode) as server, Client.connect(server, timeout=2) as client:
        reply = client.get(f"/?{case}")
        assert reply.status == 500
        assert reply.header("Content-Length") == str(len(reply.body))
        assert reply.header("Transfer-Encoding") is None
        assert client.get("/?cl-same").status == 200  # the connection is still in step
    name = "Content-Length" if case == "cl-cl" else "Transfer-Encoding"
    assert re.search(rf"Error on request .*ValueError: .*{name}", caplog.text, re.S)


def test_duplicate_equal_content_lengths_are_sent_once() -> None:
    with running(framing_app) as server, Client.connect(server) as client:
        reply = client.get("/?cl-same")
        assert (reply.status, reply.body, reply.all("Content-Length")) == (200, b"hello", ["5"])


def test_a_body_the_app_chunked_itself_is_reframed_by_the_server() -> None:
    # Werkzeug passes such bodies through; here they are decoded and framed again, so the
    # framing is always right: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
    with running(framing_app) as server:
        with Client.connect(server) as client:
            reply = client.get("/?pre")
            assert (reply.status, reply.body, reply.complete) == (200, b"abcde", True)
            assert reply.all("Transfer-Encoding") == ["chunked"]
            assert client.get("/?pre").body == b"abcde"  # the connection stays usable
        with Client.connect(server) as client:
            reply = client.get("/?pre", version="HTTP/1.0")
            assert reply.header("Transfer-Encoding") is None
            assert reply.body == b"abcde"
            assert client.is_closed()


def test_a_self_chunked_body_without_its_last_chunk_is_a_truncated_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running(framing_app) as server, Client.connect(server) as client:
        reply = client.get("/?cut")
        assert (reply.status, reply.body, reply.complete) == (200, b"abc", False)
        assert client.is_closed()
    assert "without its last chunk" in caplog.text


def test_a_saturated_thread_pool_queues_requests_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running(environ_app, "threaded", max_threads=2) as server:
        clients = [Client.connect(server) for _ in range(3)]
        try:
            for c in clients:
                c.send(b"GET /sleep?0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert [c.reply().status for c in clients] == [200, 200, 200]
        finally:
            for c in clients:
                c.close()
    assert "All 2 worker threads are busy" in caplog.text
