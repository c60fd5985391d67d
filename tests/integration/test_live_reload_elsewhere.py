"""LiveReloadMiddleware wrapped by hand under gunicorn and waitress: the page gets the script,
the event stream is an ordinary streaming response (one worker thread per tab), and a saved
stylesheet still reaches the open stream."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    GUNICORN_READY,
    WAITRESS_READY,
    LiveServer,
    get,
    gunicorn_command,
    waitress_command,
)
from tests.integration.conftest import start_process

pytestmark = pytest.mark.live

TARGET = "tests.apps.live_stack:app"


@pytest.fixture(params=["gunicorn", "waitress"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    (tmp_path / "site.css").write_text("h1 { color: red }")
    if request.param == "gunicorn":
        command, ready = gunicorn_command(TARGET), GUNICORN_READY
    else:
        command, ready = waitress_command(TARGET), WAITRESS_READY
    server = start_process(command, ready, env={"WSGIDEV_TEST_STATIC_DIR": str(tmp_path)})
    try:
        yield server, tmp_path
    finally:
        server.stop()


def test_pages_get_the_script_and_a_saved_stylesheet_reaches_the_stream(
    served: tuple[LiveServer, Path],
) -> None:
    server, static = served
    host = {"Host": f"127.0.0.1:{server.port}"}
    status, _, body = get(server, "/", headers=host)
    assert status == 200 and b"/__wsgidev__/live/client.js" in body
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            f"GET /__wsgidev__/live/events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
        )
        received = b""
        deadline = time.monotonic() + 10
        while b"event: hello" not in received and time.monotonic() < deadline:
            received += sock.recv(65536)
        assert re.search(rb"text/event-stream", received)
        while b"event: css" not in received and time.monotonic() < deadline:
            (static / "site.css").write_text(f"h1 {{ color: blue }} /* {time.monotonic()} */")
            sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                received += sock.recv(65536)
        assert b'event: css\ndata: {"url":"/static/site.css"}' in received
    # The tab is gone: its worker thread is free again for the next request.
    assert get(server, "/", headers=host)[0] == 200


def test_an_open_tab_never_holds_up_the_servers_stop(served: tuple[LiveServer, Path]) -> None:
    """The stream ends every few seconds, so the server's graceful stop (and gunicorn's
    --reload, which stops its workers the same way) waits for it no longer."""
    server, _ = served
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            f"GET /__wsgidev__/live/events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
        )
        received = b""
        while b"event: hello" not in received:
            block = sock.recv(65536)
            assert block, received
            received += block
        started = time.monotonic()
        server.stop(timeout=15)
        assert time.monotonic() - started < 5.0
