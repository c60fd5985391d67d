"""Blocking-with-timeout reads and writes on the non-blocking sockets the I/O loop hands out.

Sockets stay non-blocking for their whole life: the loop never waits on them, and a runner tries
the call first and waits for readiness only when the kernel (or TLS) says it would block. That
saves the poll() CPython makes before every call on a socket with a timeout."""

from __future__ import annotations

import os
import select
import socket
import ssl
from typing import BinaryIO

from .head import ClientDisconnected

RECV_SIZE = 64 * 1024

if hasattr(select, "poll"):

    def wait_ready(sock: socket.socket, write: bool, timeout: float) -> bool:
        """Wait until ``sock`` is readable (or writable); False when ``timeout`` passed first."""
        poller = select.poll()
        poller.register(sock, select.POLLOUT if write else select.POLLIN)
        return bool(poller.poll(max(timeout, 0.0) * 1000))

else:  # pragma: no cover - Windows

    def wait_ready(sock: socket.socket, write: bool, timeout: float) -> bool:
        """Wait until ``sock`` is readable (or writable); False when ``timeout`` passed first."""
        if write:
            ready = select.select([], [sock], [], max(timeout, 0.0))[1]
        else:
            ready = select.select([sock], [], [], max(timeout, 0.0))[0]
        return bool(ready)


def recv_some(sock: socket.socket, timeout: float, size: int = RECV_SIZE) -> bytes:
    """Return the next bytes from ``sock`` (b"" at end of stream).

    Raises ClientDisconnected when the peer resets or sends nothing for ``timeout`` seconds.
    """
    while True:
        try:
            return sock.recv(size)
        except (BlockingIOError, ssl.SSLWantReadError):
            write = False
        except ssl.SSLWantWriteError:
            write = True
        except OSError as exc:
            raise ClientDisconnected(f"connection lost while reading: {exc}") from exc
        if not wait_ready(sock, write, timeout):
            raise ClientDisconnected(f"client sent nothing for {timeout:g}s")


def send_all(sock: socket.socket, data: bytes | bytearray | memoryview, timeout: float) -> None:
    """Send every byte of ``data``; ClientDisconnected when the client is gone or stalls."""
    try:
        sent = sock.send(data)
    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
        sent = 0
    except OSError as exc:
        raise ClientDisconnected(f"connection lost while writing: {exc}") from exc
    if sent == len(data):
        return
    view = memoryview(data)[sent:]
    while view:
        try:
            view = view[sock.send(view) :]
            continue
        except (BlockingIOError, ssl.SSLWantWriteError):
            write = True
        except ssl.SSLWantReadError:
            write = False
        except OSError as exc:
            error = ClientDisconnected(f"connection lost while writing: {exc}")
            error.sent = len(data) - len(view)
            raise error from exc
        if not wait_ready(sock, write, timeout):
            error = ClientDisconnected(f"client accepted nothing for {timeout:g}s")
            error.sent = len(data) - len(view)
            raise error


def send_file(sock: socket.socket, file: BinaryIO, offset: int, count: int, timeout: float) -> int:
    """Send ``count`` bytes of ``file`` from ``offset``; return how many were sent.

    Plain sockets use ``os.sendfile`` (no copy through Python); TLS sockets read and send. Fewer
    bytes than asked are sent only when the file is shorter than expected.
    """
    if isinstance(sock, ssl.SSLSocket) or not hasattr(os, "sendfile"):
        return _copy_file(sock, file, offset, count, timeout)
    out_fd, in_fd = sock.fileno(), file.fileno()
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(out_fd, in_fd, offset + sent, min(count - sent, 1 << 30))
        except BlockingIOError:
            if not wait_ready(sock, True, timeout):
                error = ClientDisconnected(f"client accepted nothing for {timeout:g}s")
                error.sent = sent
                raise error from None
            continue
        except OSError as exc:
            error = ClientDisconnected(f"connection lost while writing: {exc}")
            error.sent = sent
            raise error from exc
        if n == 0:
            break
        sent += n
    return sent


def _copy_file(sock: socket.socket, file: BinaryIO, offset: int, count: int, timeout: float) -> int:
    file.seek(offset)
    sent = 0
    while sent < count:
        block = file.read(min(count - sent, 256 * 1024))
        if not block:
            break
        try:
            send_all(sock, block, timeout)
        except ClientDisconnected as error:
            error.sent += sent
            raise
        sent += len(block)
    return sent
