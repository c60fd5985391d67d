"""The per-request log line: timestamp, redacted URL, colour by status class, duration."""

from __future__ import annotations

import os
import re
import sys
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from .._log import logger

if TYPE_CHECKING:
    from .head import HTTPError

# The debugger's secret, PIN and code must never reach a log file, even when a client sends
# them in the query string (the debugger refuses that, but the line is logged first).
_PARAM = re.compile(r"(^|[&;])([^&;=]*)=([^&;]*)")
_SECRET_NAMES = frozenset({"s", "pin", "cmd"})
_COLOURS = {1: "", 2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[1;31m"}
_RESET = "\x1b[0m"

_stamp_second = -1
_stamp_text = ""


def log_timestamp() -> str:
    """``22/Nov/2026 05:00:00`` for now, computed once per second."""
    global _stamp_second, _stamp_text
    now = int(time.time())
    if now != _stamp_second:
        _stamp_text = time.strftime("%d/%b/%Y %H:%M:%S", time.localtime(now))
        _stamp_second = now
    return _stamp_text


def redact_target(target: str) -> str:
    """Replace the values of ``s=``, ``pin=`` and ``cmd=`` in a request target's query."""
    path, sep, query = target.partition("?")
    if not sep or "=" not in query:
        return _printable(target)
    query = _PARAM.sub(_mask, query)
    return _printable(f"{path}?{query}")


def _mask(match: re.Match[str]) -> str:
    lead, name, value = match.groups()
    key = unquote_plus(name)  # a query parser decodes names: ``%73=`` is ``s=``
    if key not in _SECRET_NAMES or (key == "cmd" and value == "resource"):
        return match.group(0)
    return f"{lead}{name}=***"


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def format_duration(seconds: float) -> str:
    if seconds < 1.0:
        return f"{seconds * 1000:.1f}ms"
    return f"{seconds:.2f}s"


def wants_colour() -> bool:
    """Colour only for a person at a terminal who did not set NO_COLOR (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def colourise(message: str, status: int) -> str:
    colour = _COLOURS.get(status // 100, "")
    return f"{colour}{message}{_RESET}" if colour else message


def log_rejected(address: str, request_line: str, error: HTTPError) -> None:
    """Log a request the parser refused, in the same shape as a served request."""
    logger.info(
        '%s - - [%s] "%s" %d - (%s)',
        address,
        log_timestamp(),
        redact_target(request_line) if request_line else "-",
        error.status,
        error.detail,
    )
