"""Development tools for WSGI applications.

Request path: _server -> _handler -> debug -> middleware.shared_data -> app.
serving.run_simple builds it; _reloader restarts it."""

from __future__ import annotations

# Before the imports: the HTTP handler reads it for its Server header while they run.
__version__ = "0.1.0"

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
