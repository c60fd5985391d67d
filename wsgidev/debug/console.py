"""Run console input in a frame like the Python REPL, capturing only that command's output.

security.py and commands.py decide whether input may run at all; _console_output renders HTML.
"""

from __future__ import annotations

import codeop
import ctypes
import itertools
import linecache
import rlcompleter
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType
from typing import Any, TextIO

from markupsafe import Markup

from wsgidev.debug import _console_output as output

PROMPT = ">>> "
CONTINUATION = "... "
MAX_COMPLETIONS = 200
# Characters of printed output one command may send back; the rest is only counted.
MAX_OUTPUT = 200_000
# Console sources stay in linecache so tracebacks of console-made functions show their lines.
_MAX_CACHED_SOURCES = 500


class CommandInterrupted(BaseException):
    """Raised into a console command's thread by the page's Ctrl+C; a BaseException so that
    the command's own ``except Exception`` cannot swallow it."""


BUSY_HTML = (
    '<span class="err console-still-running">A command is still running. '
    "Press Ctrl+C to stop it.</span>"
)


def _raise_in_thread(thread_id: int, error: type[BaseException]) -> None:
    """Raise ``error`` in the thread ``thread_id`` at its next bytecode (CPython's async
    exception: the only way to stop Python code another thread is running)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))


@dataclass(frozen=True, slots=True)
class ConsoleResult:
    """What one line of input produced: HTML to append, and whether more input is expected."""

    html: Markup
    more: bool

    @property
    def prompt(self) -> str:
        return CONTINUATION if self.more else PROMPT


@dataclass(frozen=True, slots=True)
class Completion:
    """Candidates for the name or dotted attribute ending the text; they replace ``text[start:]``."""

    start: int
    matches: tuple[str, ...]


# -- per-thread capture of sys.stdout, sys.stderr, sys.stdin and sys.displayhook ---------------


class _Capture:
    """The output of one command, in order: stdout, stderr, displayed values and dump()/help().

    Printed text past ``MAX_OUTPUT`` characters is counted, not kept: a runaway ``print`` loop
    must not build a response the browser cannot show.
    """

    def __init__(self, on_display: Callable[[object], None]) -> None:
        self.parts: list[Markup] = []
        self.on_display = on_display
        self._kind = ""
        self._chunks: list[str] = []
        self._size = 0
        self._dropped = 0

    def write(self, kind: str, text: str) -> None:
        room = MAX_OUTPUT - self._size
        if len(text) > room:
            self._dropped += len(text) - max(room, 0)
            text = text[: max(room, 0)]
            if not text:
                return
        self._size += len(text)
        if kind != self._kind:
            self._flush_text()
            self._kind = kind
        self._chunks.append(text)

    def add_html(self, html: Markup) -> None:
        self._flush_text()
        self.parts.append(html)

    def _flush_text(self) -> None:
        if self._chunks:
            self.parts.append(output.render_stream(self._kind, "".join(self._chunks)))
            self._chunks = []

    def html(self) -> Markup:
        self._flush_text()
        parts = list(self.parts)
        if self._dropped:
            parts.append(output.render_omitted(self._dropped, "of output"))
        return Markup("").join(parts)


_local = threading.local()


def _current_capture() -> _Capture | None:
    return getattr(_local, "capture", None)


class _RoutedStream:
    """Stands in for sys.stdout/stderr while a command runs: that thread's writes are captured,
    every other thread's go to the stream that was there before."""

    def __init__(self, kind: str, fallback: TextIO | None) -> None:
        self._kind = kind
        # None when the process has no such stream (pythonw, daemons); print() then writes nothing.
        self._fallback = fallback

    def write(self, text: str) -> int:
        capture = _current_capture()
        if capture is None:
            return len(text) if self._fallback is None else self._fallback.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        capture.write(self._kind, text)
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _current_capture() is None and self._fallback is not None:
            self._fallback.flush()

    def close(self) -> None:
        # exit() closes sys.stdin, and code may close sys.stdout: not the server's own streams.
        if _current_capture() is None and self._fallback is not None:
            self._fallback.close()

    def isatty(self) -> bool:
        if _current_capture() is not None or self._fallback is None:
            return False
        return self._fallback.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


class _RoutedStdin(_RoutedStream):
    """input() in the console sees end of file instead of blocking on the server's terminal."""

    def read(self, size: int = -1) -> str:
        if _current_capture() is not None or self._fallback is None:
            return ""
        return self._fallback.read(size)

    def readline(self, size: int = -1) -> str:
        if _current_capture() is not None or self._fallback is None:
            return ""
        return self._fallback.readline(size)


def _routed_displayhook(value: object) -> None:
    capture = _current_capture()
    if capture is None:
        _original_displayhook(value)
    else:
        capture.on_display(value)


_original_displayhook: Callable[[object], object] = sys.displayhook
_install_lock = threading.Lock()
_active = 0


@contextmanager
def capturing(capture: _Capture) -> Iterator[None]:
    """Route this thread's stdio and displayhook into ``capture`` for the ``with`` block.

    The proxies are installed while any command runs and removed after the last one, unless
    something else replaced ``sys.stdout`` meanwhile (then it is left alone).
    """
    global _active, _original_displayhook
    with _install_lock:
        if _active == 0:
            if not isinstance(sys.stdout, _RoutedStream):
                sys.stdout = _RoutedStream("out", sys.stdout)
            if not isinstance(sys.stderr, _RoutedStream):
                sys.stderr = _RoutedStream("err", sys.stderr)
            if not isinstance(sys.stdin, _RoutedStream):
                sys.stdin = _RoutedStdin("in", sys.stdin)
            if sys.displayhook is not _routed_displayhook:
                _original_displayhook = sys.displayhook
                sys.displayhook = _routed_displayhook
        _active += 1
    previous = _current_capture()
    _local.capture = capture
    try:
        yield
    finally:
        _local.capture = previous
        with _install_lock:
            _active -= 1
            if _active == 0:
                for name in ("stdout", "stderr", "stdin"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _RoutedStream):
                        setattr(sys, name, stream._fallback)
                if sys.displayhook is _routed_displayhook:
                    sys.displayhook = _original_displayhook


# -- the namespace a frame's console runs in -------------------------------------------------


class FrameNamespace(dict[str, Any]):
    """Console names first (seeded with the frame's locals), then the frame's live globals.

    Used as both globals and locals of ``exec``, so a function defined in the console sees the
    frame's locals and the module's globals alike (a plain ``exec(code, globals, locals)`` would
    give NameError there). Names assigned in the console stay in the console.
    """

    def __init__(self, fallback: Mapping[str, Any], seed: Mapping[str, Any]) -> None:
        super().__init__(seed)
        self.fallback = fallback

    def __missing__(self, key: str) -> Any:
        return self.fallback[key]


_source_names = itertools.count(1)
_cached_sources: OrderedDict[str, None] = OrderedDict()


_sources_lock = threading.Lock()


def _remember_source(source: str) -> str:
    lines = [line + "\n" for line in source.splitlines()]
    with _sources_lock:  # consoles of different frames run in different request threads
        name = f"<console input {next(_source_names)}>"
        linecache.cache[name] = (len(source), None, lines, name)
        _cached_sources[name] = None
        while len(_cached_sources) > _MAX_CACHED_SOURCES:
            old, _ = _cached_sources.popitem(last=False)
            linecache.cache.pop(old, None)
    return name


class Console:
    """An interactive interpreter over one namespace, fed one line at a time like the REPL.

    ``run`` keeps incomplete input (``def f():``) until ``codeop`` finds it complete; a line that
    starts a new statement after an indented block closes the block, as pasting into IPython does.
    One console serves one frame; its lock runs its commands one at a time.
    """

    HELPERS = ("dump", "help")

    def __init__(
        self,
        namespace: Mapping[str, Any] | None = None,
        globals_: Mapping[str, Any] | None = None,
        environ: Mapping[str, Any] | None = None,
        *,
        locals_title: str = "Local variables in this frame",
    ) -> None:
        self.locals_title = locals_title  # what dump() calls its table; a page console has no frame
        seed: dict[str, Any] = {"dump": self._dump, "help": self._help}
        if environ is not None:
            seed["environ"] = environ
        seed.update(namespace or {})
        self.namespace = FrameNamespace(globals_ if globals_ is not None else {}, seed)
        self._compile = codeop.CommandCompiler()
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._capture: _Capture | None = None
        # The thread running a command now (None when idle), and the lock that guards it, so
        # an interrupt from another request's thread stops only a command still running.
        self._running: int | None = None
        self._running_lock = threading.Lock()

    @property
    def is_waiting(self) -> bool:
        """Whether an incomplete statement waits for more lines."""
        return bool(self._buffer)

    @property
    def is_running(self) -> bool:
        """Whether a command is executing now (in another request's thread)."""
        return self._running is not None

    def interrupt(self) -> ConsoleResult:
        """Ctrl+C: stop the command that is running, else drop a half-typed statement (as at
        the REPL's ``...`` prompt).

        A running command gets an exception raised into its thread at its next bytecode; a
        call blocked in C code (``time.sleep``, a socket read) stops once that call returns.
        """
        with self._running_lock:
            running = self._running
            if running is not None:
                _raise_in_thread(running, CommandInterrupted)
        if running is not None:
            note = Markup(
                '<span class="err">KeyboardInterrupt: stopping the running command</span>'
            )
            return ConsoleResult(note, False)
        with self._lock:
            dropped = bool(self._buffer)
            self._buffer.clear()
        note = Markup('<span class="err">KeyboardInterrupt</span>') if dropped else Markup("")
        return ConsoleResult(note, False)

    def run(self, text: str) -> ConsoleResult:
        """Feed ``text`` (one line, or several pasted ones) and return what it printed.

        While another command runs, nothing waits behind it: the answer says so at once.
        """
        if not self._lock.acquire(blocking=False):
            return ConsoleResult(Markup(BUSY_HTML), False)
        try:
            lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            parts = [
                self._push(line)
                for number, line in enumerate(lines)
                if not self._is_blank_inside_block(line, lines[number + 1 :])
            ]
            return ConsoleResult(Markup("").join(parts), bool(self._buffer))
        finally:
            self._lock.release()

    def _is_blank_inside_block(self, line: str, rest: list[str]) -> bool:
        """In pasted code, a blank line between two indented lines does not end the block."""
        if line.strip() or not self._buffer:
            return False
        following = next((later for later in rest if later.strip()), "")
        return following[:1].isspace()

    def _push(self, line: str) -> Markup:
        if not line.strip():
            line = ""  # an auto-indented empty line ends the block, as a blank one does
        source = "\n".join([*self._buffer, line])
        try:
            code = self._compile(source, "<console>", "single")
        except (SyntaxError, ValueError, OverflowError) as exc:
            flushed = self._close_block(line, exc)
            if flushed is not None:
                return flushed
            self._buffer.clear()
            return output.render_traceback(_format_syntax_error(exc))
        if code is None:
            self._buffer.append(line)
            return Markup("")
        self._buffer.clear()
        return self._execute(source)

    def _close_block(self, line: str, error: BaseException) -> Markup | None:
        """``def f(): ...`` then ``f()`` without a blank line: run the block, then the new line."""
        if not self._buffer or not line.strip() or line[:1].isspace():
            return None
        block = "\n".join(self._buffer)
        try:
            code = self._compile(block + "\n", "<console>", "single")
        except (SyntaxError, ValueError, OverflowError):
            return None
        if code is None:
            return None
        self._buffer.clear()
        return self._execute(block + "\n") + self._push(line)

    def _execute(self, source: str) -> Markup:
        filename = _remember_source(source)
        capture = _Capture(self._display)
        self._capture = capture
        try:
            # Compiling inside the capture shows its SyntaxWarnings in the console too.
            with capturing(capture):
                code = self._compile_source(source, filename, capture)
                if code is not None:
                    self._exec(code)
        except CommandInterrupted:
            capture.add_html(Markup('<span class="err">KeyboardInterrupt</span>'))
        except KeyboardInterrupt:
            raise
        except SystemExit as exc:
            capture.add_html(output.render_traceback(_format_exit(exc)))
        except BaseException as exc:  # the user's code failed; show it and keep the console usable
            capture.add_html(output.render_traceback(_format_short_traceback(exc)))
        finally:
            self._capture = None
        return capture.html()

    def _exec(self, code: CodeType) -> None:
        """Run ``code``, interruptible by ``interrupt()`` from another thread meanwhile."""
        with self._running_lock:
            self._running = threading.get_ident()
        try:
            exec(code, self.namespace)
        finally:
            with self._running_lock:
                self._running = None

    def _compile_source(self, source: str, filename: str, capture: _Capture) -> CodeType | None:
        try:
            code: CodeType = compile(source, filename, "single", self._compile.compiler.flags)
        except (SyntaxError, ValueError, OverflowError) as exc:
            capture.add_html(output.render_traceback(_format_syntax_error(exc)))
            return None
        return code

    def _display(self, value: object) -> None:
        if value is None or self._capture is None:
            return
        self.namespace["_"] = value
        shown = output.render_repr(output.safe_repr(value))
        self._capture.add_html(Markup('<div class="display">{}</div>').format(shown))

    def _dump(self, *args: object, all: bool = False) -> None:
        """dump() shows the console's variables; dump(obj) shows obj's attributes or items."""
        if self._capture is None:
            return
        if len(args) > 1:
            raise TypeError(f"dump() takes at most 1 object ({len(args)} given)")
        if args:
            html = output.render_dump(args[0], show_all=all)
        else:
            html = output.render_locals(
                self.namespace, (*self.HELPERS, "__builtins__", "_"), self.locals_title
            )
        self._capture.add_html(html)

    def _help(self, *args: object) -> None:
        """help(obj) shows obj's documentation; help() explains what the console offers."""
        if self._capture is None:
            return
        self._capture.add_html(
            output.render_help(args[0] if args else None, has_argument=bool(args))
        )

    def complete(self, text: str) -> Completion:
        """Names and attributes completing the end of ``text``, as the REPL's Tab would offer."""
        start = _trailing_name_start(text)
        prefix = text[start:]
        if not prefix:
            return Completion(len(text), ())
        merged = {**self.namespace.fallback, **self.namespace}
        completer = rlcompleter.Completer(merged)
        found: dict[str, None] = {}
        with self._lock, capturing(_Capture(lambda value: None)):
            for state in range(MAX_COMPLETIONS * 2):
                try:
                    match = completer.complete(prefix, state)
                except Exception:  # evaluating the dotted prefix failed: no candidates
                    break
                if match is None or len(found) >= MAX_COMPLETIONS:
                    break
                found[match] = None
        return Completion(start, tuple(sorted(found, key=_completion_order)))


def _trailing_name_start(text: str) -> int:
    """Where the dotted name ending ``text`` starts (``len(text)`` when none does).

    A scan from the end: a regular expression searched from every position backtracks over
    the whole tail each time, quadratic in a pasted megabyte.
    """
    start = len(text)
    while start and (text[start - 1] in "._" or text[start - 1].isalnum()):
        start -= 1
    # A name starts with a letter or an underscore, not a digit or a dot.
    while start < len(text) and not _starts_name(text[start]):
        start += 1
    return start


def _starts_name(char: str) -> bool:
    return char == "_" or (char.isascii() and char.isalpha())


def _completion_order(name: str) -> tuple[int, str]:
    last = name.rsplit(".", 1)[-1]
    return (last.startswith("_") + last.startswith("__"), name)


def _format_exit(exc: SystemExit) -> str:
    return (
        f"SystemExit({exc.code!r}) ignored: the console runs inside the server, which keeps "
        "running. Close the console instead."
    )


def _format_syntax_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")


def _format_short_traceback(exc: BaseException) -> str:
    """The traceback from the console input down, without this module's own frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    lines = traceback.TracebackException(type(exc), exc, tb, compact=True).format()
    return "".join(lines).rstrip("\n")
