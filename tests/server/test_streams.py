"""Event streams under wsgidev's server: the I/O loop keeps them, so they hold no worker, get
every published event, and end the moment the server stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.serverkit import MODES, Client, running
from wsgidev._events import EventChannel, EventStream, encode_event
from wsgidev._server.servers import BaseWSGIServer

CHANNEL = EventChannel()
HELLO = encode_event("hello", {"boot": "b1"})
_barrier = threading.Barrier(4, timeout=10)


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/events":
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return EventStream(CHANNEL, HELLO, heartbeat=float(environ.get("QUERY_STRING") or 15))
    if path == "/together":
        _barrier.wait()  # four requests must run at the same time to get past this
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def open_stream(server: BaseWSGIServer, query: str = "") -> Client:
    client = Client.connect(server)
    client.send(f"GET /events?{query} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    head = client.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Transfer-Encoding: chunked" in head
    assert HELLO in client.read_until(HELLO)
    return client


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def streams() -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


def test_open_streams_hold_no_worker_thread(streams: list[Client]) -> None:
    """Twelve open tabs beside a pool of four threads: four requests still run together."""
    _barrier.reset()
    with running(app, "threaded", max_threads=4) as server:
        streams += [open_stream(server) for _ in range(12)]
        assert wait_for(lambda: server.open_streams == 12)
        results: list[int] = []

        def together() -> None:
            with Client.connect(server, timeout=15) as client:
                results.append(client.get("/together").status)

        threads = [threading.Thread(target=together) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert results == [200, 200, 200, 200]


def test_the_one_at_a_time_server_answers_beside_open_streams(streams: list[Client]) -> None:
    with running(app, "base") as server:
        streams += [open_stream(server) for _ in range(3)]
        with Client.connect(server) as client:
            assert client.get("/").body == b"ok"


@pytest.mark.parametrize("mode", MODES)
def test_a_published_event_reaches_every_open_stream(mode: str, streams: list[Client]) -> None:
    with running(app, mode) as server:
        streams += [open_stream(server) for _ in range(3)]
        assert wait_for(lambda: server.open_streams == 3)
        CHANNEL.publish("css", {"url": "/static/site.css"})
        event = encode_event("css", {"url": "/static/site.css"})
        for client in streams:
            # One chunk: its size line, then the event.
            assert client.read_until(event).endswith(b"%x\r\n%s" % (len(event), event))


def test_an_idle_stream_gets_heartbeats(streams: list[Client]) -> None:
    with running(app, "threaded") as server:
        client = open_stream(server, "0.2")
        streams.append(client)
        assert client.read_until(b": ping\n\n")


def test_a_client_that_leaves_releases_its_stream(streams: list[Client]) -> None:
    with running(app, "threaded") as server:
        opened = [open_stream(server) for _ in range(5)]
        assert wait_for(lambda: server.open_streams == 5)
        for client in opened[:3]:
            client.close()
        streams += opened[3:]
        assert wait_for(lambda: server.open_streams == 2)


@pytest.mark.parametrize("mode", MODES)
def test_shutdown_ends_open_streams_at_once(mode: str, streams: list[Client]) -> None:
    with running(app, mode) as server:
        streams += [open_stream(server) for _ in range(3)]
        assert wait_for(lambda: server.open_streams == 3)
        started = time.monotonic()
        server.shutdown()
        took = time.monotonic() - started
        for client in streams:
            assert client.read_until(b"0\r\n\r\n")  # the body ended properly ...
            assert client.is_closed(2.0)  # ... and the connection closed
        assert took < 1.0
        assert server.open_streams == 0


def test_a_head_request_gets_the_head_and_no_stream() -> None:
    with running(app, "threaded") as server, Client.connect(server) as client:
        reply = client.get("/events", method="HEAD")
        assert reply.status == 200
        assert client.get("/").body == b"ok"  # the connection stays usable
        assert server.open_streams == 0


def test_under_another_server_the_stream_is_an_ordinary_iterable() -> None:
    """Iterated (gunicorn, waitress), it yields the first events, then what is published,
    and ends when the server closes it."""
    channel = EventChannel()
    stream = EventStream(channel, HELLO, heartbeat=0.05)
    blocks = iter(stream)
    assert next(blocks) == HELLO
    channel.publish("reload", {"path": "x"})
    assert next(blocks) == encode_event("reload", {"path": "x"})
    assert next(blocks) == b": ping\n\n"  # nothing published within the heartbeat
    stream.close()
    assert list(blocks) == []
    channel.publish("reload", {"path": "y"})  # nobody is subscribed any more
