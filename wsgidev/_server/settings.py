"""The server's timeouts and limits, fixed when the server is built.

One frozen value passed to the loop, the runners and the handler, so no class reads a number
another class may change under it. Build a variant with ``dataclasses.replace`` or by keyword:
``make_server(..., settings=ServerSettings(keep_alive_timeout=5))``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .._checks import check_setting

__all__ = ["ServerSettings"]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Timeouts (seconds) and limits (bytes) of one server; every field has a working default."""

    # An idle keep-alive connection is closed after this long.
    keep_alive_timeout: float = 30.0
    # A request head must arrive whole within this long of its first byte (408 after it).
    request_head_timeout: float = 10.0
    tls_handshake_timeout: float = 10.0
    # Between two pieces of a request body, and for a whole body (408 after either).
    body_timeout: float = 30.0
    body_total_timeout: float = 300.0
    # The loop receives every request body whole (in memory, then in a temporary file) before
    # a worker or the inline runner sees the request, in every mode: a client that stalls
    # mid-upload holds no worker. ``Expect: 100-continue`` gets its 100 from the loop once the
    # head passed its checks (a body over max_body_size gets 413 and no 100). False lets the
    # app stream the body from the connection instead, as it arrives.
    read_body_ahead: bool = True
    # A body received ahead larger than this gets 413 (None: no limit).
    max_body_size: int | None = 1024 * 1024 * 1024
    # Received bodies stay in memory up to this size, then go to a temporary file.
    body_memory_limit: int = 1024 * 1024
    # A client that takes no response bytes for this long is dropped.
    send_timeout: float = 30.0
    # After the last response on a closing connection: how long its input is still drained.
    linger_timeout: float = 2.0
    # Unread request body is dropped for at most this long to keep the connection; in the
    # one-at-a-time server that time is taken from every other client, so it is short.
    drain_timeout: float = 0.5
    # On a graceful stop: how long requests in flight may still run.
    graceful_timeout: float = 5.0
    # On a graceful stop, a request still arriving (TLS handshake, partial head or body, a new
    # client yet to send) gets this long to become a request before idle connections close.
    arrival_timeout: float = 0.5

    def __post_init__(self) -> None:
        for field in fields(self):
            check_setting(field.name, getattr(self, field.name))

    @property
    def sweep_interval(self) -> float:
        """How often the loop looks for connections past their deadline."""
        shortest = min(
            self.keep_alive_timeout,
            self.request_head_timeout,
            self.tls_handshake_timeout,
            self.linger_timeout,
        )
        return max(0.02, min(0.5, shortest / 4))
