"""A tiny app behind SharedDataMiddleware, for serving under gunicorn, waitress or wsgidev.

``WSGIDEV_TEST_STATIC_ROOT`` names the folder exported at ``/static`` (index.html on);
every other path reaches ``inner``, which answers ``app: PATH`` with a 404.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from wsgidev.middleware.shared_data import SharedDataMiddleware


def inner(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = b"app: " + environ["PATH_INFO"].encode("latin-1")
    start_response(
        "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = SharedDataMiddleware(
    inner, {"/static": os.environ["WSGIDEV_TEST_STATIC_ROOT"]}, index="index.html"
)
