"""The traceback exactly as Python prints it, made cheap for deep recursion.

model.py stores it on the Traceback; the plaintext view, the page and the log all show it.
"""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import Any

from ._source import is_import_machinery

# A message (or note) longer than this is cut, on the page, in the plaintext and in the log:
# a 20 MB message would otherwise make an 80 MB page and a 20 MB terminal line.
MAX_MESSAGE_CHARS = 10_000


def cut_message(text: str) -> str:
    """``text`` at most ``MAX_MESSAGE_CHARS`` long, saying how much was left out."""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return f"{text[:MAX_MESSAGE_CHARS]}… ({len(text) - MAX_MESSAGE_CHARS} more characters)"


def python_text(exc: BaseException, tb: TracebackType | None) -> str:
    """The traceback as Python prints it, with ``tb`` as ``exc``'s own traceback; only an
    exception line or note longer than ``MAX_MESSAGE_CHARS`` is cut."""
    summary = traceback.TracebackException(type(exc), exc, tb, compact=True)
    _memoize_stacks(summary)
    return "".join(_cut_chunk(chunk) for chunk in summary.format())


def _cut_chunk(chunk: str) -> str:
    if len(chunk) <= MAX_MESSAGE_CHARS:
        return chunk
    return cut_message(chunk.rstrip("\n")) + "\n"


class _MemoStack(traceback.StackSummary):
    """Formats each distinct frame line once: a RecursionError repeats one ~1000 times, and
    Python formats (and parses for carets) every repeat before folding them."""

    _memo: dict[tuple[object, ...], str]

    def format_frame_summary(self, frame_summary: traceback.FrameSummary, **options: Any) -> str:
        # options: 3.13 passes colorize=; it is part of what the text depends on.
        key = (
            tuple(sorted(options.items())),
            frame_summary.filename,
            frame_summary.lineno,
            frame_summary.name,
            frame_summary.line,
            getattr(frame_summary, "end_lineno", None),
            getattr(frame_summary, "colno", None),
            getattr(frame_summary, "end_colno", None),
        )
        try:
            memo = self._memo
        except AttributeError:
            memo = self._memo = {}
        text = memo.get(key)
        if text is None:
            text = memo[key] = super().format_frame_summary(frame_summary, **options)
        return text


def _memoize_stacks(summary: traceback.TracebackException) -> None:
    pending, seen = [summary], set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack = _MemoStack(f for f in item.stack if not is_import_machinery(f.filename))
        item.stack = stack
        pending.extend(e for e in (item.__cause__, item.__context__) if e is not None)
        pending.extend(getattr(item, "exceptions", None) or ())
