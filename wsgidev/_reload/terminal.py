"""An empty line typed in the server's terminal asks the reloader for a restart."""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable

# An unanswered line waiting on the terminal this long is ours (nobody else, e.g. pdb, read it).
STDIN_CLAIM_SECONDS = 0.3


def start_terminal_reader(on_reload: Callable[[], None], stop: threading.Event) -> None:
    """Call ``on_reload`` for each empty line typed on the terminal (if stdin is one) until
    ``stop`` is set."""
    stdin = sys.stdin
    try:
        fd = stdin.fileno() if stdin is not None else -1
    except (OSError, ValueError):
        fd = -1
    if fd < 0 or not os.isatty(fd):
        return
    threading.Thread(
        target=_read, args=(fd, on_reload, stop), name="wsgidev-stdin", daemon=True
    ).start()


def _read(fd: int, on_reload: Callable[[], None], stop: threading.Event) -> None:
    """The child shares the terminal (``breakpoint()`` in a view reads it), so a line is only
    taken when nobody else read it within STDIN_CLAIM_SECONDS, and only while this process
    group is in the foreground (reading from the background would stop us with SIGTTIN).
    """
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [])
        if not ready or stop.wait(STDIN_CLAIM_SECONDS):
            continue
        try:
            foreground = os.tcgetpgrp(fd)
        except OSError:  # not our controlling terminal: reading it cannot stop us
            foreground = os.getpgrp()
        if foreground != os.getpgrp():
            stop.wait(1.0)
            continue
        try:
            still, _, _ = select.select([fd], [], [], 0)
            line = os.read(fd, 4096) if still else None
        except OSError:
            return
        if line == b"":
            return  # the terminal went away
        if line is not None and not line.strip():
            on_reload()
