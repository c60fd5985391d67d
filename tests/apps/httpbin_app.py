"""httpbin (a real Flask application from PyPI), importable on Werkzeug 3.

httpbin 0.10.0 is the last release without a ``greenlet<3`` pin below Python 3.12, and it
imports ``werkzeug.http.parse_authorization_header``, which Werkzeug 3 replaced with
``Authorization.from_header``. Restoring that one name is all it needs; newer httpbin
releases (used on Python 3.12+) do the same thing themselves, so the shim stays unused there.
0.10.0's ``/bytes/N`` also answers with a ``bytearray`` body, which PEP 3333 does not allow
(later releases send ``bytes``); the one hook below hands servers ``bytes`` as they expect.
"""

from __future__ import annotations

import warnings

import werkzeug.http
from flask import Response
from werkzeug.datastructures import Authorization

if not hasattr(werkzeug.http, "parse_authorization_header"):
    werkzeug.http.parse_authorization_header = Authorization.from_header  # type: ignore[attr-defined]  # gone since Werkzeug 3

with warnings.catch_warnings():
    # httpbin's modules have invalid escape sequences in docstrings (SyntaxWarning when compiled).
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from httpbin import app as app


@app.after_request
def _body_as_bytes(response: Response) -> Response:
    if isinstance(response.response, list):
        response.response = [
            bytes(chunk) if isinstance(chunk, bytearray) else chunk for chunk in response.response
        ]
    return response
