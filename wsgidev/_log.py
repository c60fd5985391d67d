"""The one logger wsgidev writes to, and the stderr handler it installs when the user set none."""

from __future__ import annotations

import logging
import re
import sys

logger = logging.getLogger("wsgidev")

# Control characters a terminal would act on, shown as ``\x1b`` instead; tab and newline kept.
TERMINAL_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROLS_BUT_LINES = {c: v for c, v in TERMINAL_CONTROLS.items() if c not in (0x09, 0x0A)}
# A line that reads like one of wsgidev's own (" * Debugger PIN: ...", " * Running on ...").
_LOOKS_OURS = re.compile(r"^(?=[ \t]*\*[ \t])", re.MULTILINE)


def printable(text: str) -> str:
    """``text`` from the app or the client, safe to print: escape sequences shown, not acted
    on; line breaks and tabs kept."""
    return text.translate(_CONTROLS_BUT_LINES)


def neutralise(text: str) -> str:
    """``text`` from the app or the client, safe to log: escape sequences shown, not acted on,
    and no line of it passes for one of wsgidev's own (such lines get a ``  | `` margin)."""
    return _LOOKS_OURS.sub("  | ", text.translate(_CONTROLS_BUT_LINES))


class _AppTextFilter(logging.Filter):
    """Neutralise every value interpolated into a record and its traceback text.

    The format strings are wsgidev's; the values (exception messages, tracebacks, URLs) may be
    written by the app or the client, which could otherwise print a fake " * Debugger PIN:" or
    " * Debugger page:" line into the developer's terminal. Being a filter on the logger, it
    applies whatever handlers the user configured.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(neutralise(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, dict):
            record.args = {k: neutralise(v) if isinstance(v, str) else v for k, v in args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = neutralise(logging.Formatter().formatException(record.exc_info))
        return True


logger.addFilter(_AppTextFilter())


def ensure_handler() -> None:
    """Give the ``wsgidev`` logger a plain stderr handler unless logging is already configured.

    A user who configured logging (a handler on ``wsgidev`` or on the root logger) keeps theirs.
    """
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = _UntilConfigured(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)


class _UntilConfigured(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints wsgidev's lines until the program configures logging itself.

    A server that configures the root logger after the app was built (waitress-serve does)
    gets each line through its own handler; printing it here too would show it twice.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


# A shortage (descriptors, processes) is logged at most this often, not once per connection.
SHORTAGE_LOG_INTERVAL = 10.0
