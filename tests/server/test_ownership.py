"""One owner per connection: a request whose handler fails closes its own connection once,
never a neighbour's that the OS gave the same file descriptor meanwhile."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.conftest import ROOT, checkout_env, finish_process

pytestmark = pytest.mark.live

NEIGHBOURS = 300


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def _read_response(sock: socket.socket, deadline: float) -> bytes:
    """One whole response (they all carry Content-Length), or what came before a reset/EOF."""
    data = b""
    while time.monotonic() < deadline:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                return data
        if not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _one_round(port: int) -> list[str]:
    """300 keep-alive neighbours send two requests each while failing requests come and go."""
    problems = []
    neighbours = []
    deadline = time.monotonic() + 30
    for index in range(NEIGHBOURS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        neighbours.append((index, sock))
        if index % 3 == 0:  # a failing request beside them, on its own connection
            with socket.create_connection(("127.0.0.1", port), timeout=10) as failing:
                failing.sendall(_request("/fail"))
                _read_response(failing, time.monotonic() + 5)
    for round_number in (1, 2):
        for index, sock in neighbours:
            try:
                sock.sendall(_request(f"/n{index}r{round_number}"))
            except OSError as exc:
                problems.append(f"neighbour {index} request {round_number}: {exc}")
        for index, sock in neighbours:
            answer = _read_response(sock, deadline)
            if not answer.endswith(f"/n{index}r{round_number}".encode()):
                problems.append(f"neighbour {index} request {round_number}: {answer[:80]!r}")
    for _, sock in neighbours:
        sock.close()
    return problems


def test_failing_handlers_never_close_a_neighbours_connection() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.failing_handler"],
        cwd=ROOT,
        env=checkout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        problems = [problem for _ in range(3) for problem in _one_round(port)]
        assert problems == [], f"{len(problems)} neighbours failed: {problems[:5]}"
    finally:
        finish_process(proc, 10, interrupt=True)


@pytest.mark.parametrize("mode", ["threaded", "forking"])
def test_only_the_loops_thread_closes_or_rearms_connections(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers post (connection, outcome) to the loop; they never close a connection, watch
    it or take it out of the table themselves, whatever the outcome of their request."""
    import threading

    from tests.serverkit import Client, running
    from wsgidev._server.loop import ConnectionLoop

    threads: set[str] = set()
    for name in ("close", "watch", "_finish_here"):
        original = getattr(ConnectionLoop, name)

        def spy(self: ConnectionLoop, *args: object, _original: Any = original) -> Any:
            threads.add(threading.current_thread().name)
            return _original(self, *args)

        monkeypatch.setattr(ConnectionLoop, name, spy)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with running(app, mode) as server:
        for _ in range(5):
            with Client.connect(server) as client:  # keep-alive, then closed by the client
                assert client.get("/").status == 200
                assert client.get("/").status == 200
            with Client.connect(server) as client:  # closed by the server
                client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert client.reply().status == 200
        assert server.wait_idle(5)
        # (Once the loop has stopped, server_close closes what is left in its own thread.)
        assert threads == {"test-server"}
