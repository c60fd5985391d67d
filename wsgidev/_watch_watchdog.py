"""The ``watchdog`` watcher: kernel file events through watchdog's observer thread.

Each of the scope's directories is scheduled one level deep and every event path is judged by
the scope itself: watchdog 7 matches ``PatternMatchingEventHandler`` patterns against the whole
path, so its pattern filtering is not used. Nothing is re-walked periodically.
"""

from __future__ import annotations

import os
import queue
import threading
import time

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from ._watch import (
    MODULE_CHECK_SECONDS,
    WatcherName,
    WatchScope,
    is_noise,
    is_skipped_dir,
    walk_dirs,
)

# Wait for this much quiet after the first event so a burst of saves gives one restart.
QUIET_SECONDS = 0.05
MAX_SETTLE_SECONDS = 1.0
# Reads (opened, closed_no_write) are not changes.
_CHANGE_EVENTS = frozenset({"created", "deleted", "modified", "moved"})


class _Forward(FileSystemEventHandler):
    def __init__(self, events: queue.SimpleQueue[tuple[str, str, bool]]) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGE_EVENTS:
            return
        self.events.put((event.event_type, os.fsdecode(event.src_path), event.is_directory))
        if event.dest_path:
            self.events.put((event.event_type, os.fsdecode(event.dest_path), event.is_directory))


class WatchdogWatcher:
    name: WatcherName = "watchdog"

    def __init__(self, scope: WatchScope) -> None:
        self.scope = scope
        self._events: queue.SimpleQueue[tuple[str, str, bool]] = queue.SimpleQueue()
        self._handler = _Forward(self._events)
        self._observer: BaseObserver = Observer()
        self._observer.daemon = True
        self._dirs: set[str] = set()
        for directory in sorted(scope.watched_dirs()):
            self._watch(directory)
        self._observer.start()

    def _watch(self, directory: str) -> None:
        if directory in self._dirs:
            return
        try:
            self._observer.schedule(self._handler, directory, recursive=False)
        except OSError:
            return  # vanished or unreadable: nothing to watch there
        self._dirs.add(directory)

    def wait_for_change(self, stop: threading.Event) -> str | None:
        while not stop.is_set():
            try:
                event = self._events.get(timeout=MODULE_CHECK_SECONDS)
            except queue.Empty:
                for path in self.scope.refresh_modules():
                    self._watch(os.path.dirname(path))
                continue
            changed = self._judge(event)
            if changed is not None:
                self._settle()
                return changed
        return None

    def _judge(self, event: tuple[str, str, bool]) -> str | None:
        kind, path, is_dir = event
        if is_dir:
            if kind in ("created", "moved") and not is_skipped_dir(path) and not is_noise(path):
                changed = None
                for directory in walk_dirs(path, skip=True):
                    self._watch(directory)
                    changed = changed or _first_relevant(self.scope, directory)
                return changed
            return None
        return path if self.scope.is_relevant(path) else None

    def _settle(self) -> None:
        """Swallow the rest of a burst of saves: wait until QUIET_SECONDS pass without events."""
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        while time.monotonic() < deadline:
            try:
                self._events.get(timeout=QUIET_SECONDS)
            except queue.Empty:
                return

    def close(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=2)


def _first_relevant(scope: WatchScope, directory: str) -> str | None:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return None
    for name in names:
        path = os.path.join(directory, name)
        if scope.is_relevant(path):
            return path
    return None
