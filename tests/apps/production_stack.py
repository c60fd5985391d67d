"""A plain WSGI app wrapped in wsgidev's middlewares, for serving under gunicorn or waitress.

``WSGIDEV_TEST_STATIC_DIR`` names the folder exported at ``/static``. The console stays off
(``evalex=False``, the default), as it must anywhere but a developer's own machine, unless
``WSGIDEV_TEST_EVALEX=1`` turns it on to show how it behaves under several worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wsgidev.debug import DebuggedApplication
from wsgidev.middleware.shared_data import SharedDataMiddleware

if TYPE_CHECKING:  # wsgiref.types is new in Python 3.11
    from wsgiref.types import StartResponse, WSGIEnvironment


def compute_report(environ: WSGIEnvironment) -> bytes:
    rows: list[int] = []
    return f"average {sum(rows) / len(rows)}".encode()


def inner(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/report":
        body = compute_report(environ)
    elif environ["PATH_INFO"] == "/pid":  # which worker process answered
        body = str(os.getpid()).encode()
    else:
        body = b"app: " + environ["PATH_INFO"].encode("latin-1")
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


app = DebuggedApplication(
    SharedDataMiddleware(inner, {"/static": os.environ["WSGIDEV_TEST_STATIC_DIR"]}),
    evalex=os.environ.get("WSGIDEV_TEST_EVALEX") == "1",
)
