"""The README's "What behaves better" list: wsgidev's side of each line, over real sockets.

What Werkzeug does instead depends on the Werkzeug installed, so it is measured, not asserted:
``python bench/compare_werkzeug.py`` runs the same programs under both and prints the table.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import LiveServer
from tests.integration._pages import BROWSER_HEADERS, body_attributes

pytestmark = pytest.mark.live

PROGRAM = """
import sys

from werkzeug.debug import DebuggedApplication
from werkzeug.serving import run_simple


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/partial":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            yield b"first part\\n"
            raise RuntimeError("the database went away mid-response")

        return body()
    data = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


run_simple("127.0.0.1", 0, DebuggedApplication(app), threaded=sys.argv[1] == "threaded")
"""

Start = Callable[[str, str], LiveServer]


@pytest.fixture
def start(tmp_path: Path, external_server: Callable[..., LiveServer]) -> Start:
    """``start("wsgidev", "threaded" | "single")`` runs the program (written for Werkzeug,
    as a project that switches would have it) with wsgidev's imports."""

    def run(package: str, mode: str) -> LiveServer:
        program = tmp_path / f"{package}_{mode}.py"
        program.write_text(PROGRAM.replace("werkzeug", package))
        return external_server(
            [sys.executable, str(program), mode], r" \* Running on (?P<url>http://127\.0\.0\.1:\d+)"
        )

    return run


def read_response(sock: socket.socket, deadline: float) -> tuple[bytes, bytes]:
    """One response with a Content-Length body: (head, body). Empty head if the server closed."""
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return b"", b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length and time.monotonic() < deadline:
        body += sock.recv(65536)
    return head, body


def read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the server kept the connection open: {data!r}")


def request(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def two_requests_on_one_connection(server: LiveServer) -> tuple[bytes, bytes]:
    deadline = time.monotonic() + 10
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request("/"))
        first_head, first_body = read_response(sock, deadline)
        assert first_body == b"hello"
        # Two seconds is ages for a local hello world; waiting longer only slows the Werkzeug case.
        sock.settimeout(2)
        try:
            sock.sendall(request("/"))
            second_head, _ = read_response(sock, deadline)
        except OSError:
            second_head = b""
    return first_head, second_head


def test_single_threaded_server_keeps_connections_alive(start: Start) -> None:
    first, second = two_requests_on_one_connection(start("wsgidev", "single"))
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")


def partial_response(server: LiveServer) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request("/partial", "Connection: close\r\n"))
        return read_until_closed(sock, time.monotonic() + 10)


def test_an_error_after_the_first_byte_leaves_the_response_visibly_cut(start: Start) -> None:
    ours = partial_response(start("wsgidev", "threaded"))
    assert b"Transfer-Encoding: chunked" in ours
    assert b"first part" in ours
    assert not ours.endswith(b"0\r\n\r\n"), "a cut response must not carry the last chunk"


CONSOLE_PROGRAM = """
from werkzeug.debug import DebuggedApplication
from werkzeug.serving import run_simple


def app(environ, start_response):
    raise LookupError("nothing here")


run_simple("::1", 0, DebuggedApplication(app, evalex=True), threaded=True)
"""
PIN = "246-801-357"


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_the_console_trusts_the_ipv6_loopback(
    tmp_path: Path, external_server: Callable[..., LiveServer]
) -> None:
    def start_console(package: str) -> LiveServer:
        program = tmp_path / f"console_{package}.py"
        program.write_text(CONSOLE_PROGRAM.replace("werkzeug", package))
        env = {"WERKZEUG_DEBUG_PIN": PIN, "WSGIDEV_DEBUG_PIN": PIN}
        return external_server(
            [sys.executable, str(program)], r" \* Running on (?P<url>http://\[::1\]:\d+)", env
        )

    ours = start_console("wsgidev")
    with requests.Session() as session:
        page = session.get(ours.url + "/", headers=BROWSER_HEADERS, timeout=10)
        secret_attr = body_attributes(page.text).get("data-secret") or ""
        answer = session.post(
            ours.url + "/?__debugger__=yes",
            data={"cmd": "pinauth", "pin": PIN, "s": secret_attr},
            headers={"Origin": ours.url},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["auth"] is True


DEBUGGER_PROGRAM = """
from werkzeug.serving import run_simple


def app(environ, start_response):
    order_id = 42
    raise LookupError(f"order {order_id} is gone")


run_simple("127.0.0.1", 0, app, use_debugger=True, threaded=True)
"""


def start_debugger(
    package: str, tmp_path: Path, external_server: Callable[..., LiveServer]
) -> LiveServer:
    program = tmp_path / f"debugger_{package}.py"
    program.write_text(DEBUGGER_PROGRAM.replace("werkzeug", package))
    env = {"WERKZEUG_DEBUG_PIN": PIN, "WSGIDEV_DEBUG_PIN": PIN}
    return external_server(
        [sys.executable, str(program)], r" \* Running on (?P<url>http://127\.0\.0\.1:\d+)", env
    )


def test_the_pin_is_printed_without_the_reloader(
    tmp_path: Path, external_server: Callable[..., LiveServer]
) -> None:
    ours = start_debugger("wsgidev", tmp_path, external_server)
    ours.wait_for(rf" \* Debugger PIN: {PIN}", timeout=10)


def test_console_code_never_travels_in_the_url(
    tmp_path: Path, external_server: Callable[..., LiveServer]
) -> None:
    probe = tmp_path / "ran"
    code = f"open({str(probe)!r}, 'w').close()"

    ours = start_debugger("wsgidev", tmp_path, external_server)
    with requests.Session() as session:
        page = session.get(ours.url + "/", headers=BROWSER_HEADERS, timeout=10)
        secret_attr = body_attributes(page.text).get("data-secret") or ""
        frame_id = re.findall(r'data-frame-id="(\d+)"', page.text)[-1]
        origin = {"Origin": ours.url}
        auth = session.post(
            ours.url + "/?__debugger__=yes",
            data={"cmd": "pinauth", "pin": PIN, "s": secret_attr},
            headers=origin,
            timeout=10,
        )
        assert auth.json()["auth"] is True
        token = auth.json()["token"]
        by_get = session.get(
            ours.url + "/",
            params={
                "__debugger__": "yes",
                "cmd": code,
                "frm": frame_id,
                "s": secret_attr,
                "token": token,
            },
            headers=origin,
            timeout=10,
        )
        assert by_get.status_code == 405
        assert not probe.exists(), "code sent in a URL must not run"
        by_post = session.post(
            ours.url + "/?__debugger__=yes",
            data={"cmd": code, "frm": frame_id, "s": secret_attr, "token": token},
            headers=origin,
            timeout=10,
        )
        assert by_post.status_code == 200, by_post.text
    assert probe.exists()
    assert "open(" not in ours.log, "the server's log never shows console code"
