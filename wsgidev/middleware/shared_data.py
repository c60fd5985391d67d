"""SharedDataMiddleware (being built)."""

from __future__ import annotations

from typing import Any


class SharedDataMiddleware:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("wsgidev.middleware.shared_data.SharedDataMiddleware is being built")
