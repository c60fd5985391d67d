"""The ``watchfiles`` watcher: kernel file events (inotify, FSEvents, ...) through watchfiles.

Only the scope's directories are watched, each one level deep, so a ``node_modules`` or a
virtualenv inside the project costs nothing; a directory created later is added on the fly.
Between events it only wakes once a second to pick up newly imported modules (no disk scan).
"""

from __future__ import annotations

import os
import threading

import watchfiles

from .paths import is_noise, is_skipped_dir, walk_dirs
from .scope import MODULE_CHECK_SECONDS, WatcherName, WatchScope

# Wait for this much quiet after the first event so a burst of saves gives one restart.
QUIET_MS = 50
# ...but never longer than this: files written all the time (a log, a SQLite database in the
# project) would otherwise hold back every restart for watchfiles' default 1.6 s.
MAX_SETTLE_MS = 300


class WatchfilesWatcher:
    name: WatcherName = "watchfiles"

    def __init__(self, scope: WatchScope) -> None:
        self.scope = scope
        self._dirs = scope.watched_dirs()

    def wait_for_change(self, stop: threading.Event) -> str | None:
        while not stop.is_set():
            for changes in watchfiles.watch(
                *sorted(self._dirs),
                watch_filter=None,
                step=QUIET_MS,
                debounce=MAX_SETTLE_MS,
                stop_event=stop,
                rust_timeout=int(MODULE_CHECK_SECONDS * 1000),
                yield_on_timeout=True,
                recursive=False,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                changed, grew = self._examine(changes)
                if changed is not None:
                    return changed
                if grew:
                    break  # watch again with the new directories
            else:
                return None
            self._dirs = {d for d in self._dirs if os.path.isdir(d)}
        return None

    def _examine(self, changes: set[tuple[watchfiles.Change, str]]) -> tuple[str | None, bool]:
        grew = False
        for path in self.scope.refresh_modules():
            if os.path.dirname(path) not in self._dirs:
                self._dirs.add(os.path.dirname(path))
                grew = True
        changed = None
        for change, path in sorted(changes, key=lambda item: item[1]):
            if change == watchfiles.Change.added and os.path.isdir(path):
                if not is_skipped_dir(path) and not is_noise(path):
                    grew = True
                    for directory in walk_dirs(path, skip=True):
                        self._dirs.add(directory)
                        changed = changed or _first_relevant(self.scope, directory)
            elif self.scope.is_relevant(path):
                changed = changed or path
        return changed, grew

    def close(self) -> None:
        self._dirs = set()


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
