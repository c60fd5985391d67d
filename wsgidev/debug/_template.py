"""templates/ files as HTML skeletons with ``{field}`` slots, each field escaped when filled.

render.py fills them; nothing else in a template is code (no loops, no inline script or style).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import cache

from markupsafe import Markup, escape

from wsgidev._resources import asset_dir


class Template:
    """A template split once into literal text and ``{field}`` names.

    Filling it escapes each field with ``markupsafe.escape``, as ``Markup.format`` does, without
    re-parsing the template on every call (the page fills a few hundred per render).
    """

    __slots__ = ("literals", "names")

    def __init__(self, text: str) -> None:
        self.literals: list[str] = []
        self.names: list[str] = []
        pending = ""
        for literal, name, spec, conversion in string.Formatter().parse(text):
            pending += literal  # "{{" comes back as a literal piece of its own
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                raise ValueError(f"templates take plain {{name}} fields only, got {{{name}}}")
            self.literals.append(pending)
            self.names.append(name)
            pending = ""
        self.literals.append(pending)

    def fill(self, fields: Mapping[str, object]) -> Markup:
        parts = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            parts.append(escape(fields[name]))
            parts.append(literal)
        # The literals are our own template files; every field went through escape() above.
        return Markup("".join(parts))


@cache
def template(name: str) -> Template:
    return Template((asset_dir("templates") / name).read_text(encoding="utf-8").rstrip("\n"))
