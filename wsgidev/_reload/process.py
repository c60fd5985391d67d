"""Starting a child interpreter the way this one was started, and reading how it ended."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
from collections.abc import Callable


def interpreter_flags() -> list[str]:
    # The private helper multiprocessing uses too: -W, -X, -O, -B ... as this process got them.
    helper: Callable[[], list[str]] | None = getattr(
        subprocess, "_args_from_interpreter_flags", None
    )
    return helper() if helper is not None else []


def forget_bytecode(path: str) -> None:
    """Delete the cached bytecode of a changed ``.py`` file before the restart imports it.

    A ``.pyc`` is trusted when the source's size and whole-second mtime match: a same-size edit
    saved within the second the cache was written would otherwise bring back the old code.
    """
    if not path.endswith(".py"):
        return
    for level in ("", 1, 2):
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            os.unlink(importlib.util.cache_from_source(path, optimization=level))


def describe_exit(returncode: int) -> str:
    """``exited with status 1`` or ``was killed by signal 9 (SIGKILL)``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"
