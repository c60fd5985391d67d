"""Development tools for WSGI applications.

Request path: _server.loop -> _server.runners -> _server.handler -> middleware.live_reload -> debug
-> middleware.shared_data -> app. serving.run_simple builds it; _reload restarts it."""

from __future__ import annotations

from ._version import __version__
from .debug import DebuggedApplication
from .middleware.shared_data import SharedDataMiddleware
from .serving import make_server, run_simple

__all__ = [
    "DebuggedApplication",
    "SharedDataMiddleware",
    "__version__",
    "make_server",
    "run_simple",
]
