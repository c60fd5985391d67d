"""Notice saves of the files a page shows (stylesheets, scripts, templates) without a restart.

The reloader restarts the app for code; these files only need the open pages told. One daemon
thread per middleware watches its folders: through watchfiles when it is installed (events,
no polling), otherwise by comparing modification times every ``POLL_INTERVAL`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator

from wsgidev._reload.watch.paths import is_noise, is_skipped_dir

POLL_INTERVAL = 0.25
# A polled tree with more files than this is polled less often: its stat calls add up.
POLL_FILE_BUDGET = 5000
SLOW_POLL_INTERVAL = 1.0

OnChange = Callable[[str], None]


class AssetWatcher:
    """Calls ``on_change(path)`` from its own thread for each saved file under ``roots``."""

    def __init__(self, roots: Iterable[str], on_change: OnChange) -> None:
        self.roots = tuple(
            sorted({os.path.abspath(root) for root in roots if os.path.exists(root)})
        )
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def start(self) -> None:
        """Start watching in this process (again after a fork, whose child has no thread)."""
        if not self.roots or (self._thread is not None and self._pid == os.getpid()):
            return
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wsgidev-live-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            import watchfiles
        except ImportError:
            self._poll()
            return
        try:
            for changes in watchfiles.watch(
                *self.roots,
                stop_event=self._stop,
                debounce=50,
                step=25,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                for path in sorted({path for _, path in changes}):
                    if not is_noise(path) and not os.path.isdir(path):
                        self._on_change(path)
        except Exception:  # a root removed, or out of inotify watches: fall back to polling
            if not self._stop.is_set():
                self._poll()

    def _poll(self) -> None:
        known = dict(self._scan())
        interval = POLL_INTERVAL if len(known) <= POLL_FILE_BUDGET else SLOW_POLL_INTERVAL
        while not self._stop.wait(interval):
            seen = dict(self._scan())
            for path, stamp in seen.items():
                if known.get(path) != stamp:
                    self._on_change(path)
            for path in known.keys() - seen.keys():
                self._on_change(path)  # removed: a page using it changes too
            known = seen

    def _scan(self) -> Iterator[tuple[str, tuple[int, int]]]:
        for root in self.roots:
            if os.path.isfile(root):
                yield from _stamp(root)
                continue
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if not is_skipped_dir(os.path.join(folder, d))]
                for name in files:
                    path = os.path.join(folder, name)
                    if not is_noise(path):
                        yield from _stamp(path)


def _stamp(path: str) -> Iterator[tuple[str, tuple[int, int]]]:
    with contextlib.suppress(OSError):
        info = os.stat(path)
        yield path, (info.st_mtime_ns, info.st_size)
