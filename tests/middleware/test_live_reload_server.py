"""Live reload as ``wsgidev run --debug`` serves it: a restart ends every open stream at once,
the next server says hello with a new boot, and open streams never delay Ctrl+C."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LiveServer, get

APP = """\
def app(environ, start_response):
    body = b"<!doctype html><html><body><h1>version {version}</h1></body></html>"
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
    return [body]
"""
HELLO = re.compile(rb'event: hello\ndata: \{"boot":"([A-Za-z0-9_-]+)"\}')


class Stream:
    """A browser tab's event stream, read over a raw socket."""

    def __init__(self, server: LiveServer) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        host = f"{server.host}:{server.port}"
        self.sock.sendall(
            f"GET /__wsgidev__/live/events HTTP/1.1\r\nHost: {host}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.data = b""

    def read_until(self, pattern: re.Pattern[bytes], timeout: float = 10.0) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        while (found := pattern.search(self.data)) is None:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            block = self.sock.recv(65536)
            if not block:
                raise ConnectionError(f"stream closed before {pattern.pattern!r}: {self.data!r}")
            self.data += block
        return found

    def boot(self) -> str:
        return self.read_until(HELLO).group(1).decode()

    def closed_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
                if not self.sock.recv(65536):
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP.format(version=1))
    return tmp_path


def save(path: Path, text: str) -> None:
    path.write_text(text)


def test_a_restart_ends_open_streams_and_the_new_server_has_a_new_boot(
    project: Path, serve_cli: Callable[..., LiveServer]
) -> None:
    server = serve_cli("run", "app:app", "--debug", "--reloader-type", "stat", cwd=project)
    tabs = [Stream(server) for _ in range(3)]
    try:
        boots = {tab.boot() for tab in tabs}
        assert len(boots) == 1
        started = time.monotonic()
        save(project / "app.py", APP.format(version=2))
        for tab in tabs:
            assert tab.closed_within(5.0)
        again = Stream(server)
        tabs.append(again)
        assert again.boot() not in boots
        # Open streams cost the restart nothing: typically 0.3 s from the save to the new boot.
        assert time.monotonic() - started < 3.0
        assert b"version 2" in get(server)[2]
    finally:
        for tab in tabs:
            tab.close()


def test_a_page_of_an_app_that_cannot_import_carries_the_script_until_it_is_fixed(
    project: Path, serve_cli: Callable[..., LiveServer]
) -> None:
    server = serve_cli("run", "app:app", "--debug", "--reloader-type", "stat", cwd=project)
    tab = Stream(server)
    try:
        first = tab.boot()
        save(project / "app.py", "def app(:\n")
        assert tab.closed_within(5.0)
        tab.close()
        tab = Stream(server)
        broken = tab.boot()
        assert broken != first
        host = {"Host": f"{server.host}:{server.port}", "Accept": "text/html"}
        status, _, body = get(server, headers=host)
        assert status == 500
        assert b"SyntaxError" in body and b"/__wsgidev__/live/client.js" in body
        save(project / "app.py", APP.format(version=3))
        assert tab.closed_within(5.0)
        tab.close()
        tab = Stream(server)
        assert tab.boot() not in (first, broken)
        assert b"version 3" in get(server, headers=host)[2]
    finally:
        tab.close()


def test_open_streams_do_not_delay_ctrl_c(
    project: Path, serve_cli: Callable[..., LiveServer]
) -> None:
    server = serve_cli("run", "app:app", "--debug", "--threaded", cwd=project)
    tabs = [Stream(server) for _ in range(8)]
    try:
        for tab in tabs:
            tab.boot()
        started = time.monotonic()
        assert server.stop(timeout=10) == 0
        assert time.monotonic() - started < 2.0  # the graceful stop waits up to 5 s for workers
        assert "still running" not in server.log
    finally:
        for tab in tabs:
            tab.close()


def test_no_live_keeps_pages_and_routes_as_the_app_answers(
    project: Path, serve_cli: Callable[..., LiveServer]
) -> None:
    server = serve_cli("run", "app:app", "--debug", "--no-live", cwd=project)
    host = {"Host": f"{server.host}:{server.port}"}
    assert b"__wsgidev__" not in get(server, headers=host)[2]
    assert get(server, "/__wsgidev__/live/events", headers=host)[0] == 200  # the app's own page
