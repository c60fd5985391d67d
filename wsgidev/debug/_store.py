"""The last ``max_tracebacks`` errors, kept so their page URL and their frames stay reachable.

Older ones are dropped with their frames, so memory stays bounded however many errors happen.
The live frames (what the console needs) are bounded by size too: past ``max_frame_bytes``
the oldest errors' frames are released first, while their pages stay.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
import types
from collections import OrderedDict
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wsgidev._types import WSGIEnvironment

if TYPE_CHECKING:
    from .model import Frame, Traceback


@dataclass(frozen=True, slots=True)
class FrameHandle:
    """A retained frame for the console: its live namespaces and the request that failed.

    ``locals`` is the one mapping every console command in this frame shares.
    """

    id: int
    frame: Frame
    globals: dict[str, Any]
    locals: MutableMapping[str, Any]
    environ: WSGIEnvironment


@dataclass(slots=True)
class Retained:
    """One kept error. ``frames`` is emptied, and ``released`` set, when its console's frames
    are let go to stay within the store's size budget; its page stays."""

    token: str
    traceback: Traceback
    frames: Mapping[int, FrameHandle]
    size: int = 0
    released: bool = False
    created: float = field(default_factory=time.time)  # when the error happened (epoch seconds)


# Retained live frames stay below this many bytes by default (see TracebackStore).
DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024
# Objects counted per error at most: the estimate stays cheap whatever the locals hold.
_MAX_COUNTED_OBJECTS = 100_000
# Shared with the rest of the program, so not what keeping a frame costs.
_NOT_COUNTED = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)


def _as_dict(namespace: Mapping[str, Any]) -> object:
    """A frame's locals as a dict to walk: since 3.13 ``f_locals`` is a proxy, not a dict."""
    if type(namespace) is dict:
        return namespace
    try:
        return dict(namespace)
    except Exception:  # a namespace that cannot be read whole: count what the proxy holds
        return namespace


def estimated_size(roots: list[object]) -> int:
    """Bytes held by ``roots`` and what their containers hold, as far as a bounded walk sees.

    ``sys.getsizeof`` over dicts, lists, tuples, sets and their items (a 40 MB upload in a
    local counts its 40 MB); modules, classes and functions are shared with the program and
    not counted.
    """
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    while stack and len(seen) < _MAX_COUNTED_OBJECTS:
        value = stack.pop()
        kind = type(value)  # never value.__class__: a proxy (Flask's request) may raise
        if id(value) in seen or issubclass(kind, _NOT_COUNTED):
            continue
        seen.add(id(value))
        try:
            total += sys.getsizeof(value)
            if isinstance(value, dict):  # type(value) decided it: no proxy gets here
                stack.extend(dict.keys(value))
                stack.extend(dict.values(value))
            elif isinstance(value, list | tuple | set | frozenset):
                stack.extend(value)
            else:
                attributes = object.__getattribute__(value, "__dict__")
                if type(attributes) is dict:
                    stack.append(attributes)
        except Exception:  # no __dict__, a failing __sizeof__, a proxy outside its context
            continue
    return total


class TracebackStore:
    """A bounded, thread-safe map from page token to traceback, and from frame id to frame."""

    def __init__(self, limit: int, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.limit = limit
        self.max_frame_bytes = max_frame_bytes
        self._lock = threading.Lock()
        self._tracebacks: OrderedDict[str, Retained] = OrderedDict()
        self._frames: dict[int, FrameHandle] = {}
        self._frame_bytes = 0

    def add(self, traceback: Traceback, frames: Mapping[int, FrameHandle]) -> Retained:
        # An unguessable token: the page holds locals and the secret, so its URL must not be
        # found by counting.
        size = 0
        if frames:
            environ = next(iter(frames.values())).environ
            size = estimated_size([*(_as_dict(h.locals) for h in frames.values()), environ])
        retained = Retained(secrets.token_urlsafe(12), traceback, dict(frames), size)
        with self._lock:
            self._tracebacks[retained.token] = retained
            self._frames.update(retained.frames)
            self._frame_bytes += size
            while len(self._tracebacks) > self.limit:
                _, dropped = self._tracebacks.popitem(last=False)
                self._release(dropped)
            # Oldest first, the newest too if it alone is over the budget.
            for kept in list(self._tracebacks.values()):
                if self._frame_bytes <= self.max_frame_bytes:
                    break
                self._release(kept)
        return retained

    def _release(self, retained: Retained) -> None:
        """Let go of ``retained``'s live frames (its page stays); the lock is held."""
        if retained.released:
            return
        for frame_id in retained.frames:
            self._frames.pop(frame_id, None)
        self._frame_bytes -= retained.size
        retained.frames = {}
        retained.released = bool(retained.size)

    @property
    def frame_bytes(self) -> int:
        """The estimated bytes held by the live frames kept now."""
        with self._lock:
            return self._frame_bytes

    def get(self, token: str) -> Retained | None:
        with self._lock:
            return self._tracebacks.get(token)

    def recent(self) -> list[Retained]:
        """The kept errors, newest first (a snapshot: later errors do not change it)."""
        with self._lock:
            return list(reversed(self._tracebacks.values()))

    def find_frame(self, frame_id: int) -> FrameHandle | None:
        with self._lock:
            return self._frames.get(frame_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tracebacks)
