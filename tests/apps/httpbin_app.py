"""httpbin (a real Flask application from PyPI), importable on Werkzeug 3.

httpbin 0.10.0 is the last release without a ``greenlet<3`` pin below Python 3.12, and it
imports ``werkzeug.http.parse_authorization_header``, which Werkzeug 3 replaced with
``Authorization.from_header``. Restoring that one name is all it needs; newer httpbin
releases (used on Python 3.12+) do the same thing themselves, so the shim stays unused there.
"""

from __future__ import annotations

import warnings

import werkzeug.http
from werkzeug.datastructures import Authorization

if not hasattr(werkzeug.http, "parse_authorization_header"):
    werkzeug.http.parse_authorization_header = Authorization.from_header  # type: ignore[attr-defined]

with warnings.catch_warnings():
    # httpbin's modules have invalid escape sequences in docstrings (SyntaxWarning when compiled).
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from httpbin import app as app
