"""The ``stat`` watcher: polls modification times, needs no dependency, works on any mount.

Each tick stats the watched files and the watched directories, nothing else: a directory's
mtime changes when an entry is created, deleted or renamed in it, so only such a directory is
listed again. A tick therefore costs one ``stat`` per file and per directory, never a tree walk.
The few files saved in the last minutes are also polled ten times a second: the file saved
again is most often the one just saved.

With the default ``reloader_interval`` (1 s) or a shorter one, a full tick comes as often as
its own cost allows: the watcher measures how long a tick takes and spaces ticks so that they
use at most ``CPU_BUDGET`` of a core, never more often than every ``MIN_PERIOD`` and never less
often than the interval. A project of a few hundred files is polled four times a second; 1,000
modules (about 4 ms a tick) about every 0.7 s. A longer interval is taken as asked.
"""

from __future__ import annotations

import heapq
import os
import threading
import time

from .paths import is_noise, is_skipped_dir, walk_dirs
from .scope import WatcherName, WatchScope

# Files saved this recently are probably the ones being edited: they are polled every
# HOT_POLL_SECONDS (a few stats), everything else every ``interval``.
HOT_SECONDS = 600.0
HOT_POLL_SECONDS = 0.1
MAX_HOT_FILES = 16
# Full ticks use at most this share of one core (their measured cost sets their period).
CPU_BUDGET = 0.006
MIN_PERIOD = 0.25
# Intervals up to this one (run_simple's default) let the cost decide how often to tick.
ADAPTIVE_UP_TO = 1.0

# (mtime_ns, size, inode): a save by rename keeps neither the inode nor, usually, the size.
Signature = tuple[int, int, int]


def _signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class StatWatcher:
    """Polls at most every ``interval`` seconds (``reloader_interval``), more often when a tick
    is cheap."""

    name: WatcherName = "stat"

    def __init__(self, scope: WatchScope) -> None:
        self.scope = scope
        self.interval = scope.options.interval
        self._files: dict[str, Signature | None] = {}
        self._dirs: dict[str, Signature | None] = {}
        for path in scope.initial_files():
            self._files[path] = _signature(path)
        for path in scope.extra.files:
            self._files.setdefault(path, _signature(path))  # missing now, maybe created later
        for directory in scope.watched_dirs():
            self._dirs[directory] = _signature(directory)
        self._listings = {d: set(_names(d)) for d in self._dirs}
        recent = time.time_ns() - int(HOT_SECONDS * 1e9)
        candidates = [
            (sig[0], path) for path, sig in self._files.items() if sig and sig[0] > recent
        ]
        self.hot = [path for _, path in heapq.nlargest(MAX_HOT_FILES, candidates)]
        # Seconds a full tick takes; measured once here, then on every tick.
        self._tick_cost = -1.0
        started = time.perf_counter()
        self._pending: str | None = self.poll()  # a save during this setup: the first wait says
        self._learn_cost(time.perf_counter() - started)

    def wait_for_change(self, stop: threading.Event) -> str | None:
        pending, self._pending = self._pending, None
        if pending is not None:
            return pending
        next_full = time.monotonic() + self.period
        fast = bool(self.hot) and self.period > HOT_POLL_SECONDS
        while True:
            wait = next_full - time.monotonic()
            if stop.wait(max(0.0, min(wait, HOT_POLL_SECONDS) if fast else wait)):
                return None
            if time.monotonic() >= next_full:
                started = time.perf_counter()
                changed = self.poll()
                self._learn_cost(time.perf_counter() - started)
                next_full = time.monotonic() + self.period
                fast = bool(self.hot) and self.period > HOT_POLL_SECONDS
            else:
                changed = self._poll_hot()
            if changed is not None:
                return changed

    @property
    def period(self) -> float:
        """Seconds between two full ticks (see the module's docstring)."""
        if self.interval > ADAPTIVE_UP_TO:
            return self.interval
        return min(self.interval, max(MIN_PERIOD, self._tick_cost / CPU_BUDGET))

    def _learn_cost(self, seconds: float) -> None:
        # A moving average: one slow tick (a busy disk, a scheduler hiccup) does not set it.
        self._tick_cost = seconds if self._tick_cost < 0 else 0.7 * self._tick_cost + 0.3 * seconds

    def _poll_hot(self) -> str | None:
        for path in self.hot:
            signature = _signature(path)
            if signature != self._files.get(path):
                self._files[path] = signature
                return path
        return None

    def poll(self) -> str | None:
        """One tick: the first changed path, or None."""
        for path in self.scope.refresh_modules():
            self._files.setdefault(path, _signature(path))
            directory = os.path.dirname(path)
            if directory not in self._dirs:
                self._dirs[directory] = _signature(directory)
                self._listings[directory] = set(_names(directory))
        for directory, old in list(self._dirs.items()):
            new = _signature(directory)
            if new != old:
                self._dirs[directory] = new
                changed = self._rescan(directory)
                if changed is not None:
                    return changed
        for path, old in self._files.items():
            if _signature(path) != old:
                self._files[path] = _signature(path)
                return path
        return None

    def _rescan(self, directory: str) -> str | None:
        """List one directory whose entries changed: report new or removed relevant files."""
        before = self._listings.get(directory, set())
        after = set(_names(directory))
        self._listings[directory] = after
        result = None
        for name in sorted(after - before):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                if not is_skipped_dir(path) and not is_noise(path):
                    self._add_tree(path)
            elif self.scope.is_relevant(path):
                self._files[path] = _signature(path)
                result = result or path
        for name in sorted(before - after):
            path = os.path.join(directory, name)
            # Deleted, or renamed away for an atomic save (then the file is back already).
            if self._files.get(path) is not None and _signature(path) is None:
                self._files[path] = None
                result = result or path
        return result

    def _add_tree(self, root: str) -> None:
        for directory in walk_dirs(root, skip=True):
            self._dirs[directory] = _signature(directory)
            self._listings[directory] = set(_names(directory))
            for name in self._listings[directory]:
                path = os.path.join(directory, name)
                if self.scope.is_relevant(path):
                    self._files[path] = None  # new: its existence is a change on the next poll

    def close(self) -> None:
        self._files.clear()
        self._dirs.clear()


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []
