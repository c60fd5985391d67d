"""The plaintext and JSON views of a Traceback, for terminals, XHR consoles and tools.

The plaintext starts with the traceback exactly as Python prints it; the locals of the frame that
raised follow, masked as on the page, then the URL of the interactive page.
"""

from __future__ import annotations

import json

from .model import ChainItem, ExceptionInfo, Frame, Repeat, SyntaxDetail, Traceback


def plaintext_view(tb: Traceback, page_url: str | None = None) -> str:
    """Python's traceback text, then the failing frame's locals and the page's URL."""
    parts = [tb.plaintext.rstrip("\n"), ""]
    for frame in _interesting_frames(tb.exception):
        if not frame.locals:
            continue
        parts.append(f'Locals of {frame.function} (File "{frame.filename}", line {frame.lineno}):')
        width = min(24, max(len(local.name) for local in frame.locals))
        parts.extend(f"    {local.name.ljust(width)} = {local.value}" for local in frame.locals)
        if frame.locals_omitted:
            parts.append(f"    … and {frame.locals_omitted} more")
        parts.append("")
    if page_url:
        parts.append(f"Interactive traceback: {page_url}")
        parts.append("")
    return "\n".join(parts)


def _interesting_frames(exc: ExceptionInfo) -> list[Frame]:
    """The frame that raised, and the innermost application frame when that one is a library's."""
    frames = exc.frames
    if not frames:
        return []
    chosen = [frames[-1]]
    if frames[-1].kind == "library":
        app_frames = [frame for frame in frames if frame.kind == "app"]
        if app_frames:
            chosen.insert(0, app_frames[-1])
    return chosen


def json_view(tb: Traceback, page_url: str | None = None) -> str:
    """The chain, frames, locals and request as JSON; ``text`` holds the plaintext traceback."""
    exc = tb.exception
    request = tb.request
    data: dict[str, object] = {
        "type": exc.type_name,
        "message": exc.message,
        "traceback_url": page_url,
        "chain": [_item(item) for item in tb.chain],
        "request": None
        if request is None
        else {
            "method": request.method,
            "url": request.url,
            "headers": {field.name: field.value for field in request.headers},
            "environ": {field.name: field.value for field in request.environ},
        },
        "text": tb.plaintext,
    }
    return json.dumps(data, ensure_ascii=False, indent=1)


def _item(item: ChainItem) -> dict[str, object]:
    exc = item.exception
    data: dict[str, object] = {
        "type": exc.type_name,
        "message": exc.message,
        "notes": list(exc.notes),
        "link": item.link,
        "sentence": item.sentence or None,
        "frames": [_entry(entry) for entry in exc.entries],
        "hidden_frames": exc.hidden_frames,
    }
    if exc.syntax is not None:
        data["syntax_error"] = _syntax(exc.syntax)
    if exc.is_group:
        data["exceptions"] = [[_item(member) for member in chain] for chain in exc.group]
        data["exceptions_omitted"] = exc.group_omitted
    return data


def _entry(entry: Frame | Repeat) -> dict[str, object]:
    if isinstance(entry, Repeat):
        return {"repeat": {"frames": entry.length, "times": entry.count}}
    return {
        "id": entry.id,
        "filename": entry.filename,
        "lineno": entry.lineno,
        "function": entry.function,
        "kind": entry.kind,
        "line": entry.line,
        "locals": {local.name: local.value for local in entry.locals},
    }


def _syntax(detail: SyntaxDetail) -> dict[str, object]:
    return {
        "filename": detail.filename,
        "lineno": detail.lineno,
        "text": detail.text,
        "offset": detail.offset,
        "end_offset": detail.end_offset,
    }
