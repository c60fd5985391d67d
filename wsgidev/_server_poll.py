"""Readiness for the I/O loop: epoll with one-shot interest on Linux, a selector elsewhere."""

from __future__ import annotations

import contextlib
import select
import selectors
import threading
from collections import deque
from collections.abc import Callable

_ONESHOT = getattr(select, "EPOLLONESHOT", 0)


class EpollPoller:
    """Linux: one-shot interest per connection, re-armed from any thread with one epoll_ctl."""

    def __init__(self) -> None:
        self._epoll = select.epoll()

    def add_fixed(self, fd: int) -> None:
        self._epoll.register(fd, select.EPOLLIN)

    def watch(self, fd: int, write: bool = False, oneshot: bool = True) -> None:
        mask = (select.EPOLLOUT if write else select.EPOLLIN) | (_ONESHOT if oneshot else 0)
        try:
            self._epoll.modify(fd, mask)
        except FileNotFoundError:
            self._epoll.register(fd, mask)

    def forget(self, fd: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)

    def wait(self, timeout: float | None) -> list[int]:
        return [fd for fd, _ in self._epoll.poll(-1 if timeout is None else max(timeout, 0.0))]

    def close(self) -> None:
        self._epoll.close()


class SelectorPoller:
    """Elsewhere: a selector where one-shot interest is emulated by unregistering on each event.

    Other threads cannot touch the selector, so they queue re-arm requests and wake the loop.
    """

    def __init__(self, wake: Callable[[], None]) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake = wake
        self._requests: deque[tuple[int, bool, bool]] = deque()
        self.loop_thread: int | None = None

    def add_fixed(self, fd: int) -> None:
        self._selector.register(fd, selectors.EVENT_READ, False)

    def watch(self, fd: int, write: bool = False, oneshot: bool = True) -> None:
        if threading.get_ident() != self.loop_thread:
            self._requests.append((fd, write, oneshot))
            self._wake()
            return
        events = selectors.EVENT_WRITE if write else selectors.EVENT_READ
        try:
            self._selector.modify(fd, events, oneshot)
        except KeyError:
            self._selector.register(fd, events, oneshot)

    def forget(self, fd: int) -> None:
        # Only the loop registers connections, and a busy one is never registered.
        if threading.get_ident() == self.loop_thread:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fd)

    def wait(self, timeout: float | None) -> list[int]:
        self.loop_thread = threading.get_ident()
        while self._requests:
            fd, write, oneshot = self._requests.popleft()
            with contextlib.suppress(ValueError, OSError):
                self.watch(fd, write, oneshot)
        ready = []
        for key, _ in self._selector.select(timeout):
            if key.data:  # one-shot interest
                self._selector.unregister(key.fd)
            ready.append(key.fd)
        return ready

    def close(self) -> None:
        self._selector.close()
