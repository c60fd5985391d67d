"""The WSGI types, importable at run time on every supported Python (wsgiref.types is 3.11+)."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
else:  # pragma: no cover - Python 3.10
    from collections.abc import Callable, Iterable
    from typing import Any

    WSGIEnvironment = dict[str, Any]
    StartResponse = Callable[..., Callable[[bytes], object]]
    WSGIApplication = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]

__all__ = ["StartResponse", "WSGIApplication", "WSGIEnvironment"]
