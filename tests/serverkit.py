"""Helpers for the server tests: run a server in a thread, talk raw HTTP/1.1 over a socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from wsgidev._server.servers import BaseWSGIServer, ServerSettings, ThreadedWSGIServer, make_server

MODES = ("base", "threaded", "forking")
SETTINGS = {field.name for field in fields(ServerSettings)}


@contextmanager
def running(
    app: Callable[..., Any], mode: str = "base", host: str = "127.0.0.1", **options: Any
) -> Iterator[BaseWSGIServer]:
    """A server for ``app`` in a background thread. ``options`` are make_server arguments,
    ServerSettings fields (timeouts, limits), ``max_threads`` (the threaded server's pool) or
    server attributes set before it starts (``log_colour``)."""
    make_args = {
        k: options.pop(k)
        for k in list(options)
        if k in ("request_handler", "passthrough_errors", "ssl_context", "fd")
    }
    max_threads = options.pop("max_threads", None)  # a pool size: the threaded server's only
    settings = ServerSettings(**{k: options.pop(k) for k in list(options) if k in SETTINGS})
    server: BaseWSGIServer
    if max_threads is not None and mode == "threaded":
        server = ThreadedWSGIServer(
            host,
            0,
            app,
            make_args.get("request_handler"),
            make_args.get("passthrough_errors", False),
            make_args.get("ssl_context"),
            make_args.get("fd"),
            max_threads=max_threads,
            settings=settings,
        )
    else:
        server = make_server(
            host,
            0,
            app,
            threaded=mode == "threaded",
            processes=3 if mode == "forking" else 1,
            settings=settings,
            **make_args,
        )
    for name, value in options.items():  # plain server attributes, such as log_colour
        setattr(server, name, value)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.serve_forever()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=serve, name="test-server", daemon=True)
    thread.start()
    server.thread = thread  # type: ignore[attr-defined]
    server.errors = errors  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.wait_idle(5)  # requests in flight finish (and log) inside this test
        server.server_close()
        thread.join(5)


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = b""
    complete: bool = True

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Client:
    """A raw HTTP/1.1 client on one socket; every wait is bounded by ``timeout``."""

    sock: socket.socket
    timeout: float = 5.0
    buffer: bytearray = field(default_factory=bytearray)

    @classmethod
    def connect(
        cls, server: BaseWSGIServer | tuple[str, int] | str, timeout: float = 5.0
    ) -> Client:
        if isinstance(server, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(server)
        else:
            address = (server.host, server.port) if isinstance(server, BaseWSGIServer) else server
            sock = socket.create_connection(address, timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        return cls(sock, timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def get(
        self, path: str = "/", headers: str = "", version: str = "HTTP/1.1", method: str = "GET"
    ) -> Reply:
        self.send(f"{method} {path} {version}\r\nHost: test\r\n{headers}\r\n".encode("latin-1"))
        return self.reply(head_only=method == "HEAD")

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def read_until(self, marker: bytes) -> bytes:
        deadline = time.monotonic() + self.timeout
        while marker not in self.buffer:
            if time.monotonic() > deadline or not self._fill():
                raise ConnectionError(
                    f"no {marker!r} before EOF/timeout; got {bytes(self.buffer)!r}"
                )
        index = self.buffer.index(marker) + len(marker)
        data = bytes(self.buffer[:index])
        del self.buffer[:index]
        return data

    def read_exact(self, size: int) -> bytes:
        deadline = time.monotonic() + self.timeout
        while len(self.buffer) < size:
            if time.monotonic() > deadline or not self._fill():
                raise ConnectionError(f"EOF after {len(self.buffer)} of {size} bytes")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_to_eof(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def reply(self, head_only: bool = False) -> Reply:
        raw = self.read_until(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        _, code, reason = ([*lines[0].split(" ", 2), ""])[:3]
        headers = [tuple(line.split(": ", 1)) for line in lines[1:] if line]
        reply = Reply(int(code), reason, headers, b"", raw)  # type: ignore[arg-type]
        if head_only or reply.status in (100, 204, 304):
            return reply
        length = reply.header("Content-Length")
        if reply.header("Transfer-Encoding") == "chunked":
            parts = []
            try:
                while True:
                    size = int(self.read_until(b"\r\n")[:-2], 16)
                    if size == 0:
                        self.read_until(b"\r\n")
                        break
                    parts.append(self.read_exact(size))
                    self.read_exact(2)
            except (ConnectionError, OSError):
                reply.complete = False
            reply.body = b"".join(parts)
        elif length is not None:
            reply.body = self.read_exact(int(length))
        else:
            reply.body = self.read_to_eof()
        return reply

    def is_closed(self, timeout: float = 2.0) -> bool:
        """True when the server closed the connection (EOF or reset) within ``timeout``."""
        if self.buffer:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(self.timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
