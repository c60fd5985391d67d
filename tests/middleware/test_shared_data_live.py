"""SharedDataMiddleware over real sockets: under gunicorn (gthread), waitress, wsgidev's server
and Werkzeug's.

Each server runs ``tests.apps.static_files`` in its own process on 127.0.0.1 with a port the
OS picks, once per module, and is stopped at teardown. The checks are the ones a server can
break: file wrappers and sendfile (whole files and ranges from an offset), 304s without a
body, multipart ranges, one Date header, HEAD, raw hostile request lines, and file handles
left open when clients go away."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    GUNICORN_READY,
    RUNNING_ON,
    WAITRESS_READY,
    LiveServer,
    checkout_env,
    gunicorn_command,
    start_server_process,
    waitress_command,
)

pytestmark = pytest.mark.live

HELLO = b"hello from a live server\n"
BIG = hashlib.sha256(b"seed").digest() * (4 * 1024 * 1024 // 32)  # 4 MiB, several sendfile calls
JS = b"console.log('live');\n" * 50
SECRET = b"LIVE-SECRET-OUTSIDE"
SERVER_KINDS = ["gunicorn", "waitress", "wsgidev", "werkzeug"]
_TARGET = "tests.apps.static_files:app"


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("live-static")
    public = base / "public"
    (public / "dir").mkdir(parents=True)
    (public / "hello.txt").write_bytes(HELLO)
    (public / "big.bin").write_bytes(BIG)
    (public / "app.js").write_bytes(JS)
    import gzip

    (public / "app.js.gz").write_bytes(gzip.compress(JS))
    info = (public / "app.js").stat()
    os.utime(public / "app.js.gz", ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    (public / "dir" / "index.html").write_bytes(b"<p>live index</p>")
    (public / ".env").write_bytes(SECRET)
    (base / "secret.txt").write_bytes(SECRET)
    return public


def _start(command: list[str], ready: str, env: dict[str, str]) -> LiveServer:
    return start_server_process(command, ready, checkout_env(env), timeout=30)


# wsgidev's threaded server through the agreed make_server, in its own process like the others.
_WSGIDEV_SERVE = """
from wsgidev._server.servers import make_server
from tests.apps.static_files import app
server = make_server("127.0.0.1", 0, app, threaded=True)
print(f" * Running on http://127.0.0.1:{server.port}", flush=True)
server.serve_forever()
server.server_close()
"""

_WERKZEUG_SERVE = """
from werkzeug.serving import make_server
from tests.apps.static_files import app
server = make_server("127.0.0.1", 0, app, threaded=True)
print(f" * Running on http://127.0.0.1:{server.port}", flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module", params=SERVER_KINDS)
def server(request: pytest.FixtureRequest, static_root: Path) -> Iterator[LiveServer]:
    # An unclosed file shows up as a ResourceWarning in the server's log.
    env = {
        "WSGIDEV_TEST_STATIC_ROOT": str(static_root),
        "PYTHONWARNINGS": "always::ResourceWarning",
    }
    kind = request.param
    if kind == "gunicorn":
        started = _start(gunicorn_command(_TARGET), GUNICORN_READY, env)
    elif kind == "waitress":
        started = _start(waitress_command(_TARGET), WAITRESS_READY, env)
    elif kind == "wsgidev":
        started = _start([sys.executable, "-c", _WSGIDEV_SERVE], RUNNING_ON.pattern, env)
    else:  # a project that swapped only the middleware import still runs Werkzeug's server
        started = _start([sys.executable, "-c", _WERKZEUG_SERVE], RUNNING_ON.pattern, env)
    try:
        yield started
    finally:
        started.stop()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def fetch(
    server: LiveServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=20)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.msg, response.read())
    finally:
        connection.close()


def raw_request(server: LiveServer, target: bytes) -> bytes:
    """Send one request line as given (no client-side normalisation) and read the whole reply."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        chunks: list[bytes] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(map(len, chunks)) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_whole_files(server: LiveServer) -> None:
    small = fetch(server, "/static/hello.txt")
    assert (small.status, small.body) == (200, HELLO)
    assert small.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert len(small.headers.get_all("Date") or []) == 1  # the server's, not a second one of ours
    big = fetch(server, "/static/big.bin")
    assert big.status == 200
    assert big.headers["Content-Length"] == str(len(BIG))
    assert hashlib.sha256(big.body).digest() == hashlib.sha256(BIG).digest()


def test_not_modified(server: LiveServer) -> None:
    etag = fetch(server, "/static/hello.txt").headers["ETag"]
    again = fetch(server, "/static/hello.txt", headers={"If-None-Match": etag})
    assert (again.status, again.body, again.headers["ETag"]) == (304, b"", etag)
    modified = fetch(
        server, "/static/hello.txt", headers={"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}
    )
    assert modified.status == 200


def test_ranges(server: LiveServer) -> None:
    single = fetch(server, "/static/big.bin", headers={"Range": "bytes=100-199"})
    assert (single.status, single.body) == (206, BIG[100:200])
    assert single.headers["Content-Range"] == f"bytes 100-199/{len(BIG)}"
    # To the end: sent through the server's file wrapper from an offset.
    tail = fetch(server, "/static/big.bin", headers={"Range": f"bytes={len(BIG) - 3_000_000}-"})
    assert tail.status == 206 and tail.body == BIG[-3_000_000:]
    suffix = fetch(server, "/static/big.bin", headers={"Range": "bytes=-10"})
    assert suffix.body == BIG[-10:]
    multi = fetch(server, "/static/big.bin", headers={"Range": "bytes=0-4,1000000-1000004"})
    assert multi.status == 206
    assert multi.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert BIG[0:5] in multi.body and BIG[1000000:1000005] in multi.body
    assert int(multi.headers["Content-Length"]) == len(multi.body)
    unsatisfiable = fetch(server, "/static/big.bin", headers={"Range": f"bytes={len(BIG)}-"})
    assert unsatisfiable.status == 416
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{len(BIG)}"


def test_head_and_methods(server: LiveServer) -> None:
    head = fetch(server, "/static/big.bin", method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", str(len(BIG)))
    post = fetch(server, "/static/hello.txt", method="POST")
    assert post.status == 405 and post.headers["Allow"] == "GET, HEAD"


def test_precompressed_and_index(server: LiveServer) -> None:
    import gzip

    encoded = fetch(server, "/static/app.js", headers={"Accept-Encoding": "gzip"})
    assert encoded.headers["Content-Encoding"] == "gzip"
    assert encoded.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(encoded.body) == JS
    assert fetch(server, "/static/dir/").body == b"<p>live index</p>"
    redirect = fetch(server, "/static/dir?x=1")
    assert redirect.status == 301 and redirect.headers["Location"].endswith("/static/dir/?x=1")


def test_fall_through(server: LiveServer) -> None:
    reply = fetch(server, "/api/thing")
    assert (reply.status, reply.body) == (404, b"app: /api/thing")


@pytest.mark.parametrize(
    "target",
    [
        b"/static/../secret.txt",
        b"/static/%2e%2e/secret.txt",
        b"/static/%2E%2E/secret.txt",
        b"/static/.%2e/secret.txt",
        b"/static/..%2fsecret.txt",
        b"/static/..%2Fsecret.txt",
        b"/static/%2e%2e%2fsecret.txt",
        b"/static/..%5csecret.txt",
        b"/static/%2e%2e%5csecret.txt",
        b"/static/..\\secret.txt",
        b"/static/%00",
        b"/static/hello.txt%00.png",
        b"/static/C:%5csecret.txt",
        b"/static//etc/passwd",
        b"/static/%2fetc%2fpasswd",
        b"/static/.env",
        b"/static/%2eenv",
        b"/static/dir/../../secret.txt",
    ],
)
def test_hostile_request_lines(server: LiveServer, target: bytes) -> None:
    reply = raw_request(server, target)
    assert SECRET not in reply
    assert b"root:" not in reply
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
    assert status in (0, 400, 404), reply[:200]


def _files_open_in(pgid: int, path: Path) -> int:
    """How many descriptors in the server's process group point at ``path`` (Linux /proc)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                        count += 1
                except OSError:
                    pass
        except OSError:
            continue
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_files_are_closed_when_clients_go_away(server: LiveServer, static_root: Path) -> None:
    big = static_root / "big.bin"
    for extra in (b"", b"Range: bytes=1-2000000\r\n", b"Range: bytes=1-5,2000000-\r\n"):
        for _ in range(3):
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                sock.sendall(
                    b"GET /static/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"
                )
                assert sock.recv(1024).startswith(
                    b"HTTP/1.1 20"
                )  # a little of the reply, then hang up
    # HEAD and 304 never open it.
    fetch(server, "/static/big.bin", method="HEAD")
    deadline = time.monotonic() + 10
    while _files_open_in(server.proc.pid, big) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _files_open_in(server.proc.pid, big) == 0
    assert "ResourceWarning" not in server.log
    assert fetch(server, "/static/hello.txt").body == HELLO  # and the server carries on


def test_run_simple_static_files(live_server: Callable[..., LiveServer], static_root: Path) -> None:
    """``run_simple(static_files=...)`` wraps the app in SharedDataMiddleware."""
    started = live_server("hello", "--threaded", "--static", f"/s={static_root}")
    reply = fetch(started, "/s/hello.txt", headers={"Range": "bytes=0-4"})
    assert (reply.status, reply.body) == (206, HELLO[:5])
    assert fetch(started, "/other").body == b"Hello, World!"
