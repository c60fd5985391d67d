"""The last ``max_tracebacks`` errors, kept so their page URL and their frames stay reachable.

Older ones are dropped with their frames, so memory stays bounded however many errors happen.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from wsgidev._types import WSGIEnvironment

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


@dataclass(frozen=True, slots=True)
class Retained:
    token: str
    traceback: Traceback
    frames: Mapping[int, FrameHandle]


class TracebackStore:
    """A bounded, thread-safe map from page token to traceback, and from frame id to frame."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._tracebacks: OrderedDict[str, Retained] = OrderedDict()
        self._frames: dict[int, FrameHandle] = {}

    def add(self, traceback: Traceback, frames: Mapping[int, FrameHandle]) -> Retained:
        # An unguessable token: the page holds locals and the secret, so its URL must not be
        # found by counting.
        retained = Retained(secrets.token_urlsafe(12), traceback, dict(frames))
        with self._lock:
            self._tracebacks[retained.token] = retained
            self._frames.update(retained.frames)
            while len(self._tracebacks) > self.limit:
                _, dropped = self._tracebacks.popitem(last=False)
                for frame_id in dropped.frames:
                    self._frames.pop(frame_id, None)
        return retained

    def get(self, token: str) -> Retained | None:
        with self._lock:
            return self._tracebacks.get(token)

    def find_frame(self, frame_id: int) -> FrameHandle | None:
        with self._lock:
            return self._frames.get(frame_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tracebacks)
