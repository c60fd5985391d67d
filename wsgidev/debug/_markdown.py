"""The traceback as Markdown, for editors and coding agents (``Accept: text/markdown``).

Structure: a heading with the exception and the request line, each exception of the chain
(oldest first, as Python prints them) with the app's frames as fenced ``python`` source and
the raising line marked, the masked locals of the raising frame, the request, and the link
to the interactive page. Everything the app or the client wrote (messages, source, values)
goes inside fences sized to never be closed by its own backticks, so it stays text.
"""

from __future__ import annotations

import re

from .model import ChainItem, ExceptionInfo, Frame, Repeat, Traceback

_BACKTICKS = re.compile(r"`+")


def markdown_view(tb: Traceback, page_url: str | None = None) -> str:
    exc = tb.exception
    request = tb.request
    out = [f"# {_inline(exc.type_name)}", ""]
    if exc.message:
        out += [_fence(exc.message, "text"), ""]
    if request is not None:
        out += [f"Request: {_inline(f'{request.method} {request.url}')}", ""]
    if page_url:
        out += [f"Interactive traceback: <{page_url}>", ""]
    out += ["## Traceback", ""]
    out += _chain(tb.chain, level=3)
    raising = _raising_frame(exc)
    if raising is not None and raising.locals:
        out += [f"## Locals of {_inline(raising.function)}", ""]
        width = min(24, max(len(local.name) for local in raising.locals))
        lines = [f"{local.name.ljust(width)} = {local.value}" for local in raising.locals]
        if raising.locals_omitted:
            lines.append(f"… and {raising.locals_omitted} more")
        out += [_fence("\n".join(lines), "text"), ""]
    if request is not None:
        out += ["## Request", ""]
        fields = [f"{request.method} {request.url}", ""]
        fields += [f"{field.name}: {field.value}" for field in request.headers]
        out += [_fence("\n".join(fields), "http"), ""]
    out += ["## Python's traceback", "", _fence(tb.plaintext.rstrip("\n"), "pytb"), ""]
    return "\n".join(out)


def _chain(chain: tuple[ChainItem, ...], level: int) -> list[str]:
    out: list[str] = []
    for item in chain:
        out += _exception(item.exception, level)
        if item.link:  # how this exception led to the next one, as Python says it
            out += [f"*{item.sentence}*", ""]
    return out


def _exception(exc: ExceptionInfo, level: int) -> list[str]:
    hashes = "#" * min(level, 6)
    out = [f"{hashes} {_inline(exc.type_name)}", ""]
    if exc.message:
        out += [_fence(exc.message, "text"), ""]
    for note in exc.notes:
        out += ["Note:", "", _fence(note, "text"), ""]
    if exc.syntax is not None:
        detail = exc.syntax
        start = max(0, (detail.offset or 1) - 1)
        end = max(start + 1, (detail.end_offset or 0) - 1)
        caret = " " * start + "^" * (end - start)
        out += [
            f"Python could not compile {_inline(detail.filename)}, line {detail.lineno}:",
            "",
            _fence(f"{detail.text}\n{caret}", "python"),
            "",
        ]
    library = 0
    for entry in exc.entries:
        if isinstance(entry, Repeat):
            out += [f"*The {entry.length} frame(s) above repeat {entry.count} more times.*", ""]
            continue
        if entry.kind == "library" and entry is not _raising_frame(exc):
            library += 1
            continue
        if library:
            out += [f"*{library} library frame(s) omitted.*", ""]
            library = 0
        out += _frame(entry, hashes + "#")
    if library:
        out += [f"*{library} library frame(s) omitted.*", ""]
    for number, member in enumerate(exc.group, 1):
        total = len(exc.group) + exc.group_omitted
        out += [f"{hashes}# Sub-exception {number} of {total}", ""]
        out += _chain(member, level + 2)
    if exc.group_omitted:
        out += [f"*{exc.group_omitted} more sub-exception(s) omitted.*", ""]
    return out


def _frame(frame: Frame, hashes: str) -> list[str]:
    head = f"{hashes} {_inline(frame.filename)}, line {frame.lineno}, in {_inline(frame.function)}"
    source = frame.source
    if source is None:
        return [head, ""]
    first = max(source.context_first, source.first)
    last = min(source.context_last, source.last)
    width = len(str(last))
    lines = []
    for number in range(first, last + 1):
        text = source.lines[number - source.first].rstrip("\r\n")
        marker = ">" if number == source.current else " "
        lines.append(f"{marker} {number:>{width}} | {text}")
    return [head, "", _fence("\n".join(lines), "python"), ""]


def _raising_frame(exc: ExceptionInfo) -> Frame | None:
    frames = exc.frames
    return frames[-1] if frames else None


def _fence(text: str, language: str) -> str:
    """``text`` in a fenced block longer than any run of backticks inside it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _inline(text: str) -> str:
    """``text`` as inline code, whatever backticks or line breaks it holds."""
    text = " ".join(text.split())
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"
