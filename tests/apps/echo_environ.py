"""Answers with a JSON object of the environ's string, bool and int values (for wiring checks)."""

from __future__ import annotations

import json
from typing import Any


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    shown = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
    body = json.dumps(shown, sort_keys=True).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
