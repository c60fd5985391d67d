"""Sockets and lifecycle: unix sockets, IPv6, port 0, fd handover, TLS, shutdown and Ctrl+C."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.serverkit import Client, hello, running
from wsgidev._server import poll as _server_poll
from wsgidev._server.servers import (
    BaseWSGIServer,
    ForkingWSGIServer,
    ThreadedWSGIServer,
    bind_socket,
    make_server,
)


def environ_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ["QUERY_STRING"]))
    data = {k: v for k, v in environ.items() if isinstance(v, str)}
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


# -- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["5000", 5000.0, None, True])
def test_a_port_that_is_not_an_int_is_a_type_error(port: Any) -> None:
    with pytest.raises(TypeError, match="port must be an integer"):
        make_server("127.0.0.1", port, hello)


def test_port_out_of_range_and_bad_combinations() -> None:
    with pytest.raises(ValueError, match="port"):
        make_server("127.0.0.1", 70000, hello)
    with pytest.raises(ValueError, match="either multi-threaded or multi-process; choose one"):
        make_server("127.0.0.1", 0, hello, threaded=True, processes=2)
    with pytest.raises(ValueError, match="processes"):
        make_server("127.0.0.1", 0, hello, processes=0)


@pytest.mark.parametrize("app", ["not callable", None, 42])
def test_an_app_that_is_not_callable_is_a_type_error(app: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"app must be a WSGI callable .*, got {re.escape(repr(app))}"
    ):
        make_server("127.0.0.1", 0, app)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"processes": "2"}, "processes must be an integer, got str"),
        ({"processes": 2.5}, "processes must be an integer, got float"),
        ({"processes": True}, "processes must be an integer, got bool"),
        ({"fd": "3"}, "fd must be an int file descriptor or None, got str"),
        ({"fd": 3.0}, "fd must be an int file descriptor or None, got float"),
    ],
)
def test_arguments_of_the_wrong_type_are_type_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make_server("127.0.0.1", 0, hello, **kwargs)


def test_make_server_picks_the_class() -> None:
    for kwargs, cls in (
        ({}, BaseWSGIServer),
        ({"threaded": True}, ThreadedWSGIServer),
        ({"processes": 2}, ForkingWSGIServer),
    ):
        server = make_server("127.0.0.1", 0, hello, **kwargs)
        try:
            assert type(server) is cls
            assert server.port > 0 and server.host == "127.0.0.1"
            assert server.app is hello and server.ssl_context is None
            assert server.socket.getsockname()[1] == server.port
        finally:
            server.server_close()


def test_port_in_use_raises_the_os_error() -> None:
    with running(hello) as server, pytest.raises(OSError) as caught:
        make_server("127.0.0.1", server.port, hello)
    assert caught.value.errno == 98 or "in use" in str(caught.value).lower()


# -- addresses -------------------------------------------------------------------------------


def test_unix_socket_and_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a dead server's leftover file
    with running(environ_app, host=f"unix://{path}") as server, Client.connect(str(path)) as client:
        assert server.host == f"unix://{path}"
        env = json.loads(client.get("/x").body)
        assert env["REMOTE_ADDR"] == "<local>"
        assert env["SERVER_NAME"] == str(path)
        assert client.get("/y").status == 200  # keep-alive
    assert not path.exists()  # removed by server_close


def test_unix_socket_refuses_to_replace_a_live_server_or_a_file(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with running(hello, host=f"unix://{path}"), pytest.raises(OSError, match="another server"):
        bind_socket(f"unix://{path}", 0)
    regular = tmp_path / "file.txt"
    regular.write_text("keep me")
    with pytest.raises(OSError, match="not a socket"):
        bind_socket(f"unix://{regular}", 0)
    assert regular.read_text() == "keep me"


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_literals(host: str) -> None:
    with running(environ_app, host=host) as server:
        assert server.host == "::1"
        sock = socket.create_connection(("::1", server.port), timeout=5)
        with Client(sock) as client:
            env = json.loads(client.get("/").body)
    assert env["REMOTE_ADDR"] == "::1"
    assert env["SERVER_NAME"] == "::1"


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback on this machine")
def test_binding_all_ipv6_interfaces_answers_ipv4_too() -> None:
    with running(hello, host="::") as server:
        with Client.connect(("127.0.0.1", server.port)) as client:
            assert client.get("/").status == 200
        with Client(socket.create_connection(("::1", server.port), timeout=5)) as client:
            assert client.get("/").status == 200


def test_fd_handover() -> None:
    listener = bind_socket("127.0.0.1", 0)
    port = listener.getsockname()[1]
    with running(hello, fd=listener.detach()) as server:
        assert server.port == port
        with Client.connect(("127.0.0.1", port)) as client:
            assert client.get("/").body == b"Hello, World!"


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def server_context(tls_files: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


def tls_client(server: BaseWSGIServer, tls_files: tuple[str, str]) -> Client:
    context = ssl.create_default_context(cafile=tls_files[0])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return Client(context.wrap_socket(raw, server_hostname="127.0.0.1"))


@pytest.mark.parametrize("mode", ["base", "threaded", "forking"])
def test_https_with_keep_alive(mode: str, tls_files: tuple[str, str]) -> None:
    context = server_context(tls_files)
    with (
        running(environ_app, mode, ssl_context=context) as server,
        tls_client(server, tls_files) as client,
    ):
        reply = client.get("/secure")
        assert json.loads(reply.body)["wsgi.url_scheme"] == "https"
        assert reply.header("Connection") is None
        client.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [json.loads(client.reply().body)["PATH_INFO"] for _ in range(2)] == ["/a", "/b"]
        time.sleep(0.2)  # after a pause the same connection still carries the next request
        assert json.loads(client.get("/c").body)["PATH_INFO"] == "/c"


def test_a_forked_child_keeps_an_idle_tls_connection_only_briefly(
    tls_files: tuple[str, str],
) -> None:
    context = server_context(tls_files)
    with running(environ_app, "forking", ssl_context=context, keep_alive_timeout=0.3) as server:
        with tls_client(server, tls_files) as client:
            assert client.get("/").status == 200
            assert client.is_closed(timeout=3)
        with tls_client(server, tls_files) as client:  # the child's slot is free again
            assert client.get("/").status == 200


def test_sendfile_over_tls(tls_files: tuple[str, str], tmp_path: Path) -> None:
    payload = os.urandom(500_000)
    (tmp_path / "f.bin").write_bytes(payload)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](open(tmp_path / "f.bin", "rb"))

    with (
        running(app, ssl_context=server_context(tls_files)) as server,
        tls_client(server, tls_files) as client,
    ):
        assert client.get("/").body == payload


@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_a_silent_tls_client_does_not_stall_others(mode: str, tls_files: tuple[str, str]) -> None:
    with running(hello, mode, ssl_context=server_context(tls_files), max_threads=1) as server:
        silent = socket.create_connection(("127.0.0.1", server.port))
        try:
            started = time.monotonic()
            with tls_client(server, tls_files) as client:
                assert client.get("/").status == 200
            assert time.monotonic() - started < 2
        finally:
            silent.close()


def test_tls_handshake_timeout_and_plain_http_on_the_tls_port(
    tls_files: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with running(hello, ssl_context=server_context(tls_files), tls_handshake_timeout=0.3) as server:
        with Client.connect(server) as silent:
            assert silent.is_closed(timeout=3)
        with Client.connect(server) as plain:
            plain.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert plain.is_closed(timeout=3)
    assert "TLS handshake timed out" in caplog.text
    assert "plain HTTP to this HTTPS server" in caplog.text


# -- stopping --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["base", "threaded", "forking"])
def test_shutdown_returns_within_100_ms(mode: str) -> None:
    with running(hello, mode) as server:
        with Client.connect(server) as client:
            client.get("/")  # an idle keep-alive connection is open
            assert server.wait_idle(1)
            started = time.monotonic()
            server.shutdown()
            elapsed = time.monotonic() - started
        server.thread.join(1)  # type: ignore[attr-defined]
        assert not server.thread.is_alive()  # type: ignore[attr-defined]
    assert elapsed < 0.1


def test_serve_forever_can_restart_after_shutdown() -> None:
    server = make_server("127.0.0.1", 0, hello)
    try:
        for _ in range(2):
            thread = threading.Thread(target=server.serve_forever)
            thread.start()
            with Client.connect(server) as client:
                assert client.get("/").status == 200
            server.shutdown()
            thread.join(5)
    finally:
        server.server_close()


SERVE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from wsgidev._server.servers import ServerSettings, make_server
    def app(environ, start_response):
        print(" * app called", flush=True)
        time.sleep(float(environ["QUERY_STRING"] or 0))
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]
    mode = sys.argv[1]
    settings = ServerSettings(graceful_timeout=float(sys.argv[2]))
    server = make_server("127.0.0.1", 0, app, threaded=mode == "threaded", processes=2 if mode == "forking" else 1, settings=settings)
    print(" * Running on http://127.0.0.1:%d" % server.port, flush=True)
    server.serve_forever()
    server.server_close()
    print(" * stopped", flush=True)
    """
)


def start_script(mode: str, graceful_timeout: float = 3.0) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, mode, str(graceful_timeout)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(line.rsplit(":", 1)[1])


def wait_for_output(proc: subprocess.Popen[str], text: str, timeout: float = 10) -> None:
    """Read the script's output until it holds ``text`` (the app was called, the server saw
    the Ctrl+C): a positive signal instead of a pause. What is read here is consumed."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"the server never printed {text!r}; it printed {seen!r}")
        block = os.read(fd, 4096)
        if not block:
            raise AssertionError(f"the server exited without printing {text!r}: {seen!r}")
        seen += block


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["base", "threaded", "forking"])
def test_ctrl_c_lets_the_request_in_flight_finish_and_exits_0(mode: str) -> None:
    proc, port = start_script(mode)
    try:
        with Client.connect(("127.0.0.1", port)) as client:
            client.send(b"GET /?1.0 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for_output(proc, "app called")
            proc.send_signal(signal.SIGINT)
            reply = client.reply()
            assert (reply.status, reply.body) == (200, b"done")
            if mode != "forking":  # a child learns of the Ctrl+C only from the parent closing
                assert reply.header("Connection") == "close"
            assert client.is_closed()
        assert proc.wait(5) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        proc.kill()
        output = proc.communicate()[0]
    assert "Stopping" in output and "stopped" in output
    assert "Traceback" not in output


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["base", "threaded", "forking"])
def test_after_ctrl_c_new_connections_are_refused_while_requests_finish(mode: str) -> None:
    proc, port = start_script(mode)
    try:
        with Client.connect(("127.0.0.1", port)) as client:
            client.send(b"GET /?1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for_output(proc, "app called")
            proc.send_signal(signal.SIGINT)
            wait_for_output(proc, "Stopping")
            # The listener closes as the loop stops: soon after the message, long before the
            # request in flight ends (1.5 s).
            deadline = time.monotonic() + 1.0
            refused = False
            while not refused and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    time.sleep(0.01)
                except (ConnectionRefusedError, ConnectionResetError):
                    # Reset: connected just as the listener closed, which drops the backlog.
                    refused = True
            assert refused, "still accepting connections 1 s after Ctrl+C"
            assert client.reply().body == b"done"  # the request in flight still finishes
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["base", "threaded", "forking"])
def test_a_second_ctrl_c_exits_at_once(mode: str) -> None:
    proc, port = start_script(mode)
    try:
        with Client.connect(("127.0.0.1", port)) as client:
            client.send(b"GET /?60 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for_output(proc, "app called")
            proc.send_signal(signal.SIGINT)
            wait_for_output(proc, "Stopping")
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(5) == 0
            assert time.monotonic() - started < 2
    finally:
        proc.kill()
        proc.communicate()


# -- the portable poller ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_the_selector_poller_used_where_epoll_is_missing(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(_server_poll.select, "epoll")
    assert isinstance(_server_poll.make_poller(), _server_poll.SelectorPoller)
    with (
        running(environ_app, mode, keep_alive_timeout=0.5) as server,
        Client.connect(server) as idle,
        Client.connect(server) as client,
    ):
        assert idle.get("/").status == 200
        client.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [json.loads(client.reply().body)["PATH_INFO"] for _ in range(2)] == ["/1", "/2"]
        assert client.get("/3").status == 200
        assert idle.is_closed(timeout=3)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["base", "threaded", "forking"])
def test_a_request_stuck_past_the_grace_period_does_not_keep_the_server_alive(mode: str) -> None:
    proc, port = start_script(mode, graceful_timeout=0.5)
    try:
        with Client.connect(("127.0.0.1", port)) as client:
            client.send(b"GET /?60 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for_output(proc, "app called")
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(5) == 0
            assert time.monotonic() - started < 3
            assert client.is_closed()
    finally:
        proc.kill()
        output = proc.communicate()[0]
    assert "Requests still running after 0.5s; stopping anyway" in output
    assert "stopped" in output


@pytest.mark.parametrize("mode", ["base", "threaded"])
def test_a_graceful_stop_serves_a_request_still_in_its_tls_handshake(
    mode: str, tls_files: tuple[str, str]
) -> None:
    # A reloader restart stops the old server on every save: a client that connected just
    # before must get its answer, not a closed connection mid-handshake.
    with running(hello, mode, ssl_context=server_context(tls_files)) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        deadline = time.monotonic() + 5
        while not server.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.open_connections, "the server never accepted the connection"
        server.shutdown()
        stopper = threading.Thread(target=server.stop_gracefully)
        stopper.start()
        try:
            context = ssl.create_default_context(cafile=tls_files[0])
            with Client(context.wrap_socket(raw, server_hostname="127.0.0.1")) as client:
                reply = client.get("/")
                assert (reply.status, reply.body) == (200, b"Hello, World!")
                assert reply.header("Connection") == "close"
        finally:
            stopper.join(10)
        assert not stopper.is_alive()


def test_a_graceful_stop_does_not_wait_for_idle_keep_alive_connections() -> None:
    with running(hello, "threaded") as server, Client.connect(server) as client:
        assert client.get("/").status == 200  # now idle between requests
        server.shutdown()
        started = time.monotonic()
        server.stop_gracefully()
        assert time.monotonic() - started < server.settings.arrival_timeout
        assert client.is_closed()
