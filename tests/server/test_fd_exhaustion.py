"""Out of file descriptors, every server mode keeps serving: it answers what it can (503 for a
request no worker process could be started for), waits for descriptors to free up, and logs
one line per shortage instead of one per connection."""

from __future__ import annotations

import select
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import RUNNING_ON, LiveServer, checkout_env, start_server_process

LIMIT = 64  # the server's descriptor limit: a few dozen connections exhaust it

HARNESS = """
import resource, sys
from wsgidev.serving import run_simple

resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


mode = sys.argv[1]
run_simple("127.0.0.1", 0, app, threaded=mode == "threaded", processes=4 if mode == "forking" else 1)
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(params=["base", "threaded", "forking"])
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    command = [sys.executable, "-c", HARNESS.format(limit=LIMIT), request.param]
    live = start_server_process(command, RUNNING_ON.pattern, checkout_env(None))
    try:
        yield live
    finally:
        live.stop()


def status_of(sock: socket.socket) -> bytes:
    try:
        return sock.recv(64).split(b" ", 2)[1]
    except (OSError, IndexError):
        return b"none"


def test_the_server_survives_running_out_of_descriptors(server: LiveServer) -> None:
    clients = []
    for _ in range(2 * LIMIT):
        clients.append(socket.create_connection((server.host, server.port), timeout=5))
    statuses = []
    try:
        for sock in clients:
            sock.sendall(REQUEST)
        # What the server answers within 3 s; connections still in its backlog answer nothing.
        waiting = {sock.fileno(): sock for sock in clients}
        deadline = time.monotonic() + 3
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select(list(waiting), [], [], 0.1)
            statuses.extend(status_of(waiting.pop(fd)) for fd in ready)
    finally:
        for sock in clients:
            sock.close()
    assert set(statuses) <= {b"200", b"503", b"none"}, statuses
    assert b"200" in statuses

    # Descriptors are free again: a new client is served, and the server never exited.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, server.log
        with socket.create_connection((server.host, server.port), timeout=5) as fresh:
            fresh.sendall(REQUEST)
            fresh.settimeout(5)
            if status_of(fresh) == b"200":
                break
    else:
        raise AssertionError(f"no 200 after the shortage:\n{server.log}")
    shortage_lines = [line for line in server.log.splitlines() if "Cannot " in line]
    assert 1 <= len(shortage_lines) <= 2, server.log  # one per kind of shortage, not per connection
