"""``?__debugger__=yes&cmd=errors``: the kept errors, newest first, for a browser (HTML) or a tool
(``Accept: application/json``).

Read-only, but it reveals tracebacks, so it passes the same Host, cross-site and
trusted-client checks as a console command. It lists what the store keeps already: nothing is
kept per error for it, and an error dropped from the store is gone from the list too.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from markupsafe import Markup

from wsgidev._types import StartResponse, WSGIApplication, WSGIEnvironment

from ._negotiate import parse_accept
from ._store import Retained

ERRORS_QUERY = "?__debugger__=yes&cmd=errors"


def describe(retained: Retained, page_url: str, *, console: bool) -> dict[str, Any]:
    """One kept error as the list (and MCP's list_errors) shows it."""
    tb = retained.traceback
    request = tb.request
    return {
        "id": retained.token,
        "time": datetime.fromtimestamp(retained.created, timezone.utc).isoformat(
            timespec="seconds"
        ),
        "method": request.method if request else None,
        "url": request.url if request else None,
        "type": tb.exception.type_name,
        "message": tb.exception.message.split("\n", 1)[0][:500],
        "page_url": page_url,
        "console_available": console and not retained.released,
    }


def wants_json(environ: WSGIEnvironment) -> bool:
    weights = parse_accept(environ.get("HTTP_ACCEPT", ""))
    return weights.get("application/json", 0.0) > max(
        weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0)
    )


def error_list(
    entries: Iterable[dict[str, Any]], environ: WSGIEnvironment, stylesheet: str, kept: int
) -> WSGIApplication:
    """The response: JSON for a tool, else a page with one row per error."""
    rows = list(entries)
    if wants_json(environ):
        body = json.dumps({"errors": rows, "kept_at_most": kept}, ensure_ascii=False).encode()
        return _respond(body, "application/json", "")
    from .render import render

    nonce = secrets.token_urlsafe(16)
    items = Markup("").join(
        render(
            "error_row.html",
            time=row["time"],
            request=f"{row['method']} {row['url']}" if row["method"] else "",
            type_name=row["type"],
            message=row["message"],
            page_url=row["page_url"],
            console="(console available)" if row["console_available"] else "",
        )
        for row in rows
    )
    page = render(
        "errors.html",
        nonce=nonce,
        css_url=stylesheet,
        count=len(rows),
        kept=kept,
        rows=items if rows else Markup('<p class="empty">No errors kept yet.</p>'),
    )
    return _respond(str(page).encode("utf-8"), "text/html; charset=utf-8", nonce)


def _respond(body: bytes, content_type: str, nonce: str) -> WSGIApplication:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Vary", "Accept"),
    ]
    if nonce:
        policy = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        headers += [("Content-Security-Policy", policy), ("X-Frame-Options", "DENY")]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app
