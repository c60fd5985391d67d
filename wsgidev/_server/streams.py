"""Event streams kept by the I/O loop after the request that opened them (see _events).

The runner that served the request hands the connection back with the outcome ``"stream"``,
and the loop adopts it here; from then on only the loop's thread touches it. An event
published on a channel (from any thread) goes into the inbox and wakes the loop, which writes
it to every stream of that channel without blocking. A client that does not
read (its buffer full) or left loses its stream; the browser reconnects by itself.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._events import HEARTBEAT, HEARTBEAT_BYTES, EventChannel

if TYPE_CHECKING:
    from .connection import Connection


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the loop needs to keep writing a stream: whose events, and how they are framed."""

    channel_id: int
    chunked: bool  # HTTP/1.1 chunked framing; otherwise the body ends when the loop closes
    heartbeat: float = HEARTBEAT


class StreamKeeper:
    """The loop's side of event streams; every method but the sinks runs in the loop's thread."""

    def __init__(self, wake: Callable[[], None], close: Callable[[Connection], None]) -> None:
        self._wake = wake
        self._close = close
        # (channel id, payload) from a publisher's thread.
        self._inbox: deque[tuple[int, bytes]] = deque()
        self._subscribed: dict[int, Callable[[bytes], None]] = {}
        self._streams: dict[int, Connection] = {}  # by fd; the loop thread's alone

    def __len__(self) -> int:
        return len(self._streams)

    # -- messages from other threads -----------------------------------------------------------

    def _sink_for(self, channel_id: int) -> Callable[[bytes], None]:
        inbox, wake = self._inbox, self._wake

        def sink(payload: bytes) -> None:
            inbox.append((channel_id, payload))
            wake()

        return sink

    # -- the loop's thread ---------------------------------------------------------------------

    def drain(self) -> None:
        """Write every published event to the streams of its channel."""
        inbox = self._inbox
        while inbox:
            channel_id, payload = inbox.popleft()
            for conn in list(self._streams.values()):
                info = conn.stream
                if info is not None and info.channel_id == channel_id:
                    self._write(conn, payload)

    def adopt(self, conn: Connection, watch: Callable[[Connection], None]) -> None:
        """Keep ``conn`` (its head and first events sent, ``conn.stream`` set)."""
        info = conn.stream
        channel = EventChannel.by_id(info.channel_id) if info is not None else None
        if info is None or channel is None:
            self._close(conn)
            return
        if info.channel_id not in self._subscribed:
            sink = self._sink_for(info.channel_id)
            self._subscribed[info.channel_id] = sink
            channel.subscribe(sink)
        conn.state = "stream"
        conn.buffer.clear()
        conn.deadline = time.monotonic() + info.heartbeat
        self._streams[conn.fd] = conn
        watch(conn)  # readable: the client closed (or sent something it should not)

    def on_readable(self, conn: Connection, watch: Callable[[Connection], None]) -> None:
        """A stream's client sends nothing; readable means it went away."""
        sock = conn.sock
        try:
            data = sock.recv(4096)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            watch(conn)
            return
        except OSError:
            data = b""
        if data:
            watch(conn)  # ignored: an event stream's request has no further requests
        else:
            self.end(conn)

    def beat(self, conn: Connection, now: float) -> None:
        """A heartbeat on a stream whose deadline passed (called by the loop's sweep)."""
        info = conn.stream
        assert info is not None
        conn.deadline = now + info.heartbeat
        self._write(conn, HEARTBEAT_BYTES)

    def _write(self, conn: Connection, payload: bytes) -> None:
        info = conn.stream
        assert info is not None
        data = b"%x\r\n%s\r\n" % (len(payload), payload) if info.chunked else payload
        try:
            sent = conn.sock.send(data)
        except (OSError, ValueError):
            sent = -1
        if sent != len(data):
            # A client that does not read within a whole socket buffer, or that left: a partial
            # event cannot be finished later without blocking, so the stream ends here.
            self.end(conn, polite=False)

    def end(self, conn: Connection, polite: bool = True) -> None:
        """Close one stream; ``polite`` ends a chunked body properly first."""
        if self._streams.get(conn.fd) is conn:
            del self._streams[conn.fd]
        info = conn.stream
        if polite and info is not None and info.chunked:
            with contextlib.suppress(OSError, ValueError):
                conn.sock.send(b"0\r\n\r\n")
        conn.stream = None
        self._close(conn)

    def end_all(self) -> None:
        """The server stops (restart, Ctrl+C, shutdown): every stream ends now, and clients
        reconnect to whichever server answers next."""
        self.drain()
        for conn in list(self._streams.values()):
            self.end(conn)
        for channel_id, sink in self._subscribed.items():
            channel = EventChannel.by_id(channel_id)
            if channel is not None:
                channel.unsubscribe(sink)
        self._subscribed.clear()
