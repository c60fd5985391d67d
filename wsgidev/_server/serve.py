"""The requests of one connection, one after another, in a runner's thread (or child).

A pipelined request already buffered is served at once; the connection then goes back to the
loop with its outcome: kept alive, lingering, closed, or handed over as an event stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Literal, Protocol

from .._http.head import ClientDisconnected, HTTPError, RequestHead
from .._http.io import send_all
from .._http.log import log_rejected
from .arrival import RECV_SIZE, next_head
from .connection import Connection
from .runners import Outcome
from .streams import StreamInfo


class RequestHandler(Protocol):
    """What the loop needs of the object that serves one request (WSGIRequestHandler)."""

    stream_info: StreamInfo | None

    @property
    def client_gone(self) -> bool: ...

    def handle(self) -> bool: ...

    def closing_mode(self) -> Literal["close", "linger"]: ...


HandlerFactory = Callable[[Connection, RequestHead], RequestHandler]


def serve_requests(
    conn: Connection,
    head: RequestHead,
    handler_factory: HandlerFactory,
    draining: Callable[[], bool],
    error_response: Callable[[HTTPError], bytes],
) -> Outcome:
    """Serve ``head`` and the complete requests buffered after it; return the outcome."""
    while True:
        handler = handler_factory(conn, head)
        if not handler.handle():
            if handler.stream_info is not None and not handler.client_gone:
                conn.stream = handler.stream_info
                return "stream"
            return "close" if handler.client_gone else handler.closing_mode()
        if draining():
            return "linger"
        if conn.tls:
            _pull_tls_pending(conn)
        if not conn.buffer:
            return "keep"
        try:
            following = next_head(conn)
        except HTTPError as error:
            log_rejected(conn.remote_addr, "", error)
            with contextlib.suppress(ClientDisconnected):
                send_all(conn.sock, error_response(error), 1.0)
            return "linger"
        if following is None:
            return "keep"
        head = following


def _pull_tls_pending(conn: Connection) -> None:
    """Decrypted bytes TLS holds beyond what the handler read: the next pipelined request."""
    sock = conn.sock
    with contextlib.suppress(OSError):
        while (pending := sock.pending()) and len(conn.buffer) < RECV_SIZE * 2:  # type: ignore[attr-defined]  # SSLSocket
            conn.buffer += sock.recv(pending)
