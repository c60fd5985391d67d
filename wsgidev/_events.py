"""Server-sent events: a channel an app publishes to, and the response that streams it.

An :class:`EventStream` is an ordinary WSGI response iterable, so it works under any server:
iterated, it yields the first events, then every published event and a heartbeat comment, and
holds that server's worker for as long as the client stays. wsgidev's own server recognises
it instead: the request handler sends the head and the first events, and the I/O loop keeps
the idle connection and writes what is published (``_server.streams``). A stream then holds
no worker thread, nor the one-at-a-time server, and it closes the moment the server stops.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator

Sink = Callable[[bytes], None]
# Seconds between two heartbeat comments on an idle stream: proxies and browsers drop
# connections that stay silent, and a write is how a server learns a client left.
HEARTBEAT = 15.0
HEARTBEAT_BYTES = b": ping\n\n"

_ids = itertools.count(1)
_channels: weakref.WeakValueDictionary[int, EventChannel] = weakref.WeakValueDictionary()


def encode_event(event: str, data: object) -> bytes:
    """One event in the text/event-stream format; ``data`` goes out as one line of JSON."""
    if not event or any(c in event for c in "\r\n:"):
        raise ValueError(f"an event name is one word without line breaks, got {event!r}")
    line = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return f"event: {event}\ndata: {line}\n\n".encode("ascii")


class EventChannel:
    """Where events are published (from any thread) for every stream subscribed to it."""

    def __init__(self) -> None:
        self.id = next(_ids)  # how a forked child names this channel to its parent
        self._lock = threading.Lock()
        self._sinks: list[Sink] = []
        _channels[self.id] = self

    @staticmethod
    def by_id(channel_id: int) -> EventChannel | None:
        return _channels.get(channel_id)

    def publish(self, event: str, data: object) -> None:
        payload = encode_event(event, data)
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            sink(payload)

    def subscribe(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def unsubscribe(self, sink: Sink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)


class EventStream:
    """The response body of one event stream: ``first`` (already encoded events), then what
    ``channel`` publishes. Iterated by a foreign server, it blocks its worker between events."""

    def __init__(
        self,
        channel: EventChannel,
        first: bytes,
        heartbeat: float = HEARTBEAT,
        max_age: float | None = None,
    ) -> None:
        self.channel = channel
        self.first = first
        self.heartbeat = heartbeat
        # Iterated, the stream ends after this many seconds and the client reconnects (a long
        # poll): a foreign server's reload or stop waits for running requests, and it can
        # tell this one neither that it stops nor that its client left.
        self.max_age = max_age
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._subscribed = False
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._closed:
            return
        self.channel.subscribe(self._queue.put)
        self._subscribed = True
        yield self.first
        ends = None if self.max_age is None else time.monotonic() + self.max_age
        while not self._closed:
            wait = self.heartbeat if ends is None else min(self.heartbeat, ends - time.monotonic())
            if wait <= 0:
                return
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                if ends is not None and time.monotonic() >= ends:
                    return
                item = HEARTBEAT_BYTES  # a write to a departed client fails: the server ends it
            if item is None:
                return
            yield item

    def once(self) -> list[bytes]:
        """The first events alone, for a server that can keep neither a worker nor the
        connection (a forked child over TLS): the client reconnects after its retry delay."""
        return [self.first]

    def close(self) -> None:
        """End the stream (PEP 3333 calls this when the response is over)."""
        self._closed = True
        if self._subscribed:
            self._subscribed = False
            self.channel.unsubscribe(self._queue.put)
            self._queue.put(None)
