"""Errors of every shape an agent reads: a chain, a group, and code with backticks in it."""

from __future__ import annotations

from typing import Any


def load(key: str) -> str:
    template = "```python\nprint('fenced')\n```"  # backticks the Markdown must keep as text
    data = {"a": template}
    return data[key]


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ.get("PATH_INFO")
    if path == "/chain":
        try:
            load("b")
        except KeyError as exc:
            raise ValueError("could not load ``b`` for the `report`") from exc
    if path == "/group":
        raise ExceptionGroup("two checks failed", [ValueError("first"), TypeError("second")])  # noqa: F821
    if path == "/syntax":
        compile("total = (1 +\n", "report.py", "exec")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
