"""Step 3a: an exception -> plain typed values (chain, groups, frames, source, locals); no HTML.

render.py, the plaintext and JSON views and the console all read these values. Live frames are
handed out separately (``Built.live_frames``) and only when the console needs them.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import CodeType, FrameType, TracebackType
from typing import Any, Literal

from ._deadline import Deadlines, TimedOut
from ._python_text import cut_message, python_text
from ._reprs import MASK, MAX_REPR_SECONDS, looks_secret, plain, safe_repr
from ._request import RequestInfo
from ._source import (
    LIBRARY_ROOTS,
    Source,
    SourceLine,
    code_span,
    failing_columns,
    is_import_machinery,
    is_library_file,
    source_excerpt,
)

__all__ = [
    "CAUSE_SENTENCE",
    "CONTEXT_SENTENCE",
    "LIBRARY_ROOTS",
    "Built",
    "ChainItem",
    "ExceptionInfo",
    "Frame",
    "Local",
    "Repeat",
    "Source",
    "SourceLine",
    "SyntaxDetail",
    "Traceback",
    "build_traceback",
    "code_span",
    "collapse_repeats",
    "exception_type_name",
    "is_library_file",
]

Link = Literal["cause", "context"]
FrameKind = Literal["app", "library"]

# Python's own connecting sentences (Lib/traceback.py), so the page reads like the terminal.
CAUSE_SENTENCE = "The above exception was the direct cause of the following exception:"
CONTEXT_SENTENCE = "During handling of the above exception, another exception occurred:"
SENTENCES: dict[Link, str] = {"cause": CAUSE_SENTENCE, "context": CONTEXT_SENTENCE}

MAX_LOCALS = 40
# Wall-clock time the reprs of one traceback's locals may take in all before the rest are
# skipped (each one also stops after MAX_REPR_SECONDS), so a page renders in well under 1 s.
REPR_BUDGET_SECONDS = 0.5
# A cycle of up to this many frames that repeats at least MIN_REPEATS more times is collapsed.
MAX_CYCLE = 8
MIN_REPEATS = 3
# The same limits Python applies when it prints an ExceptionGroup.
MAX_GROUP_WIDTH = 15
MAX_GROUP_DEPTH = 10

_BaseExceptionGroup: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)


@dataclass(frozen=True, slots=True)
class Local:
    """A local variable: a bounded repr, or ``MASK`` when the name looks like a secret."""

    name: str
    value: str
    masked: bool = False
    failed: bool = False
    # A name the template engine or framework puts in every template (range, url_for, ...).
    engine_global: bool = False


@dataclass(frozen=True, slots=True)
class Frame:
    id: int
    filename: str
    lineno: int
    function: str
    kind: FrameKind
    source: Source | None
    locals: tuple[Local, ...]
    locals_omitted: int = 0
    # The failing expression's columns on the current line (3.11+), as Python's ^^^ marks them.
    columns: tuple[int, int] | None = None

    @property
    def line(self) -> str:
        return self.source.current_line if self.source is not None else ""


@dataclass(frozen=True, slots=True)
class Repeat:
    """The ``length`` frames just before this marker repeat ``count`` more times (recursion)."""

    length: int
    count: int


Entry = Frame | Repeat


@dataclass(frozen=True, slots=True)
class SyntaxDetail:
    filename: str
    lineno: int | None
    text: str
    offset: int | None
    end_offset: int | None


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    type_name: str
    message: str
    entries: tuple[Entry, ...]
    notes: tuple[str, ...] = ()
    hidden_frames: int = 0
    syntax: SyntaxDetail | None = None
    group: tuple[tuple[ChainItem, ...], ...] = ()
    is_group: bool = False
    group_omitted: int = 0
    group_too_deep: bool = False

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(entry for entry in self.entries if isinstance(entry, Frame))


@dataclass(frozen=True, slots=True)
class ChainItem:
    """One exception of a chain; ``link`` says how it leads to the next one printed, if any."""

    exception: ExceptionInfo
    link: Link | None = None

    @property
    def sentence(self) -> str:
        return SENTENCES[self.link] if self.link else ""


@dataclass(frozen=True, slots=True)
class Traceback:
    """An error as Python prints it: ``chain`` oldest first, the exception raised last."""

    chain: tuple[ChainItem, ...]
    plaintext: str
    request: RequestInfo | None = None

    @property
    def exception(self) -> ExceptionInfo:
        return self.chain[-1].exception

    def all_frames(self) -> Iterator[Frame]:
        """Every frame of the chain and of nested exception groups."""
        stack = list(self.chain)
        while stack:
            item = stack.pop(0)
            yield from item.exception.frames
            for member in item.exception.group:
                stack.extend(member)


@dataclass(frozen=True, slots=True)
class Built:
    """A Traceback plus the live frames behind its frame ids (empty unless asked for)."""

    traceback: Traceback
    live_frames: dict[int, FrameType] = field(default_factory=dict)


def build_traceback(
    exc: BaseException,
    *,
    frame_ids: Iterator[int],
    skip: int = 0,
    request: RequestInfo | None = None,
    show_hidden_frames: bool = False,
    keep_frames: bool = False,
) -> Built:
    """Describe ``exc`` and its whole chain.

    ``skip`` drops that many outer frames of ``exc``'s own traceback (the catching middleware);
    ``frame_ids`` numbers the frames; ``keep_frames`` returns the live frames by id.
    """
    top = _skip(exc.__traceback__, skip)
    plaintext = python_text(exc, top)
    builder = _Builder(frame_ids, show_hidden_frames, keep_frames)
    try:
        chain = builder.chain(exc, top, depth=0)
    finally:
        builder.reprs.close()
    return Built(Traceback(chain, plaintext, request), builder.live)


def _skip(tb: TracebackType | None, count: int) -> TracebackType | None:
    for _ in range(count):
        if tb is None:
            break
        tb = tb.tb_next
    return tb


class _Builder:
    def __init__(self, frame_ids: Iterator[int], show_hidden: bool, keep_frames: bool) -> None:
        self.frame_ids = frame_ids
        self.show_hidden = show_hidden
        self.keep_frames = keep_frames
        self.live: dict[int, FrameType] = {}
        self.reprs = Deadlines(REPR_BUDGET_SECONDS)
        self.walked_frames: list[FrameType] = []
        self._jinja_globals: dict[str, Any] | None = None

    def chain(
        self, exc: BaseException, top: TracebackType | None, depth: int
    ) -> tuple[ChainItem, ...]:
        found: list[tuple[BaseException, Link | None]] = []
        seen: set[int] = set()
        current: BaseException | None = exc
        link: Link | None = None
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            found.append((current, link))
            if current.__cause__ is not None:
                current, link = current.__cause__, "cause"
            elif current.__context__ is not None and not current.__suppress_context__:
                current, link = current.__context__, "context"
            else:
                current = None
        items = [
            ChainItem(self.exception(e, top if e is exc else e.__traceback__, depth), link)
            for e, link in found
        ]
        return tuple(reversed(items))

    def exception(self, exc: BaseException, tb: TracebackType | None, depth: int) -> ExceptionInfo:
        walked = [(t.tb_frame, t.tb_lineno or 0, t.tb_lasti) for t in _walk(tb)]
        self.walked_frames.extend(f for f, _, _ in walked)
        hidden = 0
        if not self.show_hidden:
            # Even when nothing else is left: a SyntaxError's own detail names the file.
            walked = [w for w in walked if not is_import_machinery(w[0].f_code.co_filename)]
            visible = [(f, n, i) for f, n, i in walked if not _is_hidden(f)]
            if visible:  # a traceback made only of hidden frames would say nothing at all
                hidden = len(walked) - len(visible)
                walked = visible
        entries: list[Entry] = []
        for item in collapse_repeats([(f.f_code, n) for f, n, _ in walked]):
            if isinstance(item, Repeat):
                entries.append(item)
            else:
                entries.append(self.frame(*walked[item]))
        info = ExceptionInfo(
            type_name=exception_type_name(type(exc)),
            message=_message(exc),
            entries=tuple(entries),
            notes=_notes(exc),
            hidden_frames=hidden,
            syntax=_syntax(exc),
        )
        if _BaseExceptionGroup is not None and isinstance(exc, _BaseExceptionGroup):
            return self.group(info, exc, depth)
        return info

    def group(self, info: ExceptionInfo, exc: BaseException, depth: int) -> ExceptionInfo:
        members: tuple[BaseException, ...] = getattr(exc, "exceptions", ())
        too_deep = depth + 1 >= MAX_GROUP_DEPTH
        shown = () if too_deep else members[:MAX_GROUP_WIDTH]
        return ExceptionInfo(
            type_name=info.type_name,
            message=info.message,
            entries=info.entries,
            notes=info.notes,
            hidden_frames=info.hidden_frames,
            syntax=info.syntax,
            group=tuple(self.chain(member, member.__traceback__, depth + 1) for member in shown),
            is_group=True,
            group_omitted=len(members) - len(shown),
            group_too_deep=too_deep,
        )

    def frame(self, frame: FrameType, lineno: int, lasti: int) -> Frame:
        code = frame.f_code
        frame_id = next(self.frame_ids)
        if self.keep_frames:
            self.live[frame_id] = frame
        local_values, omitted = self.locals(frame)
        source = source_excerpt(frame, lineno)
        return Frame(
            id=frame_id,
            filename=plain(code.co_filename),
            lineno=lineno,
            function=plain(_function_name(code)),
            kind="library" if is_library_file(code.co_filename) else "app",
            source=source,
            columns=failing_columns(code, lasti, lineno, source),
            locals=local_values,
            locals_omitted=omitted,
        )

    def locals(self, frame: FrameType) -> tuple[tuple[Local, ...], int]:
        try:
            namespace = dict(frame.f_locals)
        except Exception:  # a broken frame proxy must not cost the whole page
            return (), 0
        at_module_level = frame.f_code.co_name == "<module>"
        names = [
            plain(name)
            for name in namespace
            if isinstance(name, str)
            and name != "__traceback_hide__"
            and not (at_module_level and name.startswith("__") and name.endswith("__"))
        ]
        engine = self.engine_globals(frame, namespace)
        # A template's own variables first; what the engine adds to every template after.
        names.sort(key=lambda name: name in engine)
        values = []
        for name in names[:MAX_LOCALS]:
            folded = name in engine
            if looks_secret(name):
                values.append(Local(name, MASK, masked=True, engine_global=folded))
            elif self.reprs.spent:
                skipped = "<repr skipped: time budget spent>"
                values.append(Local(name, skipped, failed=True, engine_global=folded))
            else:
                text, failed = self.show(namespace[name])
                values.append(Local(name, text, failed=failed, engine_global=folded))
        return tuple(values), max(0, len(names) - MAX_LOCALS)

    def engine_globals(self, frame: FrameType, namespace: dict[str, Any]) -> frozenset[str]:
        """In a Jinja template's frame, the names that are the engine's and the framework's
        globals rather than the template's own context: Jinja's defaults, the environment's
        globals (the same object, so a template variable of that name stays its own), and
        Flask's request, session and g."""
        if "__jinja_exception__" not in frame.f_globals:
            return frozenset()
        jinja = sys.modules.get("jinja2")
        if jinja is None:
            return frozenset()
        defaults = getattr(getattr(jinja, "defaults", None), "DEFAULT_NAMESPACE", {})
        found = set()
        for name, value in {**defaults, **self.jinja_globals()}.items():
            if name in namespace and namespace[name] is value:
                found.add(name)
        for name in _FLASK_CONTEXT:  # Flask's context processor adds these to every template
            module = type(namespace.get(name)).__module__
            if module.startswith(("flask.", "werkzeug.")):
                found.add(name)
        return frozenset(found)

    def jinja_globals(self) -> dict[str, Any]:
        """The globals of the Jinja environment that rendered the template (found as
        ``self`` of ``Template.render`` in the traceback), once per traceback."""
        if self._jinja_globals is None:
            self._jinja_globals = {}
            jinja = sys.modules["jinja2"]
            for walked in self.walked_frames:
                try:
                    candidate = walked.f_locals.get("self")
                    environment = getattr(candidate, "environment", candidate)
                    if isinstance(environment, jinja.Environment):
                        self._jinja_globals = dict(environment.globals)
                        break
                except Exception:  # an app object's attribute that raises: not an engine
                    continue
        return self._jinja_globals

    def show(self, value: object) -> tuple[str, bool]:
        """``safe_repr(value)``, within its own deadline and the traceback's budget even when
        app code blocks (see _deadline.py); builtin scalars need no helper thread."""
        if type(value) in _SCALARS:
            return safe_repr(value)
        try:
            return self.reprs.call(lambda: safe_repr(value), MAX_REPR_SECONDS)
        except TimedOut:
            return f"<repr failed: took longer than {MAX_REPR_SECONDS:g} s>", True


# Their repr is bounded C code that never calls back into the app.
_SCALARS = frozenset({str, bytes, int, float, bool, type(None)})


_FLASK_CONTEXT = ("request", "session", "g")


def _function_name(code: CodeType) -> str:
    """The qualified name, unless the code was renamed after compiling (Jinja names a
    template's frame "top-level template code" or "block 'body'" through co_name only)."""
    qualname: str = getattr(code, "co_qualname", code.co_name)
    return qualname if qualname.rpartition(".")[2] == code.co_name else code.co_name


def _walk(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _is_hidden(frame: FrameType) -> bool:
    try:
        return bool(frame.f_locals.get("__traceback_hide__", False))
    except Exception:  # an odd __bool__ on the marker: show the frame
        return False


def collapse_repeats(keys: list[tuple[CodeType, int]]) -> list[int | Repeat]:
    """Indexes of ``keys`` to show, with ``Repeat`` markers where a cycle of frames repeats.

    The first and last occurrence of a collapsed cycle stay, so the frame that raised is shown.
    """
    out: list[int | Repeat] = []
    index, total = 0, len(keys)
    while index < total:
        best_repeats, best_length = 0, 0
        for length in range(1, MAX_CYCLE + 1):
            if index + length * (MIN_REPEATS + 1) > total:
                break
            cycle = keys[index : index + length]
            repeats, probe = 0, index + length
            while probe + length <= total and keys[probe : probe + length] == cycle:
                repeats += 1
                probe += length
            if repeats >= MIN_REPEATS and repeats * length > best_repeats * best_length:
                best_repeats, best_length = repeats, length
        if not best_repeats:
            out.append(index)
            index += 1
            continue
        out.extend(range(index, index + best_length))
        end = index + best_length * (best_repeats + 1)
        if end == total:  # keep the innermost cycle too: it holds the frame that raised
            out.append(Repeat(best_length, best_repeats - 1))
            out.extend(range(end - best_length, end))
        else:
            out.append(Repeat(best_length, best_repeats))
        index = end
    return out


def exception_type_name(kind: type[BaseException]) -> str:
    """The type as Python prints it: ``KeyError``, ``mypkg.errors.Oops``."""
    module = kind.__module__
    name = plain(kind.__qualname__)
    if module in ("__main__", "builtins"):
        return name
    return f"{plain(module) if isinstance(module, str) else '<unknown>'}.{name}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return cut_message(plain(str(exc.msg)))
    try:
        return cut_message(plain(str(exc)))
    except Exception:  # Python prints the same placeholder when str() fails
        return "<exception str() failed>"


def _notes(exc: BaseException) -> tuple[str, ...]:
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list | tuple):
        return ()
    out = []
    for note in notes:
        if isinstance(note, str):
            out.append(cut_message(plain(note)))
        else:
            out.append(safe_repr(note)[0])
    return tuple(out)


def _syntax(exc: BaseException) -> SyntaxDetail | None:
    if not isinstance(exc, SyntaxError):
        return None
    return SyntaxDetail(
        filename=plain(str(exc.filename or "<string>")),
        lineno=exc.lineno,
        text=plain(exc.text or "").rstrip("\r\n"),
        offset=exc.offset,
        end_offset=getattr(exc, "end_offset", None),
    )
