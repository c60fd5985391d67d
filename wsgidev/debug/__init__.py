"""DebuggedApplication (being built)."""

from __future__ import annotations

from typing import Any


class DebuggedApplication:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("wsgidev.debug.DebuggedApplication is being built")
