"""App code run for the page (a local's ``__repr__``) under a wall-clock deadline, even when it
blocks inside C (``time.sleep``, a lock, a socket read) where no tracer can stop it.

The calls run one at a time in a helper thread while the request's thread waits at most the
deadline. A helper that misses one is left to finish on its own (a daemon, stopped at its
next Python line by the repr's own tracer) and a fresh helper takes the next call. Each
helper runs in a copy of the request's context, so context-local proxies (Flask's
``request``, ``g``) still resolve as they would in the request's thread.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TimedOut(Exception):
    """The call did not return before its deadline (or the budget was already spent)."""


class _Job(Generic[T]):
    __slots__ = ("done", "error", "func", "result")

    def __init__(self, func: Callable[[], T]) -> None:
        self.func = func
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


def _serve(jobs: queue.SimpleQueue[_Job[object] | None]) -> None:
    while (job := jobs.get()) is not None:
        try:
            job.result = job.func()
        except BaseException as exc:  # handed to the waiting thread, which decides
            job.error = exc
        job.done.set()


class Deadlines:
    """Calls sharing one wall-clock ``budget`` (seconds), each also bounded on its own."""

    def __init__(self, budget: float) -> None:
        self._ends = time.monotonic() + budget
        self._context = contextvars.copy_context()
        self._jobs: queue.SimpleQueue[_Job[object] | None] | None = None

    @property
    def spent(self) -> bool:
        return time.monotonic() >= self._ends

    def call(self, func: Callable[[], T], seconds: float) -> T:
        """``func()``, or ``TimedOut`` once ``seconds`` (or what is left of the budget) pass."""
        timeout = min(seconds, self._ends - time.monotonic())
        if timeout <= 0:
            raise TimedOut
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            helper = threading.Thread(
                # A copy per helper: an abandoned one may still be inside its context.
                target=self._context.copy().run,
                args=(_serve, self._jobs),
                name="wsgidev-repr",
                daemon=True,
            )
            helper.start()
        job: _Job[T] = _Job(func)
        self._jobs.put(job)  # type: ignore[arg-type]  # the helper returns it untouched
        if not job.done.wait(timeout):
            self.close()  # that helper is stuck in func: it leaves once func returns
            raise TimedOut
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]  # set, since no error was raised

    def close(self) -> None:
        """Let the helper thread end (call again later starts a new one)."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None
