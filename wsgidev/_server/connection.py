"""One client connection, as the I/O loop keeps it between requests."""

from __future__ import annotations

from socket import socket as Socket
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .._http.head import RequestHead
    from .._http.spool import BodyReceiver, SpooledBody
    from .streams import StreamInfo

State = Literal["handshake", "read", "body", "busy", "linger", "stream"]


class Connection:
    """One client connection; the loop's, except while a runner serves a request on it."""

    __slots__ = (
        "address",
        "body_ends",
        "buffer",
        "deadline",
        "fd",
        "head",
        "received",
        "receiver",
        "remote_addr",
        "remote_port",
        "scan",
        "served",
        "sock",
        "state",
        "stream",
        "tls",
        "watching",
    )

    def __init__(self, sock: Socket, address: Any, deadline: float, tls: bool = False) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.address = address
        if isinstance(address, tuple):
            self.remote_addr: str = address[0]
            self.remote_port: int = address[1]
        else:  # a Unix socket peer has no address
            self.remote_addr = "<local>"
            self.remote_port = 0
        self.buffer = bytearray()
        self.scan = 0
        self.deadline = deadline
        self.body_ends = 0.0  # while a body arrives: when it must have arrived whole
        self.tls = tls
        self.state: State = "handshake" if tls else "read"
        self.head: RequestHead | None = None  # parsed while its body is still arriving
        self.receiver: BodyReceiver | None = None  # spools a body arriving ahead of the app
        self.received: SpooledBody | None = None  # a whole body, for the handler to pick up
        self.served = 0  # requests handed to the runner; 0 means the client is yet to send one
        self.watching = 0  # what the poller watches for: 0 nothing, 1 readable, 2 writable
        self.stream: StreamInfo | None = None  # an event stream the loop keeps (_server.streams)

    def is_arriving(self) -> bool:
        """Whether a request has started (or is about to start) arriving on this connection."""
        if self.state in ("handshake", "body"):
            return True
        return self.state == "read" and (bool(self.buffer) or self.served == 0)

    def drop_body(self) -> None:
        """Release a body received (or being received) ahead of the app."""
        self.head = None
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None
        if self.received is not None:
            self.received.release()
            self.received = None
