"""Raises from a view whose frame holds ``x = 41`` and ``user_name``: what the console tests poke at."""

from __future__ import annotations

from typing import Any


def view(environ: dict[str, Any]) -> list[bytes]:
    x = 41
    user_name = "ada"
    raise LookupError(f"no page for {user_name!r} at {environ.get('PATH_INFO')!r} (x={x})")


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    return view(environ)
