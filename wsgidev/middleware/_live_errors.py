"""Error summaries for the live-reload overlay: what a background request's error shows.

The debugger inside the stack renders the retained error as JSON; this keeps the exception,
the request line and the raising app frame's source around its line, nothing more.
"""

from __future__ import annotations

import json
import linecache
from typing import Any

from wsgidev._types import WSGIApplication, WSGIEnvironment
from wsgidev.debug import DebuggedApplication

# Lines of source around the raising line in an error summary, and their width.
SOURCE_CONTEXT = 3
SOURCE_WIDTH = 300


def error_summary(
    app: WSGIApplication, environ: WSGIEnvironment, token: str
) -> dict[str, Any] | None:
    """What the overlay shows of retained error ``token``, asked of the debugger inside ``app``
    (None without one: the app itself is never called for this)."""
    debugger = find_debugger(app)
    if debugger is None:
        return None
    text = debugger.error_text(token, "json", environ)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if not isinstance(data, dict) or "type" not in data:
        return None
    return _summarise(data)


def find_debugger(app: object) -> DebuggedApplication | None:
    """The DebuggedApplication inside ``app``, looking through the middleware around it."""
    current: object = app
    for _ in range(16):
        if isinstance(current, DebuggedApplication):
            return current
        current = next(
            (
                inner
                for name in ("app", "application", "wsgi_app", "__wrapped__")
                if callable(inner := getattr(current, name, None))
            ),
            None,
        )
        if current is None:
            return None
    return None


def _summarise(data: dict[str, Any]) -> dict[str, Any]:
    chain_items = [item for item in data.get("chain") or [] if isinstance(item, dict)]
    item = next(
        (
            item
            for item in reversed(chain_items)
            if item.get("type") == data.get("type") and item.get("message") == data.get("message")
        ),
        chain_items[-1] if chain_items else None,
    )
    frames = [
        f for f in (item or {}).get("frames") or [] if isinstance(f, dict) and "filename" in f
    ]
    frame = next(
        (f for f in reversed(frames) if f.get("kind") == "app"), frames[-1] if frames else None
    )
    request = data.get("request") or None
    return {
        "type": data.get("type"),
        "message": data.get("message"),
        "traceback_url": data.get("traceback_url"),
        "request": None
        if not isinstance(request, dict)
        else {"method": request.get("method"), "url": request.get("url")},
        "frame": None if frame is None else _frame_summary(frame),
    }


def _frame_summary(frame: dict[str, Any]) -> dict[str, Any]:
    filename, lineno = str(frame.get("filename")), frame.get("lineno")
    lines: list[dict[str, Any]] = []
    if isinstance(lineno, int) and lineno > 0:
        source = linecache.getlines(filename)
        first = max(lineno - SOURCE_CONTEXT, 1)
        for number in range(first, min(lineno + SOURCE_CONTEXT, len(source)) + 1):
            lines.append(
                {"lineno": number, "text": source[number - 1].rstrip("\r\n")[:SOURCE_WIDTH]}
            )
        if not lines and frame.get("line"):
            lines.append({"lineno": lineno, "text": str(frame["line"])[:SOURCE_WIDTH]})
    return {
        "filename": filename,
        "lineno": lineno,
        "function": frame.get("function"),
        "lines": lines,
    }
