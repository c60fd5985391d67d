"""Bad input gets a status and the server keeps serving; app errors become a 500 or a closed
connection; every request is logged in one line through the ``wsgidev`` logger."""

from __future__ import annotations

import io
import logging
import re
import socket
import time
from typing import Any, ClassVar

import pytest

from tests.serverkit import Client, hello, running
from wsgidev._http import log as _http_log
from wsgidev._server.handler import WSGIRequestHandler

SERVER_HEADER = f"{WSGIRequestHandler.server_version} {WSGIRequestHandler.sys_version}"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70000 + b"\r\n\r\n", 431),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: v\r\n" % i for i in range(101))
            + b"\r\n",
            431,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 1\r\n\r\n", 417),
    ],
    ids=[
        "garbage",
        "bad-header",
        "414",
        "431-size",
        "431-count",
        "501",
        "cl-and-te",
        "two-cl",
        "505",
        "417",
    ],
)
@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_bad_requests_get_a_status_and_the_server_keeps_serving(
    mode: str, raw: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with running(hello, mode) as server:
        with Client.connect(server) as client:
            client.send(raw)
            reply = client.reply()
            assert reply.status == status
            assert reply.header("Connection") == "close"
            # The server's own answers carry the same Server header as the app's.
            assert reply.header("Server") == SERVER_HEADER
            assert client.is_closed()
        with Client.connect(server) as client:
            assert client.get("/").body == b"Hello, World!"
    assert re.search(rf'"[^"]*" {status} - \(', caplog.text)


def test_a_bad_pipelined_request_is_answered_after_the_good_one() -> None:
    with running(hello, "threaded") as server, Client.connect(server) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n")
        assert client.reply().status == 200
        assert client.reply().status == 400
        assert client.is_closed()


def test_a_tls_handshake_on_the_plain_port_gets_one_log_line_and_400(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hello_record = bytes.fromhex("16030100a5010000a10303") + b"\x00" * 40
    with running(hello) as server:
        with Client.connect(server) as client:
            client.send(hello_record)
            assert client.reply().status == 400
        with Client.connect(server) as client:
            assert client.get("/").status == 200
    lines = [r.getMessage() for r in caplog.records if "TLS" in r.getMessage()]
    assert len(lines) == 1
    assert "http://" in lines[0]


# -- application errors ----------------------------------------------------------------------


def crashing(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/late":
        start_response("200 OK", [("Content-Type", "text/plain")])
    raise ZeroDivisionError("the app divided by zero")


def test_an_exception_becomes_a_500_page_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running(crashing) as server, Client.connect(server) as client:
        reply = client.get("/")
        assert reply.status == 500
        assert b"Internal Server Error" in reply.body
        assert b"ZeroDivisionError" not in reply.body  # no internals leak to the client
        assert client.get("/late").status == 500  # start_response without a body yet: still a 500
        assert client.get("/", method="HEAD").status == 500
    assert "Traceback (most recent call last)" in caplog.text
    assert "ZeroDivisionError: the app divided by zero" in caplog.text


def test_passthrough_errors_reraises_out_of_serve_forever() -> None:
    with running(crashing, passthrough_errors=True) as server, Client.connect(server) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.is_closed()
        server.thread.join(5)  # type: ignore[attr-defined]
        assert [type(e) for e in server.errors] == [ZeroDivisionError]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("X-Bad", "a\r\nSet-Cookie: injected=1")], "invalid response header"),
        ([("X-Num", 5)], "must be str"),
        ([("Content-Length", "five")], "must be digits"),
        ([("X-Snow", "\u2603")], "latin-1"),
    ],
)
def test_bad_response_headers_are_a_500_not_an_injection(
    headers: list[Any], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", headers)
        return [b"body"]

    with running(app) as server, Client.connect(server) as client:
        reply = client.get("/")
        assert reply.status == 500
        assert reply.header("Set-Cookie") is None
    assert message in caplog.text


def test_a_short_body_closes_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "10")])
        return iter([b"12345"])  # type: ignore[return-value]

    with running(app) as server, Client.connect(server) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        client.read_until(b"\r\n\r\n")
        assert client.read_to_eof() == b"12345"
    assert "5 of the 10 bytes" in caplog.text


def test_a_client_that_disconnects_mid_response_is_logged_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        try:
            for _ in range(10_000):
                yield b"z" * 65536
        finally:
            done.append(True)

    with running(app, "threaded") as server:
        client = Client.connect(server)
        client.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        client.read_until(b"\r\n\r\n")
        client.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        client.close()
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
        with Client.connect(server) as other:
            other.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert other.reply(head_only=True).status == 200
    assert done
    dropped = [r for r in caplog.records if "client disconnected" in r.getMessage()]
    assert len(dropped) == 1
    assert "\n" not in dropped[0].getMessage()
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("body", ["file", "stream"])
@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_a_download_cut_off_by_the_client_logs_the_bytes_it_got(
    mode: str, body: str, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as f:
        f.truncate(64 * 1024 * 1024)  # far more than the kernel's socket buffers hold

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", str(64 * 1024 * 1024))])
        if body == "stream":
            return (b"\0" * 65536 for _ in range(1024))
        return environ["wsgi.file_wrapper"](path.open("rb"))

    with running(app, mode) as server:
        client = Client.connect(server)
        client.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        client.read_until(b"\r\n\r\n")
        client.read_exact(5_000_000)
        client.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        client.close()
        with Client.connect(server) as other:  # the server has logged the dropped one by now
            assert other.get("/", method="HEAD").status == 200
    [line] = [r.getMessage() for r in caplog.records if "client disconnected" in r.getMessage()]
    size = int(re.search(r'" 200 (\d+) ', line)[1])  # type: ignore[index]
    assert 5_000_000 <= size < 64 * 1024 * 1024


# -- the request log -------------------------------------------------------------------------


def test_one_log_line_per_request_with_method_path_status_size_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wsgidev")
    with running(hello) as server, Client.connect(server) as client:
        client.get("/path?q=1")
    lines = [r.getMessage() for r in caplog.records if r.name == "wsgidev"]
    assert len(lines) == 1
    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "GET /path\?q=1 HTTP/1\.1" 200 13 \d+\.\dms',
        lines[0],
    ), lines[0]


def test_secrets_are_redacted_from_logged_urls(caplog: pytest.LogCaptureFixture) -> None:
    with running(hello) as server, Client.connect(server) as client:
        client.get("/x?__debugger__=yes&cmd=print(1)&frm=3&s=SECRETVALUE")
        client.get("/console?pin=123-456-789&a=1")
        client.get("/x?__debugger__=yes&cmd=resource&f=debugger.js")
    assert "SECRETVALUE" not in caplog.text
    assert "123-456-789" not in caplog.text
    assert "print(1)" not in caplog.text
    assert "cmd=***&frm=3&s=***" in caplog.text
    assert "pin=***&a=1" in caplog.text
    assert "cmd=resource&f=debugger.js" in caplog.text


def test_redaction_keeps_other_parameters() -> None:
    assert _http_log.redact_target("/a?sort=1&s=x&pins=2") == "/a?sort=1&s=***&pins=2"
    assert _http_log.redact_target("/plain") == "/plain"


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _http_log.wants_colour() is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert _http_log.wants_colour() is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a pipe or file is not a terminal
    assert _http_log.wants_colour() is False
    assert _http_log.colourise("x", 404) == "\x1b[33mx\x1b[0m"
    assert _http_log.colourise("x", 500).startswith("\x1b[1;31m")


def test_coloured_log_lines_by_status_class(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(f"{environ['QUERY_STRING']} X", [])
        return [b""]

    with running(app, log_colour=True) as server, Client.connect(server) as client:
        for code in (200, 302, 404):
            client.get(f"/?{code}")
    lines = [r.getMessage() for r in caplog.records]
    assert (
        lines[0].startswith("\x1b[32m")
        and lines[1].startswith("\x1b[36m")
        and lines[2].startswith("\x1b[33m")
    )


# -- handler subclasses ----------------------------------------------------------------------


class CustomHandler(WSGIRequestHandler):
    server_version = "custom/9"
    logged: ClassVar[list[tuple[Any, Any]]] = []

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ["custom.key"] = "set by subclass"
        return environ

    def address_string(self) -> str:
        return "client.example"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.logged.append((code, size))


def test_request_handler_subclass_hooks() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return hello(environ, start_response)

    with running(app, request_handler=CustomHandler) as server, Client.connect(server) as client:
        reply = client.get("/")
    assert (reply.header("Server") or "").startswith("custom/9 Python/")
    assert seen["custom.key"] == "set by subclass"
    assert seen["REMOTE_ADDR"] == "client.example"
    assert seen["SERVER_SOFTWARE"] == "custom/9"
    assert CustomHandler.logged == [(200, 13)]


def test_request_handler_must_be_a_handler_class() -> None:
    from wsgidev._server.servers import make_server

    with pytest.raises(TypeError, match="request_handler"):
        make_server("127.0.0.1", 0, hello, request_handler=object)  # type: ignore[arg-type]


def test_a_body_longer_than_its_content_length_is_cut_and_the_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "4")])
        return iter([b"12", b"345", b"678"])

    with running(app) as server, Client.connect(server) as client:
        reply = client.get("/")
        assert reply.body == b"1234"
        assert client.read_to_eof() == b""  # nothing past the announced length, then the close
    assert "more bytes than its Content-Length" in caplog.text
