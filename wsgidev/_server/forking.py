"""The forking server's runner: each request in a child process, at most ``processes`` at once.

The child serves the request and writes back over a pipe what became of the connection; the
parent's loop keeps the connection (the child's copy closes with it).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
import traceback
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._http.head import ClientDisconnected, HTTPError, RequestHead
from .._http.io import recv_some, wait_ready
from .._log import SHORTAGE_LOG_INTERVAL, logger
from .arrival import next_head
from .runners import LoopPort, Outcome
from .streams import StreamInfo

if TYPE_CHECKING:
    from .connection import Connection

# How long a forked child waits for the next request on a TLS connection it cannot hand back.
TLS_CHILD_IDLE = 2.0
_OUTCOME_CODES: dict[bytes, Outcome] = {
    b"K": "keep",
    b"C": "close",
    b"L": "linger",
    b"S": "stream",
}


@dataclass(slots=True)
class _Child:
    pid: int
    conn: Connection
    data: bytearray = field(default_factory=bytearray)


class ForkRunner:
    """At most ``processes`` children, one per request; more requests wait for a free slot.

    The child writes back over a pipe whether the connection stays open and the bytes it read
    past the request (a pipelined next request), so the parent's loop keeps the connection.
    """

    on_loop_thread = False

    def __init__(self, loop: LoopPort, processes: int) -> None:
        self._loop = loop
        self._max = processes
        self._children: dict[int, _Child] = {}
        self._waiting: deque[tuple[Connection, RequestHead]] = deque()
        self._warned = False
        self._short_logged_at = -SHORTAGE_LOG_INTERVAL  # when a shortage was last logged

    def submit(self, conn: Connection, head: RequestHead) -> None:
        if len(self._children) >= self._max:
            if not self._waiting and not self._warned:
                self._warned = True
                logger.warning(
                    " * All %d worker processes are busy; new requests wait for one", self._max
                )
            self._waiting.append((conn, head))
            return
        try:
            read_fd, write_fd = os.pipe()
        except OSError as exc:  # out of descriptors: this request fails, the server goes on
            self._cannot_serve(conn, head, exc)
            return
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns when a process with threads (the reloader's watcher, the
                # app's own) forks. The child only serves this request and leaves with
                # os._exit; logging re-creates its locks after fork, so the warning is noise.
                warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
                pid = os.fork()
        except OSError as exc:  # out of processes or memory: the same
            os.close(read_fd)
            os.close(write_fd)
            self._cannot_serve(conn, head, exc)
            return
        if pid == 0:  # pragma: no cover - runs in the child; covered through its effects
            os.close(read_fd)
            self._child(conn, head, write_fd)
        os.close(write_fd)
        if conn.received is not None:
            # The child has its own copy of the received body; the parent's must not be
            # mistaken for the next request's body on this connection.
            conn.received.release()
            conn.received = None
        os.set_blocking(read_fd, False)
        self._children[read_fd] = _Child(pid, conn)
        self._loop.watch_fd(read_fd, self._on_pipe)

    def _cannot_serve(self, conn: Connection, head: RequestHead, exc: OSError) -> None:
        """Answer 503 to the one request no process could be started for; say so at most
        every SHORTAGE_LOG_INTERVAL, not once per request."""
        now = time.monotonic()
        if now - self._short_logged_at >= SHORTAGE_LOG_INTERVAL:
            self._short_logged_at = now
            logger.warning(
                " * Cannot start a worker process (%s); answering 503 until resources free up",
                exc.strerror or exc,
            )
        self._loop.refuse(conn, HTTPError(503, "the server is out of resources"), head)

    def _child(
        self, conn: Connection, head: RequestHead, write_fd: int
    ) -> None:  # pragma: no cover
        status = 1
        try:
            # Ctrl+C goes to the whole process group: the parent decides when children stop.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            # The wake-up socket is the parent's: a signal handled here must not wake its loop.
            with contextlib.suppress(ValueError):
                signal.set_wakeup_fd(-1)
            self._loop.enter_child()
            try:
                outcome = self._loop.serve(conn, head)
                if conn.tls:
                    outcome = self._serve_tls_here(conn, outcome)
            except Exception:
                logger.error("Error in the request handler:\n%s", traceback.format_exc())
                outcome = "close"
            if outcome == "stream" and conn.stream is not None:
                # The parent's loop keeps the stream: tell it which channel and framing.
                info = conn.stream
                message = b"S%d,%d,%r" % (info.channel_id, info.chunked, info.heartbeat)
            else:
                message = outcome[0].upper().encode() + bytes(conn.buffer)
            view = memoryview(message)
            while view:
                view = view[os.write(write_fd, view) :]
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(status)

    def _serve_tls_here(self, conn: Connection, outcome: Outcome) -> Outcome:  # pragma: no cover
        """Keep a TLS connection in this child while its client keeps sending requests.

        The child's TLS session state diverges from the parent's copy of the socket, so the
        connection cannot go back to the parent's loop; it ends here after ``TLS_CHILD_IDLE``
        seconds without a request (a bounded time the child's slot stays taken).
        """
        settings = self._loop.settings
        while outcome == "keep":
            deadline = time.monotonic() + min(TLS_CHILD_IDLE, settings.keep_alive_timeout)
            head = None
            try:
                while head is None:
                    if not conn.buffer:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not wait_ready(conn.sock, False, remaining):
                            return "close"
                    data = recv_some(conn.sock, settings.request_head_timeout)
                    if not data:
                        return "close"
                    conn.buffer += data
                    head = next_head(conn)
            except (ClientDisconnected, HTTPError):
                return "close"
            outcome = self._loop.serve(conn, head)
        return outcome

    def _on_pipe(self, fd: int) -> None:
        child = self._children[fd]
        while True:
            try:
                block = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not block:
                break
            child.data += block
        self._reap(fd)

    def _reap(self, fd: int) -> None:
        child = self._children.pop(fd)
        self._loop.unwatch_fd(fd)
        os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)
        outcome = _OUTCOME_CODES.get(bytes(child.data[:1]), "close")
        if outcome == "stream":
            child.conn.stream = _stream_info(bytes(child.data[1:]))
            outcome = "stream" if child.conn.stream is not None else "close"
        else:
            child.conn.buffer[:] = child.data[1:]
        self._loop.finish(child.conn, outcome)
        while self._waiting and len(self._children) < self._max:
            conn, head = self._waiting.popleft()
            self._loop.dispatch(conn, head)

    def wait_idle(self, timeout: float) -> bool:
        """Wait for every child; reap them here unless the loop runs (and reaps) elsewhere."""
        deadline = time.monotonic() + timeout
        if self._loop.running_elsewhere():
            while self._children or self._waiting:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.005)
            return True
        self._waiting.clear()
        while self._children:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select(list(self._children), [], [], remaining)
            for fd in ready:
                self._on_pipe(fd)
        return True

    def stop(self) -> None:
        for fd, child in list(self._children.items()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            self._reap(fd)


def _stream_info(message: bytes) -> StreamInfo | None:
    """``b"<channel id>,<chunked>,<heartbeat>"`` from a child that served an event stream's
    head."""
    try:
        channel, chunked, heartbeat = message.split(b",")
        info = StreamInfo(int(channel), chunked == b"1", float(heartbeat))
    except ValueError:
        return None
    return info if chunked in (b"0", b"1") and info.heartbeat > 0 else None
