"""The ``watchdog`` watcher: kernel file events through watchdog's observer.

watchdog starts one emitter (a thread and, on Linux, an inotify instance, of which a user gets
128) per scheduled path, so few paths are scheduled: project subtrees recursively, split into
flat watches only around what the project scan skips (``node_modules``, ``.git``, virtualenvs);
extra directories recursively; the directories of modules elsewhere flat. Every event path is judged by the scope: watchdog 7 matches ``PatternMatchingEventHandler``
patterns against the whole path, so its pattern filtering is not used. Nothing is re-walked
periodically.
"""

from __future__ import annotations

import os
import queue
import threading
import time

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from .paths import MAX_PROJECT_DIRS, is_noise, is_skipped_dir
from .scope import MODULE_CHECK_SECONDS, WatcherName, WatchScope

# Wait for this much quiet after the first event so a burst of saves gives one restart.
QUIET_SECONDS = 0.05
MAX_SETTLE_SECONDS = 0.3
# How deep a project tree is split into flat watches to step around node_modules and the like.
MAX_SPLIT_DEPTH = 4
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
        self._flat: set[str] = set()
        self._trees: set[str] = set()
        for root in scope.project_dirs:
            self._watch_project_dir(root)
        for root in scope.extra.tree_roots():
            self._watch(root, recursive=True)
        for path in scope.module_files | scope.extra.files:
            self._watch(os.path.dirname(path), recursive=False)
        self._observer.start()

    def _watch_project_dir(self, root: str, depth: int = 0) -> None:
        """Recursively where the tree holds nothing to skip; else flat, and the same below."""
        if depth > 0 and not _holds_skipped(root):
            self._watch(root, recursive=True)
            return
        self._watch(root, recursive=False)
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if (
                depth < MAX_SPLIT_DEPTH
                and entry.is_dir(follow_symlinks=False)
                and not is_skipped_dir(entry.path)
                and not is_noise(entry.path)
            ):
                self._watch_project_dir(entry.path, depth + 1)

    def _covered(self, directory: str, recursive: bool) -> bool:
        if any(directory == t or directory.startswith(t + os.sep) for t in self._trees):
            return True
        return not recursive and directory in self._flat

    def _watch(self, directory: str, recursive: bool) -> None:
        if self._covered(directory, recursive) or is_noise(directory):
            return
        try:
            self._observer.schedule(self._handler, directory, recursive=recursive)
        except OSError:
            return  # vanished, unreadable, or out of inotify instances: nothing to watch there
        (self._trees if recursive else self._flat).add(directory)

    def wait_for_change(self, stop: threading.Event) -> str | None:
        while not stop.is_set():
            try:
                event = self._events.get(timeout=MODULE_CHECK_SECONDS)
            except queue.Empty:
                for path in self.scope.refresh_modules():
                    self._watch(os.path.dirname(path), recursive=False)
                continue
            changed = self._judge(event)
            if changed is not None:
                self._settle()
                return changed
        return None

    def _judge(self, event: tuple[str, str, bool]) -> str | None:
        kind, path, is_dir = event
        if not is_dir:
            return path if self.scope.is_relevant(path) else None
        if kind in ("created", "moved") and not is_skipped_dir(path) and not is_noise(path):
            if not self._covered(path, recursive=True) and self.scope.in_project(path):
                # A new directory in a flat-watched project directory: watch its tree too.
                self._watch(path, recursive=True)
            return _first_relevant(self.scope, path)
        return None

    def _settle(self) -> None:
        """Swallow the rest of a burst of saves: wait until QUIET_SECONDS pass without another
        relevant event (a log file or database written on every request does not count)."""
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        quiet_until = time.monotonic() + QUIET_SECONDS
        while (remaining := min(deadline, quiet_until) - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=remaining)
            except queue.Empty:
                return
            if self._judge(event) is not None:
                quiet_until = time.monotonic() + QUIET_SECONDS

    def close(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=2)


def _holds_skipped(root: str) -> bool:
    """Whether a directory the project scan skips lies anywhere below ``root`` (bounded)."""
    for count, (current, dirs, _) in enumerate(os.walk(root)):
        if count > MAX_PROJECT_DIRS:
            return True  # too big to watch whole: split it
        for name in dirs:
            if is_skipped_dir(os.path.join(current, name)):
                return True
    return False


def _first_relevant(scope: WatchScope, directory: str) -> str | None:
    """A file that matters inside a directory that just appeared (moved in with files)."""
    for current, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not is_skipped_dir(os.path.join(current, d)))
        for name in sorted(files):
            path = os.path.join(current, name)
            if scope.is_relevant(path):
                return path
    return None
