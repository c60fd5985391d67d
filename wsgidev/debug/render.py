"""Step 3b: Traceback values -> the HTML page, from templates/ with markupsafe escaping.

Every field is escaped by ``Markup.format`` unless it is Markup already; the only outside HTML
trusted is Pygments' output in _highlight.py. Scripts and styles are separate files (static/).
"""

from __future__ import annotations

import linecache
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup

from ._editor import editor_url
from ._highlight import highlight_lines
from ._request import RequestField, RequestInfo
from ._source import LIBRARY_ROOTS
from ._store import DEFAULT_MAX_FRAME_BYTES
from ._template import template as load_template
from .model import (
    ChainItem,
    Entry,
    ExceptionInfo,
    Frame,
    Local,
    Repeat,
    Source,
    SyntaxDetail,
    Traceback,
)

_NEWLINE = Markup("\n")
# Past this size the page shows the plaintext's ends and links to the whole of it.
PLAINTEXT_INLINE_CHARS = 40_000
PLAINTEXT_HEAD_LINES = 60
PLAINTEXT_TAIL_LINES = 40
# Lines of the file shown around a syntax error's line.
SYNTAX_CONTEXT_BEFORE = 3
SYNTAX_CONTEXT_AFTER = 2
_EMPTY = Markup("")


@dataclass(frozen=True, slots=True)
class PageContext:
    """Everything the page needs besides the traceback: ids, URLs and settings."""

    secret: str
    token: str
    nonce: str
    page_url: str
    asset_urls: Mapping[str, str]
    evalex: bool = False
    multiprocess: bool = False
    console_path: str = "/console"
    editor: str | None = None
    retained: int = 32
    console_released: bool = False
    extra_scripts: tuple[str, ...] = ()
    extra_styles: tuple[str, ...] = ()


def _kept_note(context: PageContext) -> Markup:
    if not context.page_url:
        return Markup(
            "This page is not kept: this multi-process server could not store it where its "
            "other processes find it (the server's log says why)."
        )
    return render("kept_note.html", page_url=context.page_url, retained=context.retained)


def _console_note(context: PageContext) -> str:
    if context.console_released:
        budget = DEFAULT_MAX_FRAME_BYTES // (1024 * 1024)
        return (
            "Its console was released: the frames of older errors are let go once the kept "
            f"frames pass {budget} MB, so memory stays bounded; newer errors keep theirs."
        )
    if context.extra_scripts:
        return "Each frame has a console button that runs Python in that frame."
    return ""


def render(template: str, /, **fields: object) -> Markup:
    """Fill ``templates/TEMPLATE`` with ``fields``, escaping each one that is not Markup."""
    return load_template(template).fill(fields)


def render_page(tb: Traceback, context: PageContext) -> str:
    """The whole traceback page as a string."""
    exc = tb.exception
    request = tb.request
    scripts = Markup("").join(
        render("script.html", src=src, nonce=context.nonce) for src in context.extra_scripts
    )
    styles = Markup("").join(
        render("stylesheet.html", href=href, nonce=context.nonce) for href in context.extra_styles
    )
    return render(
        "traceback.html",
        title=f"{exc.type_name}: {_first_line(exc.message)}" if exc.message else exc.type_name,
        type_name=exc.type_name,
        message=exc.message,
        method=request.method if request else "",
        url=request.url if request else "",
        where=_where(exc, f"exc-{len(tb.chain) - 1}"),
        causes=_causes(tb.chain),
        chain=_chain(tb.chain, "exc", context),
        request=render_request(request) if request else _EMPTY,
        plaintext=_plaintext(tb.plaintext, context.token, linked=bool(context.page_url)),
        kept_note=_kept_note(context),
        console_note=_console_note(context),
        secret=context.secret,
        evalex="true" if context.evalex else "false",
        multiprocess="true" if context.multiprocess else "false",
        token=context.token,
        console_path=context.console_path,
        nonce=context.nonce,
        css_url=context.asset_urls["debugger.css"],
        js_url=context.asset_urls["debugger.js"],
        icon_url=context.asset_urls["favicon.svg"],
        extra_scripts=scripts,
        extra_styles=styles,
    )


def _where(exc: ExceptionInfo, anchor: str) -> Markup:
    """Where to look first: the file Python could not compile, else the innermost
    application frame, else the frame that raised."""
    if exc.syntax is not None:
        return render(
            "where_syntax.html",
            anchor=f"{anchor}-syntax",
            file=display_path(exc.syntax.filename),
            lineno=exc.syntax.lineno if exc.syntax.lineno is not None else "?",
        )
    frames = exc.frames
    if not frames:
        return _EMPTY
    app_frames = [frame for frame in frames if frame.kind == "app"]
    frame = app_frames[-1] if app_frames else frames[-1]
    return render(
        "where.html",
        id=frame.id,
        function=frame.function,
        file=display_path(frame.filename),
        lineno=frame.lineno,
    )


def _causes(chain: tuple[ChainItem, ...]) -> Markup:
    """The earlier exceptions, newest first, each linking to its section: the root cause is
    often the last one named here."""
    if len(chain) < 2:
        return _EMPTY
    items = []
    for index in range(len(chain) - 2, -1, -1):
        item = chain[index]
        message = _first_line(item.exception.message)
        items.append(
            render(
                "cause.html",
                label="caused by" if item.link == "cause" else "while handling",
                anchor=f"exc-{index}",
                type_name=item.exception.type_name,
                message=render("message.html", message=message) if message else _EMPTY,
            )
        )
    return render("causes.html", items=Markup("").join(items))


def _plaintext(text: str, token: str, linked: bool = True) -> Markup:
    """Python's text in full, or its start and end when it is huge (mutual recursion prints
    every frame), with a link to the whole text; the page stays small either way. A page that
    is not kept (``linked`` False) links nowhere: it shows the whole text and no Markdown copy.
    """
    if not linked:
        return render("plaintext.html", text=text, markdown_button=_EMPTY)
    markdown_url = f"?__debugger__=yes&tb={token}&format=markdown"
    button = render("markdown_button.html", markdown_url=markdown_url)
    if len(text) <= PLAINTEXT_INLINE_CHARS:
        return render("plaintext.html", text=text, markdown_button=button)
    lines = text.splitlines()
    head, tail = lines[:PLAINTEXT_HEAD_LINES], lines[-PLAINTEXT_TAIL_LINES:]
    return render(
        "plaintext_long.html",
        markdown_button=button,
        python_url=f"?__debugger__=yes&tb={token}&format=python",
        lines=len(lines),
        head="\n".join(head),
        omitted=len(lines) - len(head) - len(tail),
        tail="\n".join(tail),
    )


def _chain(chain: tuple[ChainItem, ...], anchor: str, context: PageContext) -> Markup:
    parts = []
    for index, item in enumerate(chain):
        parts.append(_exception(item.exception, f"{anchor}-{index}", context))
        if item.link:
            parts.append(render("connector.html", sentence=item.sentence))
    return _NEWLINE.join(parts)


def _exception(exc: ExceptionInfo, anchor: str, context: PageContext) -> Markup:
    hidden = exc.hidden_frames
    return render(
        "exception.html",
        group_class=" group-exception" if exc.is_group else "",
        anchor=anchor,
        type_name=exc.type_name,
        message=render("message.html", message=exc.message) if exc.message else _EMPTY,
        syntax=_syntax(exc.syntax, f"{anchor}-syntax") if exc.syntax else _EMPTY,
        notes=_notes(exc.notes),
        frames=_entries(exc.entries, context),
        hidden=render(
            "hidden_frames.html",
            text=f"{_plural(hidden, 'frame')} hidden by __traceback_hide__.",
        )
        if hidden
        else _EMPTY,
        group=_group(exc, anchor, context) if exc.is_group else _EMPTY,
    )


def _notes(notes: tuple[str, ...]) -> Markup:
    if not notes:
        return _EMPTY
    return render("notes.html", items=Markup("").join(render("note.html", note=n) for n in notes))


def _syntax(detail: SyntaxDetail, anchor: str) -> Markup:
    """The line Python could not compile, its span marked and a caret under it, between a
    few lines of the file around it (highlighted) when the file can be read."""
    text = detail.text
    # offset and end_offset are 1-based columns into text; Python draws carets under that span.
    start = max(0, (detail.offset or 1) - 1)
    end = (detail.end_offset or 0) - 1
    if end <= start:
        end = start + 1
    start, end = min(start, len(text)), min(end, len(text))
    lineno = detail.lineno
    before, after = _syntax_context(detail.filename, lineno, text)
    width = len(str((lineno or 0) + len(after)))
    number = f"{lineno:>{width}} " if lineno is not None and (before or after) else ""

    def numbered(first: int, lines: tuple[Markup, ...]) -> Markup:
        rows = (
            render("syntax_context.html", number=f"{first + i:>{width}} ", code=code)
            for i, code in enumerate(lines)
        )
        return Markup("").join(row + _NEWLINE for row in rows)

    return render(
        "syntax_error.html",
        anchor=anchor,
        filename=detail.filename,
        lineno=lineno if lineno is not None else "?",
        context_before=numbered((lineno or 0) - len(before), before),
        number=number,
        before=text[:start],
        marked=text[start:end],
        after=text[end:],
        caret=" " * (len(number) + start) + "^" * max(1, end - start),
        context_after=numbered((lineno or 0) + 1, after),
    )


def _syntax_context(
    filename: str, lineno: int | None, text: str
) -> tuple[tuple[Markup, ...], tuple[Markup, ...]]:
    """Highlighted lines before and after ``lineno`` of ``filename``, if the file on disk
    still has ``text`` there (an edited file would show the wrong neighbours)."""
    if lineno is None or lineno < 1 or not filename or filename.startswith("<"):
        return (), ()
    linecache.checkcache(filename)
    lines = [line.rstrip("\r\n") for line in linecache.getlines(filename)]
    if len(lines) < lineno or lines[lineno - 1].strip() != text.strip():
        return (), ()
    first = max(0, lineno - 1 - SYNTAX_CONTEXT_BEFORE)
    last = min(len(lines), lineno + SYNTAX_CONTEXT_AFTER)
    shown = highlight_lines(tuple(lines[first:last]))
    return shown[: lineno - 1 - first], shown[lineno - first :]


def _entries(entries: tuple[Entry, ...], context: PageContext) -> Markup:
    """Frames in order; runs of library frames fold into "N library frames" groups.

    The frame that raised (the last one) is always shown on its own.
    """
    parts: list[Markup] = []
    pending: list[Markup] = []
    last_frame = max((i for i, e in enumerate(entries) if isinstance(e, Frame)), default=-1)

    def flush() -> None:
        if pending:
            parts.append(
                render(
                    "library_frames.html",
                    label=_plural(len(pending), "library frame"),
                    frames=_NEWLINE.join(pending),
                )
            )
            pending.clear()

    for index, entry in enumerate(entries):
        if isinstance(entry, Repeat):
            flush()
            parts.append(render("repeat.html", text=_repeat_text(entry)))
            continue
        html = render_frame(entry, context, raising=index == last_frame)
        if entry.kind == "library" and index != last_frame:
            pending.append(html)
        else:
            flush()
            parts.append(html)
    flush()
    return _NEWLINE.join(parts)


def _repeat_text(entry: Repeat) -> str:
    subject = (
        "The frame above repeats"
        if entry.length == 1
        else f"The {entry.length} frames above repeat"
    )
    return f"{subject} {_plural(entry.count, 'more time')}."


def render_frame(frame: Frame, context: PageContext, *, raising: bool = False) -> Markup:
    """One frame: where it is, its highlighted source and its locals."""
    source = frame.source
    expandable = source is not None and (
        source.first < source.context_first or source.last > source.context_last
    )
    return render(
        "frame.html",
        kind=frame.kind,
        raising=" raising" if raising else "",
        id=frame.id,
        file=_file(frame, context.editor),
        lineno=frame.lineno,
        function=frame.function,
        expand=render("expand_button.html", count=len(source.lines))
        if expandable and source
        else _EMPTY,
        source=_source(source, frame.filename, frame.columns)
        if source
        else render("no_source.html"),
        locals=_locals(frame.locals, frame.locals_omitted) if frame.locals else _EMPTY,
    )


def _file(frame: Frame, editor: str | None) -> Markup:
    shown = display_path(frame.filename)
    if editor and not frame.filename.startswith("<"):
        return render(
            "frame_file_link.html",
            href=editor_url(editor, frame.filename, frame.lineno),
            filename=frame.filename,
            shown=shown,
        )
    return render("frame_file.html", filename=frame.filename, shown=shown)


@lru_cache(maxsize=1024)
def display_path(filename: str) -> str:
    """A short name to read: ``json/decoder.py`` for a library, the path below the working
    directory for the application; the full path stays in the element's title."""
    for root in sorted(LIBRARY_ROOTS, key=len, reverse=True):
        if filename.startswith(root) and len(filename) > len(root):
            tail = filename[len(root) :]
            return (
                tail
                if not tail.startswith(("site-packages/", "dist-packages/"))
                else tail.split("/", 1)[1]
            )
    cwd = os.getcwd().rstrip("/") + "/"
    return filename[len(cwd) :] if filename.startswith(cwd) else filename


def _source(source: Source, filename: str, columns: tuple[int, int] | None) -> Markup:
    highlighted = highlight_lines(source.lines)
    current, first, last = source.current, source.context_first, source.context_last
    rows = []
    for number, code in enumerate(highlighted, source.first):
        if number == current:
            css = "line current"
        elif first <= number <= last:
            css = "line"
        else:
            css = "line extra"
        # number is an int, css one of the constants above, code Markup from _highlight.
        rows.append(f'<div class="{css}" data-ln="{number}">{code}</div>')
        if number == current and columns:
            start, end = columns
            marks = " " * start + "^" * (end - start)
            rows.append(f'<div class="line carets" data-ln="" aria-hidden="true">{marks}</div>')
    return render("source.html", filename=filename, lines=Markup("".join(rows)))


def _locals(values: tuple[Local, ...], omitted: int) -> Markup:
    """The frame's locals; in a template, the engine's globals folded under one toggle."""
    own = [v for v in values if not v.engine_global]
    engine = [v for v in values if v.engine_global]
    more = (
        Markup('<p class="omitted">{}</p>').format(f"and {_plural(omitted, 'more name')}")
        if omitted
        else _EMPTY
    )
    folded = (
        render(
            "engine_globals.html",
            count=len(engine),
            names=", ".join(v.name for v in engine[:6]) + (", …" if len(engine) > 6 else ""),
            rows=_local_rows(engine),
        )
        if engine
        else _EMPTY
    )
    return render(
        "locals.html",
        count=len(values) + omitted,
        rows=_local_rows(own),
        omitted=more,
        folded=folded,
    )


def _local_rows(values: list[Local]) -> Markup:
    return Markup("").join(
        render(
            "local.html",
            css="masked" if v.masked else "failed" if v.failed else "",
            name=v.name,
            value=v.value,
        )
        for v in values
    )


def _group(exc: ExceptionInfo, anchor: str, context: PageContext) -> Markup:
    total = len(exc.group) + exc.group_omitted
    members = []
    for index, chain in enumerate(exc.group, 1):
        last = chain[-1].exception
        members.append(
            render(
                "group_member.html",
                index=index,
                total=total,
                type_name=last.type_name,
                message=render("message.html", message=_first_line(last.message))
                if last.message
                else _EMPTY,
                chain=_chain(chain, f"{anchor}-{index}", context),
            )
        )
    if exc.group_too_deep:
        omitted = f"… the sub-exceptions are nested too deeply to show ({total} here)."
    elif exc.group_omitted:
        omitted = f"… and {_plural(exc.group_omitted, 'more exception')}."
    else:
        omitted = ""
    note = Markup('<p class="omitted">{}</p>').format(omitted) if omitted else _EMPTY
    return render("group.html", members=_NEWLINE.join(members), omitted=note)


def render_request(request: RequestInfo) -> Markup:
    """The request section: method, URL, headers and the useful environ keys."""
    return render(
        "request.html",
        method=request.method,
        url=request.url,
        header_count=len(request.headers),
        headers=_fields(request.headers),
        environ_count=len(request.environ),
        environ=_fields(request.environ),
    )


def _fields(fields: Iterable[RequestField]) -> Markup:
    return Markup("").join(
        render("local.html", css="masked" if f.masked else "", name=f.name, value=f.value)
        for f in fields
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else line[:160] + "…"
