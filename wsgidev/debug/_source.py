"""Step 3a, source side: which lines of a file a frame shows, where the failing expression sits
on its line, and whether a file belongs to the application or to a library.

model.py attaches these values to frames; _highlight.py colours the lines.
"""

from __future__ import annotations

import itertools
import linecache
import os
import site
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import CodeType, FrameType

CONTEXT_BEFORE = 3
CONTEXT_AFTER = 2
# "Expand to the whole function" stops here, centred on the line, for huge functions and modules.
MAX_SOURCE_LINES = 160


@dataclass(frozen=True, slots=True)
class SourceLine:
    number: int
    text: str
    is_current: bool
    in_context: bool


@dataclass(frozen=True, slots=True)
class Source:
    """Lines ``first`` .. of a file: the frame's function (bounded), with the context marked.

    ``lines`` keeps linecache's strings (newline included) so retained tracebacks share them.
    """

    first: int
    lines: tuple[str, ...]
    current: int
    context_first: int
    context_last: int

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1

    @property
    def current_line(self) -> str:
        return self.lines[self.current - self.first].strip()

    def __iter__(self) -> Iterator[SourceLine]:
        for number, text in enumerate(self.lines, self.first):
            yield SourceLine(
                number,
                text.rstrip("\r\n"),
                number == self.current,
                self.context_first <= number <= self.context_last,
            )


def source_excerpt(frame: FrameType, lineno: int) -> Source | None:
    code = frame.f_code
    try:
        lines = linecache.getlines(code.co_filename, frame.f_globals)
    except Exception:  # a loader's get_source may raise anything
        return None
    if not 1 <= lineno <= len(lines):
        return None
    first, last = code_span(code)
    first, last = max(1, min(first, lineno)), min(len(lines), max(last, lineno))
    if last - first + 1 > MAX_SOURCE_LINES:
        first = max(first, lineno - MAX_SOURCE_LINES // 2)
        last = min(last, first + MAX_SOURCE_LINES - 1)
    return Source(
        first=first,
        lines=tuple(lines[first - 1 : last]),
        current=lineno,
        context_first=max(first, lineno - CONTEXT_BEFORE),
        context_last=min(last, lineno + CONTEXT_AFTER),
    )


def failing_columns(
    code: CodeType, lasti: int, lineno: int, source: Source | None
) -> tuple[int, int] | None:
    """Character columns of the instruction that failed, when it sits on one line and is only
    part of it (Python draws no carets under a whole line either)."""
    positions = getattr(code, "co_positions", None)
    if positions is None or lasti < 0 or source is None:
        return None
    position = next(itertools.islice(positions(), lasti // 2, None), None)
    if position is None:
        return None
    start_line, end_line, start, end = position
    if start_line != lineno or end_line != lineno or start is None or end is None:
        return None
    raw = source.lines[lineno - source.first].rstrip("\r\n").encode("utf-8")
    # co_positions counts UTF-8 bytes; the page counts characters.
    first = len(raw[:start].decode("utf-8", "replace"))
    last = len(raw[:end].decode("utf-8", "replace"))
    text = raw.decode("utf-8", "replace")
    indent = len(text) - len(text.lstrip())
    if last <= first or (first <= indent and last >= len(text.rstrip())):
        return None
    return first, last


@lru_cache(maxsize=2048)
def code_span(code: CodeType) -> tuple[int, int]:
    """First and last source line of a code object (decorators included, as co_firstlineno)."""
    numbers = [line for _, _, line in code.co_lines() if line is not None]
    return code.co_firstlineno, max(numbers, default=code.co_firstlineno)


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # site is stubbed out in some embedded interpreters
        pass
    roots.add(str(Path(__file__).resolve().parent.parent))  # wsgidev itself
    # Console-script launchers (``bin/wsgidev``, ``Scripts\\flask.exe``'s script) run installed
    # code; the developer's own files never live there.
    for scheme_scripts in (paths.get("scripts", ""), *_prefix_script_dirs()):
        roots.add(scheme_scripts)
    roots.update([str(Path(root).resolve()) for root in roots if root])
    return tuple(sorted(os.path.join(str(Path(root)), "") for root in roots if root))


def _prefix_script_dirs() -> list[str]:
    prefixes = {sys.prefix, sys.exec_prefix, getattr(sys, "base_prefix", sys.prefix)}
    return [os.path.join(prefix, folder) for prefix in prefixes for folder in ("bin", "Scripts")]


LIBRARY_ROOTS = _library_roots()


@lru_cache(maxsize=4096)
def is_import_machinery(filename: str) -> bool:
    """Frames of Python's import system (``<frozen importlib._bootstrap>``): they stand
    between an import and the module that failed, and say nothing about the app. Python
    leaves them out of an ``import`` statement's traceback; the debugger does everywhere."""
    return filename.startswith("<frozen importlib")


def is_library_file(filename: str) -> bool:
    """Whether frames from ``filename`` belong to Python, an installed package or wsgidev."""
    if filename.startswith("<"):
        return filename.startswith("<frozen")
    parts = Path(filename).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    resolved = str(Path(filename).resolve()) if not filename.startswith(LIBRARY_ROOTS) else filename
    return resolved.startswith(LIBRARY_ROOTS)
