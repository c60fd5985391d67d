"""Which form of the error page a client gets: the HTML page, plaintext, JSON or Markdown.

Only a client that asks for HTML by name gets it; curl's ``*/*``, scripts and XHR get text.
"""

from __future__ import annotations

from typing import Literal

from wsgidev._types import WSGIEnvironment

PageFormat = Literal["html", "text", "json", "markdown"]


def choose_format(environ: WSGIEnvironment) -> PageFormat:
    """Pick the form for this request's ``Accept`` (and XHR/htmx markers)."""
    weights = parse_accept(environ.get("HTTP_ACCEPT", ""))
    html = max(weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0))
    json = weights.get("application/json", 0.0)
    text = weights.get("text/plain", 0.0)
    markdown = weights.get("text/markdown", 0.0)
    if markdown > 0 and markdown >= max(html, json, text):
        return "markdown"  # editors and coding agents ask for it by name
    if json > 0 and json >= html and json >= text:
        return "json"
    scripted = (
        str(environ.get("HTTP_X_REQUESTED_WITH", "")).lower() == "xmlhttprequest"
        or "HTTP_HX_REQUEST" in environ
    )
    if html > 0 and html >= text and not scripted:
        return "html"
    return "text"


def parse_accept(header: str) -> dict[str, float]:
    """``text/html;q=0.9, */*`` -> ``{"text/html": 0.9, "*/*": 1.0}``; malformed weights count 0."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = min(1.0, max(0.0, float(value)))
                except ValueError:
                    weight = 0.0
        media = media.lower()
        weights[media] = max(weights.get(media, 0.0), weight)
    return weights
