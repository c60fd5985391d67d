"""A page wrapped in LiveReloadMiddleware by hand, for serving under gunicorn or waitress.

``WSGIDEV_TEST_STATIC_DIR`` names the folder whose stylesheets the open pages follow, at
``/static``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wsgidev.debug import DebuggedApplication
from wsgidev.middleware.live_reload import LiveReloadMiddleware

if TYPE_CHECKING:  # wsgiref.types is new in Python 3.11
    from wsgiref.types import StartResponse, WSGIEnvironment

PAGE = b"<!doctype html><html><body><h1>under another server</h1></body></html>"


def inner(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/fail":
        raise LookupError("no such order")
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


app = LiveReloadMiddleware(
    DebuggedApplication(inner),
    static_files={"/static": os.environ.get("WSGIDEV_TEST_STATIC_DIR", ".")},
)
