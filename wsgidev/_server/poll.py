"""Readiness for the I/O loop: epoll with one-shot interest on Linux, a selector elsewhere."""

from __future__ import annotations

import contextlib
import select
import selectors

_ONESHOT = getattr(select, "EPOLLONESHOT", 0)


class EpollPoller:
    """Linux: one-shot interest per connection, re-armed with one epoll_ctl."""

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

    Only the loop's thread calls it (the loop owns every registration), so it needs no lock.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def add_fixed(self, fd: int) -> None:
        self._selector.register(fd, selectors.EVENT_READ, False)

    def watch(self, fd: int, write: bool = False, oneshot: bool = True) -> None:
        events = selectors.EVENT_WRITE if write else selectors.EVENT_READ
        try:
            self._selector.modify(fd, events, oneshot)
        except KeyError:
            self._selector.register(fd, events, oneshot)

    def forget(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(fd)

    def wait(self, timeout: float | None) -> list[int]:
        ready = []
        for key, _ in self._selector.select(timeout):
            if key.data:  # one-shot interest
                self._selector.unregister(key.fd)
            ready.append(key.fd)
        return ready

    def close(self) -> None:
        self._selector.close()


def make_poller() -> EpollPoller | SelectorPoller:
    return EpollPoller() if hasattr(select, "epoll") else SelectorPoller()
