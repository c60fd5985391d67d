"""Raises from a few frames deep, with a local that looks like a secret."""

from __future__ import annotations

from typing import Any


def load_user(user_id: int) -> dict[str, Any]:
    password = "hunter2"  # noqa: F841 - shown masked on the traceback page
    users: dict[int, dict[str, Any]] = {}
    return users[user_id]


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ.get("PATH_INFO") == "/ok":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    load_user(42)
    return []
