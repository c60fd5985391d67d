"""Listening sockets: TCP (IPv4/IPv6, port 0) and Unix domain sockets, ready for the I/O loop."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import stat
from dataclasses import dataclass

from .._checks import check_port

LISTEN_BACKLOG = 1024


@dataclass(slots=True)
class Listener:
    """The listening socket, its TLS context, and the Unix socket file this server created."""

    sock: socket.socket
    ssl_context: ssl.SSLContext | None = None
    unix_path: str | None = None  # removed when the server closes, never by a forked child

    def close(self, remove_file: bool = True) -> None:
        """Stop listening; idempotent."""
        self.sock.close()
        if self.unix_path is not None and remove_file:
            with contextlib.suppress(OSError):
                os.unlink(self.unix_path)
        self.unix_path = None


def bind_socket(host: str, port: int) -> socket.socket:
    """Return a listening, non-blocking socket for ``host``/``port``.

    ``host`` may be ``unix://PATH`` (a stale socket file left by a dead server is removed), an
    IPv6 literal with or without brackets, or a name; ``port=0`` lets the OS pick a free port.
    """
    check_port(port)
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, got {type(host).__name__}")
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        if not path:
            raise ValueError("host 'unix://' needs a path, e.g. unix:///tmp/app.sock")
        _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except BaseException:
            sock.close()
            raise
    else:
        sock = _bind_inet(host, port)
    try:
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_inet(host: str, port: int) -> socket.socket:
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(name or None, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"host {host!r} cannot be resolved: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and name in ("::", ""):
            # Answer IPv4 clients too, so every address the banner lists for "::" works.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        if hasattr(socket, "TCP_DEFER_ACCEPT"):
            # Linux: accept() returns once the first bytes arrived, so they can be read at once.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)  # nobody listens: left behind by a server that died
        return
    except OSError as exc:
        raise OSError(errno.EADDRINUSE, f"{path} is in use ({exc})") from None
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"another server is listening on {path}")
