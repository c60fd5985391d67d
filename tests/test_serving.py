"""run_simple as users call it: the banner, where it listens, how it stops, what it refuses."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wsgidev.debug
import wsgidev.middleware.shared_data
from tests.apps.hello import app as hello_app
from tests.conftest import ROOT, RUNNING_ON, checkout_env, finish_process
from wsgidev import serving

pytestmark = pytest.mark.live


def get(host: str, port: int, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run_apps(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``python -m tests.apps ARGS`` with its output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=checkout_env(env),
        start_new_session=True,
        **kwargs,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_banner_names_the_real_port_the_warning_and_how_to_quit(live_server: Any) -> None:
    server = live_server("hello")
    server.wait_for(r"Press CTRL\+C to quit")
    assert server.port != 0
    assert re.search(rf"^ \* Running on http://127\.0\.0\.1:{server.port}$", server.log, re.M)
    assert "WARNING: this is a development server" in server.log
    assert get(server.host, server.port) == (200, b"Hello, World!")


def test_all_interfaces_banner_lists_every_address_loopback_first(live_server: Any) -> None:
    server = live_server("hello", "--host", "0.0.0.0")
    server.wait_for(r"Press CTRL\+C to quit")  # the last banner line: every URL is in
    assert " * Running on all addresses (0.0.0.0)" in server.log
    urls = re.findall(r" \* Running on (http://\S+)", server.log)
    # The first URL is the loopback one a local developer opens; every URL has the real port.
    assert urls[0] == f"http://127.0.0.1:{server.port}"
    assert all(url.endswith(f":{server.port}") for url in urls)
    assert len(urls) == len(set(urls))
    assert get("127.0.0.1", server.port)[0] == 200


def test_banner_lists_addresses_of_the_machines_interfaces() -> None:
    from wsgidev._banner import BoundAddress, urls

    listed = urls(BoundAddress("0.0.0.0", 8000, https=True))
    assert "https://127.0.0.1:8000" in listed
    hostnames = {re.sub(r"^https://|:8000$", "", url) for url in listed}
    for address in hostnames:
        socket.inet_aton(address)  # every entry is an IPv4 literal for a 0.0.0.0 bind
    assert urls(BoundAddress("localhost", 8000, https=False)) == ["http://localhost:8000"]
    assert urls(BoundAddress("::1", 80, https=False)) == ["http://[::1]:80"]
    assert urls(BoundAddress("unix:///run/app.sock", 0, https=False)) == ["unix:///run/app.sock"]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="wsgidev-") as name:
        yield Path(name)


def unix_get(path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        chunks = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_unix_socket_replaces_a_stale_socket_file(live_server: Any, short_tmp: Path) -> None:
    path = short_tmp / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # leaves the file behind, as a crashed server would
    server = live_server("hello", "--host", f"unix://{path}")
    assert server.url == f"unix://{path}"
    reply = unix_get(path)
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b"Hello, World!")


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback on this machine")
def test_ipv6_literal_is_bracketed_in_the_url_and_served(live_server: Any) -> None:
    server = live_server("hello", "--host", "::1")
    assert server.url == f"http://[::1]:{server.port}"
    assert get("::1", server.port) == (200, b"Hello, World!")


@pytest.mark.parametrize("mode", [[], ["--reload"]], ids=["plain", "reloader"])
def test_port_in_use_prints_one_line_and_exits_1(busy_port: int, mode: list[str]) -> None:
    proc = run_apps("hello", "--port", str(busy_port), *mode)
    output = finish_process(proc, 20)
    assert proc.returncode == 1
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert f"127.0.0.1 port {busy_port}" in lines[0]
    assert "already in use" in lines[0]


@pytest.mark.parametrize("mode", [[], ["--reload"]], ids=["plain", "reloader"])
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("nosuchhost.invalid", "cannot be resolved"),
        # A documentation-only address (RFC 5737) no interface here has: EADDRNOTAVAIL.
        ("192.0.2.1", "not an address of this machine"),
        ("unix://", "needs a path"),
    ],
)
def test_a_host_that_cannot_be_listened_on_is_one_line_and_exit_1(
    host: str, expected: str, mode: list[str]
) -> None:
    proc = run_apps("hello", "--host", host, *mode)
    output = finish_process(proc, 20)
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert host in lines[0] and expected in lines[0]


def test_a_unix_socket_in_use_names_the_path_not_a_port(short_tmp: Path) -> None:
    path = str(short_tmp / "busy.sock")
    with socket.socket(socket.AF_UNIX) as busy:
        busy.bind(path)
        busy.listen()
        proc = run_apps("hello", "--host", f"unix://{path}")
        output = finish_process(proc, 20)
    assert proc.returncode == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert path in lines[0] and "in use" in lines[0]
    assert "port" not in lines[0]


def test_bind_failures_called_from_code_exit_1_with_one_logged_line(
    busy_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    for host, port in (("127.0.0.1", busy_port), ("nosuchhost.invalid", 0), ("192.0.2.1", 0)):
        caplog.clear()
        with pytest.raises(SystemExit) as exit_info:
            serving.run_simple(host, port, hello_app)
        assert exit_info.value.code == 1
        messages = [record.getMessage() for record in caplog.records]
        assert len(messages) == 1, messages
        assert messages[0].startswith(f" * Cannot listen on {host} port {port}: ")


def test_ctrl_c_exits_0(live_server: Any) -> None:
    server = live_server("hello")
    assert get(server.host, server.port)[0] == 200
    assert server.stop() == 0
    assert "Traceback" not in server.log


def test_reloaded_child_serves_the_inherited_socket_without_a_banner() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = {"WSGIDEV_RUN_MAIN": "true", "WSGIDEV_SERVER_FD": str(listener.fileno())}
        proc = run_apps("echo_environ", "--port", "1", env=env, pass_fds=[listener.fileno()])
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    status, body = get("127.0.0.1", port)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "child never answered"
                    time.sleep(0.05)
            assert status == 200
            assert json.loads(body)["SERVER_PORT"] == str(port)
        finally:
            output = finish_process(proc, 10, interrupt=True)
    assert proc.returncode == 0
    assert not RUNNING_ON.search(output), output


def test_is_running_from_reloader_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WSGIDEV_RUN_MAIN", raising=False)
    assert serving.is_running_from_reloader() is False
    monkeypatch.setenv("WSGIDEV_RUN_MAIN", "true")
    assert serving.is_running_from_reloader() is True


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"port": "5000"}, TypeError, "port must be an integer"),
        ({"port": 5000.0}, TypeError, "port must be an integer"),
        ({"port": True}, TypeError, "port must be an integer"),
        ({"port": 70000}, ValueError, "port must be between 0 and 65535"),
        ({"hostname": None}, TypeError, "hostname must be a str such as '127.0.0.1'"),
        ({"hostname": b"localhost"}, TypeError, "hostname must be a str"),
        ({"use_debugger": "false"}, TypeError, "use_debugger must be True or False, got str"),
        ({"use_reloader": "yes"}, TypeError, "use_reloader must be True or False"),
        ({"use_evalex": "no"}, TypeError, "use_evalex must be True or False"),
        ({"threaded": "no"}, TypeError, "threaded must be True or False"),
        ({"passthrough_errors": "no"}, TypeError, "passthrough_errors must be True or False"),
        ({"reloader_type": 1}, TypeError, "reloader_type must be a str"),
        ({"reloader_interval": "1"}, TypeError, "reloader_interval must be a number"),
        ({"processes": "2"}, TypeError, "processes must be an integer"),
        ({"extra_files": ["a.cfg", 1]}, TypeError, "extra_files must contain file paths"),
        ({"exclude_patterns": [None]}, TypeError, "exclude_patterns must contain glob str"),
        ({"static_files": {1: "static"}}, TypeError, "static_files keys must be URL prefixes"),
        ({"request_handler": 5}, TypeError, "request_handler must be a subclass"),
        ({"application": "app:app"}, TypeError, "application must be a WSGI callable"),
        ({"threaded": True, "processes": 2}, ValueError, "threaded=True cannot be combined"),
        ({"processes": 0}, ValueError, "processes must be at least 1"),
        ({"reloader_type": "inotify"}, ValueError, "reloader_type must be one of"),
        ({"reloader_interval": 0}, ValueError, "reloader_interval must be positive"),
        ({"static_files": ["/static"]}, TypeError, "static_files must be a mapping"),
        ({"extra_files": "settings.py"}, TypeError, "extra_files must be a list"),
        ({"request_handler": object}, TypeError, "request_handler must be a subclass"),
        ({"ssl_context": "yes"}, ValueError, "ssl_context: the only string accepted is 'adhoc'"),
        ({"ssl_context": 443}, TypeError, "ssl_context must be an ssl.SSLContext"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"hostname": "127.0.0.1", "port": 0, "application": hello_app}
    arguments.update(kwargs)
    with pytest.raises(error, match=re.escape(message)):
        serving.run_simple(**arguments)


class FakeServer:
    """Stands in for make_server's result to see what run_simple hands the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.closed = False

    def serve_forever(self) -> None:
        pass

    def server_close(self) -> None:
        self.socket.close()
        self.closed = True


def test_debugger_wraps_static_files_which_wrap_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeServer] = []

    class Static:
        def __init__(self, app: Any, exports: dict[str, Any]) -> None:
            self.app, self.exports = app, exports

    class Debugger:
        def __init__(self, app: Any, evalex: bool, mcp: bool = False) -> None:
            self.app, self.evalex, self.mcp = app, evalex, mcp

    def make_server(host: str, port: int, app: Any, **kwargs: Any) -> FakeServer:
        made.append(FakeServer(app))
        return made[-1]

    monkeypatch.setattr(wsgidev.middleware.shared_data, "SharedDataMiddleware", Static)
    monkeypatch.setattr(wsgidev.debug, "DebuggedApplication", Debugger)
    monkeypatch.setattr(serving, "make_server", make_server)
    serving.run_simple(
        "127.0.0.1", 0, hello_app, use_debugger=True, use_evalex=False, static_files={"/s": "."}
    )
    outer = made[0].app
    assert isinstance(outer, Debugger)
    assert outer.evalex is False
    assert outer.mcp is True  # wsgidev's own server lets coding agents read the errors
    assert isinstance(outer.app, Static)
    assert outer.app.exports == {"/s": "."}
    assert outer.app.app is hello_app
    assert made[0].closed


def test_serving_reexports_the_contract_names() -> None:
    for name in (
        "run_simple",
        "make_server",
        "BaseWSGIServer",
        "ThreadedWSGIServer",
        "ForkingWSGIServer",
        "WSGIRequestHandler",
        "is_running_from_reloader",
        "load_ssl_context",
        "generate_adhoc_ssl_context",
        "make_ssl_devcert",
    ):
        assert callable(getattr(serving, name)), name


@pytest.mark.parametrize(("no_color", "coloured"), [(False, True), (True, False)])
def test_banner_is_coloured_only_on_a_terminal_without_no_color(
    no_color: bool, coloured: bool
) -> None:
    import pty
    import select

    primary, secondary = pty.openpty()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apps", "hello"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=env,
        start_new_session=True,
    )
    os.close(secondary)
    output = b""
    try:
        deadline = time.monotonic() + 15
        while b"Press CTRL+C" not in output and time.monotonic() < deadline:
            if select.select([primary], [], [], 0.2)[0]:
                output += os.read(primary, 4096)
    finally:
        try:
            finish_process(proc, 10, interrupt=True)
        finally:
            os.close(primary)
    assert b"Press CTRL+C" in output
    assert (b"\x1b[" in output) is coloured
