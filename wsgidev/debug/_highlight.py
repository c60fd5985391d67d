"""Pygments highlighting of a frame's source lines, one Markup string per line, cached.

Lexing is the costly part of a page (about 30 µs a line), so each excerpt is lexed once and kept
in a bounded cache: rendering the same frame again costs a lookup.
"""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup
from pygments.lexers.python import PythonLexer
from pygments.token import STANDARD_TYPES, _TokenType

_LEXER = PythonLexer(stripnl=False, ensurenl=False)
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})
# Excerpts kept highlighted; one excerpt is at most model.MAX_SOURCE_LINES lines.
CACHE_SIZE = 256


@lru_cache(maxsize=512)
def _css_class(token: _TokenType) -> str:
    """The short Pygments class (``k``, ``s2``...) of a token type or its nearest parent."""
    while token not in STANDARD_TYPES and token.parent is not None:
        token = token.parent
    css = STANDARD_TYPES.get(token, "")
    return "" if css == "w" else css  # whitespace needs no span


@lru_cache(maxsize=CACHE_SIZE)
def highlight_lines(lines: tuple[str, ...]) -> tuple[Markup, ...]:
    """Highlight ``lines`` (newlines optional) as Python; one HTML fragment per input line."""
    text = "\n".join(line.rstrip("\r\n") for line in lines)
    out: list[str] = []
    spans: list[tuple[str, str]] = []  # (class, raw text) of the current line, merged by class
    for token, value in _LEXER.get_tokens(text):
        css = _css_class(token)
        for index, piece in enumerate(value.split("\n")):
            if index:
                out.append(_join(spans))
                spans = []
            if not piece:
                continue
            if spans and spans[-1][0] == css:
                spans[-1] = (css, spans[-1][1] + piece)
            else:
                spans.append((css, piece))
    out.append(_join(spans))
    # Pygments may add or drop a trailing newline; the page needs exactly one entry per line.
    out = (out + [""] * len(lines))[: len(lines)]
    # Every piece of text above was escaped and the class names are Pygments' own constants.
    return tuple(Markup(fragment) for fragment in out)


def _join(spans: list[tuple[str, str]]) -> str:
    return "".join(
        f'<span class="{css}">{text.translate(_ESCAPES)}</span>'
        if css
        else text.translate(_ESCAPES)
        for css, text in spans
    )
