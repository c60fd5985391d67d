"""Console output -> HTML: escaped text, highlighted reprs cut with "show more", dump tables, help.

console.py decides what to show; this module only turns values into escaped markup.
"""

from __future__ import annotations

import io
import pydoc
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup
from pygments import format as pygments_format
from pygments import highlight as pygments_highlight
from pygments import lex
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, PythonTracebackLexer

from wsgidev.debug._reprs import MASK, looks_secret, plain

# A repr longer than this is shown cut, the rest behind "show more".
REPR_VISIBLE = 1_000
# Past this the rest is not even sent: a 10 MB repr would freeze the browser tab.
REPR_MAX = 100_000
# Values inside dump() tables are shorter still.
DUMP_VALUE_VISIBLE = 300
DUMP_MAX_ROWS = 500

_FORMATTER = HtmlFormatter(nowrap=True)
_PYTHON = PythonLexer()
_TRACEBACK = PythonTracebackLexer()


def highlight(text: str, lexer: PythonLexer | PythonTracebackLexer = _PYTHON) -> Markup:
    # Pygments escapes its input and emits only <span class=...>: the one place HTML is trusted.
    return Markup(pygments_highlight(text, lexer, _FORMATTER).rstrip("\n"))


def safe_repr(value: object) -> str:
    """``repr(value)``, or ``<repr failed: ...>`` when the object's ``__repr__`` raises."""
    try:
        return plain(repr(value))
    except Exception as exc:  # any user __repr__ may fail; the console must keep working
        return f"<repr failed: {type(exc).__name__}: {safe_str(exc)}>"


def safe_str(value: object) -> str:
    try:
        return plain(str(value))
    except Exception:  # a failing __str__ inside an error message
        return "<str failed>"


def render_repr(text: str, visible: int = REPR_VISIBLE) -> Markup:
    """A highlighted repr; past ``visible`` characters the rest waits behind a "show more" button."""
    if len(text) <= visible:
        return Markup('<span class="repr">{}</span>').format(highlight(text))
    omitted = max(0, len(text) - REPR_MAX)
    rest = text[visible : min(len(text), REPR_MAX)]
    tail = render_omitted(omitted) if omitted else Markup("")
    # One pass of the lexer over both parts: lexing the rest alone would start it mid-token
    # (inside a string, say) and colour it as names and errors.
    head, rest_html = _highlight_split(text[:visible] + rest, visible)
    return Markup(
        '<span class="repr truncated"><span class="repr-head">{head}</span>'
        '<span class="repr-rest" hidden>{rest}{tail}</span>'
        '<button type="button" class="show-more">show more ({count} characters)</button></span>'
    ).format(
        head=head,
        rest=rest_html,
        tail=tail,
        count=f"{len(text) - visible:,}",
    )


def _highlight_split(text: str, at: int) -> tuple[Markup, Markup]:
    """``text`` highlighted as one piece, then cut into the HTML of ``text[:at]`` and ``text[at:]``."""
    head: list[tuple[Any, str]] = []
    rest: list[tuple[Any, str]] = []
    seen = 0
    tokens = list(lex(text, _PYTHON))
    if tokens and tokens[-1][1].endswith("\n") and not text.endswith("\n"):
        kind, value = tokens.pop()  # the newline the lexer adds at the end
        tokens += [(kind, value[:-1])] if value[:-1] else []
    for kind, value in tokens:
        if seen >= at:
            rest.append((kind, value))
        elif seen + len(value) <= at:
            head.append((kind, value))
        else:
            head.append((kind, value[: at - seen]))
            rest.append((kind, value[at - seen :]))
        seen += len(value)
    return _format(head), _format(rest)


def _format(tokens: list[tuple[Any, str]]) -> Markup:
    # Pygments escapes its input and emits only <span class=...>, as in highlight(). The
    # formatter ends every part with a line break; keep one only where the text has it.
    html = pygments_format(tokens, _FORMATTER)
    if tokens and not tokens[-1][1].endswith("\n") and html.endswith("\n"):
        html = html[:-1]
    return Markup(html)


def render_omitted(count: int, what: str = "") -> Markup:
    label = f"… {count:,} more characters {what} not shown".replace("  ", " ")
    return Markup('<span class="omitted">{}</span>').format(label)


def render_stream(kind: str, text: str) -> Markup:
    return Markup('<span class="{}">{}</span>').format(kind, plain(text))


def render_traceback(text: str) -> Markup:
    return Markup('<pre class="traceback">{}</pre>').format(highlight(text, _TRACEBACK))


def render_help(obj: object, *, has_argument: bool) -> Markup:
    """``help(obj)`` as a ``<pre>`` block; pydoc writes into a buffer, never a pager or stdin."""
    if not has_argument:
        text = (
            "Type help(object) for the documentation of an object, help('topic') for a topic\n"
            "(help('keywords'), help('modules')), and dump() or dump(object) to see values."
        )
    else:
        buffer = io.StringIO()
        pydoc.Helper(input=io.StringIO(), output=buffer).help(obj)
        text = buffer.getvalue().strip("\n")
    return Markup('<pre class="help">{}</pre>').format(text)


def _rows(items: Iterable[tuple[str, object]]) -> tuple[Markup, int]:
    rows = []
    count = 0
    for count, (name, value) in enumerate(items, 1):
        if count > DUMP_MAX_ROWS:
            break
        rows.append(
            Markup("<tr><th>{}</th><td>{}</td></tr>").format(
                plain(str(name)), render_repr(safe_repr(value), DUMP_VALUE_VISIBLE)
            )
        )
    return Markup("").join(rows), count


def render_table(title: str, items: Iterable[tuple[str, object]], note: str = "") -> Markup:
    rows, count = _rows(items)
    if count > DUMP_MAX_ROWS:
        note = f"{note} Only the first {DUMP_MAX_ROWS} entries are shown.".strip()
    if not count:
        rows = Markup('<tr><td class="empty" colspan="2">(nothing)</td></tr>')
    note_html = Markup('<p class="dump-note">{}</p>').format(note) if note else Markup("")
    return Markup(
        '<div class="dump"><table><caption>{title}</caption><tbody>{rows}</tbody></table>{note}</div>'
    ).format(title=title, rows=rows, note=note_html)


def _attributes(obj: object, show_all: bool) -> tuple[list[tuple[str, object]], int]:
    try:
        names = sorted(dir(obj))
    except Exception:  # a broken __dir__
        names = []
    hidden = 0
    items: list[tuple[str, object]] = []
    for name in names:
        if not show_all and name.startswith("__") and name.endswith("__"):
            hidden += 1
            continue
        try:
            value: object = getattr(obj, name)
        except Exception as exc:  # a property that raises is shown, not fatal
            value = _Unreadable(exc)
        items.append((name, value))
    return items, hidden


class _Unreadable:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"<getattr failed: {type(self.error).__name__}: {safe_str(self.error)}>"


def render_dump(obj: object, *, show_all: bool = False) -> Markup:
    """``dump(obj)``: a mapping's items, or an object's attributes (dunders on ``all=True``)."""
    title = f"Details for {safe_repr(obj)[:200]}"
    if isinstance(obj, Mapping):
        try:
            pairs = [(safe_repr(k), v) for k, v in obj.items()]
        except Exception as exc:  # a mapping whose iteration fails
            return render_traceback(f"dump() could not read the mapping: {exc!r}")
        return render_table(title, pairs)
    items, hidden = _attributes(obj, show_all)
    note = f"{hidden} special attributes hidden; dump(obj, all=True) shows them." if hidden else ""
    return render_table(title, items, note)


class _Masked:
    """Stands for a value whose name looks like a secret, as on the traceback page."""

    __slots__ = ()

    def __repr__(self) -> str:
        return MASK


def render_locals(
    namespace: Mapping[str, Any],
    hidden: Iterable[str],
    title: str = "Local variables in this frame",
) -> Markup:
    """``dump()`` without arguments: the names visible in this console, helpers left out.

    Values whose names look like secrets are masked as on the page (a screenshot of the console
    should not leak them); typing the name shows the value.
    """
    skip = set(hidden)
    items: list[tuple[str, object]] = [
        (name, _Masked() if looks_secret(name) else value)
        for name, value in sorted(namespace.items())
        if name not in skip
    ]
    masked = sum(isinstance(value, _Masked) for _, value in items)
    note = (
        f"{masked} value(s) masked because the name looks secret; type the name to see it."
        if masked
        else ""
    )
    return render_table(title, items, note)
