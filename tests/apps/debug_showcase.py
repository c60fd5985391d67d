"""Errors for the debugger's live and browser tests: a chain through library frames, a stream
that fails after its first chunk, and mutual recursion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def parse_payload(raw: str) -> dict[str, Any]:
    api_token = "tok-" + str(123_456)  # noqa: F841 - built at run time, so only its mask shows
    retries = 3  # noqa: F841 - shown in the locals
    return dict(json.loads(raw))


def stream() -> Iterator[bytes]:
    yield b"first chunk of a response that will be cut short\n"
    raise ConnectionError("the backend went away mid-stream")


def ping(n: int) -> int:
    return pong(n + 1)


def pong(n: int) -> int:
    return ping(n + 1)


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ.get("PATH_INFO")
    if path == "/ok":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    if path == "/recursion":
        ping(0)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream()
    try:
        parse_payload('{"user": <script>alert(1)</script>}')
    except ValueError as exc:
        raise RuntimeError("could not read the <payload>") from exc
    return []
