"""Where a complete request runs: inline in the loop or in a bounded thread pool (a child
process is forking's).

Every runner calls ``loop.serve(conn, head)`` and hands the outcome back with ``loop.finish``
(a worker thread's finish is a message to the loop); the I/O loop never waits on an app."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import traceback
from collections.abc import Callable
from queue import SimpleQueue
from typing import TYPE_CHECKING, Literal, Protocol

from .._http.head import HTTPError, RequestHead
from .._http.io import wait_ready
from .._log import logger
from .arrival import RECV_SIZE, next_head

if TYPE_CHECKING:
    from .connection import Connection
    from .settings import ServerSettings

# "stream": the response is an event stream the loop keeps writing (_server.streams).
Outcome = Literal["keep", "close", "linger", "stream"]
# How long a worker thread that just answered on a kept-alive connection waits for that
# client's next request before handing the connection back to the loop (only while no other
# request waits for a thread). A browser loading a page's assets, or any client that sends
# requests back to back, is served without a trip through the loop.
KEEP_ALIVE_WINDOW = 0.002


class LoopPort(Protocol):
    """What a runner asks of the I/O loop (_server.loop.ConnectionLoop)."""

    @property
    def settings(self) -> ServerSettings: ...

    @property
    def passthrough_errors(self) -> bool: ...

    def serve(self, conn: Connection, head: RequestHead) -> Outcome: ...

    def finish(self, conn: Connection, outcome: Outcome) -> None: ...

    def refuse(self, conn: Connection, error: HTTPError, head: RequestHead) -> None: ...

    def dispatch(self, conn: Connection, head: RequestHead) -> None: ...

    def watch_fd(self, fd: int, callback: Callable[[int], None]) -> None: ...

    def unwatch_fd(self, fd: int) -> None: ...

    def running_elsewhere(self) -> bool: ...

    def enter_child(self) -> None: ...


class Runner(Protocol):
    # True when requests run in the loop's own thread (the one-at-a-time server).
    on_loop_thread: bool

    def submit(self, conn: Connection, head: RequestHead) -> None: ...

    def wait_idle(self, timeout: float) -> bool: ...

    def stop(self) -> None: ...


def run_guarded(loop: LoopPort, conn: Connection, head: RequestHead) -> Outcome:
    """Serve ``conn``; a failure of the server's own code is logged and answers ``"close"``.

    The caller hands the connection back, once, through ``loop.finish`` (a re-raised
    exception included: callers finish the connection in a ``finally``). With
    ``passthrough_errors`` the exception is re-raised, as Werkzeug does.
    """
    try:
        return loop.serve(conn, head)
    except Exception:  # the boundary between the server and a (possibly user-supplied) handler
        if loop.passthrough_errors:
            raise
        logger.error("Error in the request handler:\n%s", traceback.format_exc())
    return "close"


class InlineRunner:
    """The one-at-a-time server: the app runs in the loop's thread."""

    on_loop_thread = True

    def __init__(self, loop: LoopPort) -> None:
        self._loop = loop
        self.busy = False
        self.serial = 0  # counts requests, so a timer set for one never acts on the next

    def submit(self, conn: Connection, head: RequestHead) -> None:
        self.busy = True
        self.serial += 1
        outcome: Outcome = "close"  # unless the request ends normally
        try:
            outcome = run_guarded(self._loop, conn, head)
        finally:
            self.busy = False
            self._loop.finish(conn, outcome)

    def wait_idle(self, timeout: float) -> bool:
        return True

    def stop(self) -> None:
        pass


class ThreadRunner:
    """A pool of at most ``max_threads`` threads, started as load needs them and then reused."""

    on_loop_thread = False

    def __init__(self, loop: LoopPort, max_threads: int) -> None:
        self._loop = loop
        self._max = max_threads
        self._queue: SimpleQueue[tuple[Connection, RequestHead] | None] = SimpleQueue()
        self._threads = 0
        self._active = 0  # requests submitted and not finished; both counts under _lock
        self._warned = False
        self._lock = threading.Lock()

    def submit(self, conn: Connection, head: RequestHead) -> None:
        with self._lock:
            self._active += 1
            spawn = self._active > self._threads and self._threads < self._max
            if spawn:
                self._threads += 1
            saturated = self._active > self._max and not self._warned
            if saturated:
                self._warned = True
        if saturated:
            # Long-lived responses (streams, long polls) can take every thread; say so once.
            logger.warning(
                " * All %d worker threads are busy; new requests wait for one "
                "(pass ThreadedWSGIServer(..., max_threads=N) for more)",
                self._max,
            )
        if spawn:
            name = f"wsgidev-worker-{self._threads}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        self._queue.put((conn, head))

    def _work(self) -> None:
        loop = self._loop
        get = self._queue.get
        lock = self._lock
        try:
            while (item := get()) is not None:
                conn, head = item
                outcome: Outcome = "close"  # unless the request ends normally
                try:
                    try:
                        outcome = run_guarded(loop, conn, head)
                        while outcome == "keep" and (following := self._next_request(conn)):
                            outcome = "close"
                            outcome = run_guarded(loop, conn, following)
                    finally:
                        if outcome == "close":
                            # The client learns at once that the response is complete; the
                            # loop closes the socket (and forgets it) when it takes the message.
                            with contextlib.suppress(OSError):
                                conn.sock.shutdown(socket.SHUT_WR)
                        loop.finish(conn, outcome)
                finally:
                    with lock:
                        self._active -= 1
        finally:
            with lock:
                self._threads -= 1

    def _next_request(self, conn: Connection) -> RequestHead | None:
        """The client's next request if it arrives within KEEP_ALIVE_WINDOW, whole and
        without a body, while no other request waits for a thread; else None, and the
        connection goes back to the loop with whatever arrived still buffered (the loop receives
        bodies, so a client that stalls never holds this thread)."""
        if conn.tls or conn.buffer or not self._queue.empty():
            return None
        sock = conn.sock
        if not wait_ready(sock, False, KEEP_ALIVE_WINDOW):
            return None
        try:
            data = sock.recv(RECV_SIZE)
        except OSError:  # not readable after all, or reset: the loop finds out
            return None
        if not data:
            return None  # closed by the client: the loop sees the end of stream too
        buffer = conn.buffer
        buffer += data
        arrived = bytes(buffer)
        try:
            head = next_head(conn)
        except HTTPError:  # put it back for the loop to refuse (and log) like any other
            buffer[:] = arrived
            conn.scan = 0
            return None
        if head is None:
            return None  # a partial head: the loop waits for the rest
        if head.content_length or head.chunked:
            buffer[:] = arrived  # the loop receives the body first
            conn.scan = 0
            return None
        conn.served += 1
        return head

    def wait_idle(self, timeout: float) -> bool:
        """Poll (a stop is rare; requests never pay for a notification)."""
        deadline = time.monotonic() + timeout
        while self._active:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self) -> None:
        for _ in range(self._threads):
            self._queue.put(None)
