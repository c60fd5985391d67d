"""Bounded, never-raising reprs for the traceback page, and which names hide secrets.

model.py calls these for locals and request fields; nothing here knows about HTML.
"""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from functools import lru_cache
from types import FrameType, FunctionType
from typing import Any
from urllib.parse import unquote

MASK = "********"
# A repr longer than this is cut; the page says how long it was.
MAX_REPR_CHARS = 400
# Containers show this many items, this deep, so a huge list costs no more than a small one.
MAX_ITEMS = 16
# Strings and bytes are sliced to this before repr(), leaving room for the length note.
MAX_TEXT_CHARS = 300
MAX_DEPTH = 3
# An int this wide would take long to turn into decimal (and 3.11 refuses past 4300 digits).
MAX_INT_BITS = 4096
# A __repr__ written in Python is interrupted after this long.
MAX_REPR_SECONDS = 0.1

_SECRET_SUBSTRINGS = re.compile(
    r"passw|passphrase|secret|token|api_?key|apikey|access_?key|private_?key|authori[sz]ation"
    r"|cookie|credential|csrf|xsrf|bearer|jwt|session_?(?:id|key)|signature|sessid"
)
_SECRET_WORDS = frozenset(
    {"pass", "pwd", "auth", "pin", "otp", "salt", "sig", "cred", "creds", "sid"}
)
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=4096)
def looks_secret(name: str) -> bool:
    """Whether a variable, header or parameter called ``name`` probably holds a secret.

    Matches substrings such as ``password``/``token``/``api_key`` anywhere and short words such
    as ``pwd``/``auth``/``pin`` as whole words of snake_case, kebab-case or camelCase names.
    """
    lowered = _CAMEL.sub("_", name).lower().replace("-", "_")
    if _SECRET_SUBSTRINGS.search(lowered) or _SECRET_SUBSTRINGS.search(lowered.replace("_", "")):
        return True
    return any(word in _SECRET_WORDS for word in _WORD_SPLIT.split(lowered))


# Environ keys whose values carry a query string that may hold ``?token=...``.
URI_KEYS = frozenset({"QUERY_STRING", "REQUEST_URI", "RAW_URI"})


def mask_query(query: str) -> str:
    """Replace the values of secret-looking parameters, keeping the rest byte for byte."""
    parts = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        if eq and looks_secret(unquote(name)):
            part = f"{name}={MASK}"
        parts.append(part)
    return "&".join(parts)


def mask_uri(key: str, value: str) -> str:
    """Mask the query of an environ URI value (``QUERY_STRING``, ``REQUEST_URI``, ``RAW_URI``)."""
    if key == "QUERY_STRING":
        return mask_query(value)
    path, mark, query = value.partition("?")
    return path + mark + mask_query(query) if mark else value


def plain(text: str) -> str:
    """``text`` as an exact ``str``: the app's ``str`` subclasses (markupsafe's ``Markup``, or
    anything with ``__html__``) would be trusted as HTML by the templates' escaping."""
    return text if type(text) is str else str.__str__(text)


def safe_repr(
    value: object, limit: int = MAX_REPR_CHARS, seconds: float = MAX_REPR_SECONDS
) -> tuple[str, bool]:
    """Return ``(text, failed)``: a repr of at most about ``limit`` characters, never raising.

    Builtin containers and strings are cut before they are formatted, so their cost is bounded;
    other objects run their own ``__repr__``, stopped after ``seconds`` when written in Python;
    a failure shows as ``<repr failed: ...>``.
    """
    try:
        text = _repr(value, MAX_DEPTH, time.perf_counter() + seconds)
    except _ReprTimeout:
        return f"<repr failed: took longer than {seconds:g} s>", True
    except Exception as exc:  # a user's __repr__ may raise anything; it must not break the page
        return f"<repr failed: {_describe(exc)}>", True
    return _cut(plain(text), limit), False


class _ReprTimeout(BaseException):
    """Not an Exception, so a broad ``except Exception`` in the __repr__ cannot swallow it."""


def _user_repr(value: object, deadline: float) -> str:
    """repr() of an object whose ``__repr__`` is Python code, interrupted at ``deadline``.

    A trace function runs on every line of that code in this thread only, and raises once the
    deadline has passed; the previous tracer (a debugger, coverage) is put back afterwards.
    """
    if not isinstance(type(value).__repr__, FunctionType):
        return repr(value)

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if time.perf_counter() > deadline:
            raise _ReprTimeout
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return repr(value)
    finally:
        sys.settrace(previous)


def _describe(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:  # str() of the error itself failed too
        message = ""
    name = type(exc).__qualname__
    first = message.splitlines()[0] if message else ""
    return f"{name}: {first[:200]}" if first else name


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def _repr(value: object, depth: int, deadline: float) -> str:
    kind = type(value)
    if kind is str:
        return _repr_text(value)  # type: ignore[arg-type]  # kind is str here
    if kind is bytes or kind is bytearray:
        return _repr_bytes(value)  # type: ignore[arg-type]  # kind is bytes or bytearray
    if kind is int:
        bits = value.bit_length()  # type: ignore[attr-defined]  # kind is int here
        if bits > MAX_INT_BITS:
            return f"<int with {bits} bits>"
        return repr(value)
    # Containers whose repr is C code (dict, defaultdict, OrderedDict, Counter, deque, ...) are
    # walked here, cut after MAX_ITEMS: their own repr would format every item, uninterruptibly.
    c_repr = kind.__repr__ in _PLAIN_REPRS or not isinstance(kind.__repr__, FunctionType)
    if isinstance(value, dict):
        # Every mapping that is a dict (Flask's Config too, whatever its own repr) is walked
        # here, so an entry whose key looks secret is masked inside it.
        return _repr_dict(value, depth, deadline)
    if isinstance(value, list | tuple | set | frozenset | deque) and c_repr:
        return _repr_sequence(value, depth, deadline)
    return _user_repr(value, deadline)


def _repr_text(value: str) -> str:
    if len(value) <= MAX_TEXT_CHARS:
        return repr(value)
    return f"{value[:MAX_TEXT_CHARS]!r}… ({len(value)} chars)"


def _repr_bytes(value: bytes | bytearray) -> str:
    if len(value) <= MAX_TEXT_CHARS:
        return repr(value)
    return f"{value[:MAX_TEXT_CHARS]!r}… ({len(value)} bytes)"


def _repr_dict(value: dict[object, object], depth: int, deadline: float) -> str:
    if not value:
        return repr(value)
    if depth <= 0:
        return _wrap(value, "{…}")
    parts = []
    for index, (key, item) in enumerate(value.items()):
        if index == MAX_ITEMS:
            parts.append(f"… ({len(value)} items)")
            break
        if isinstance(key, str) and looks_secret(key):
            shown = MASK
        elif isinstance(key, str) and key in URI_KEYS and isinstance(item, str):
            shown = _repr_text(mask_uri(key, item))
        else:
            shown = _repr(item, depth - 1, deadline)
        parts.append(f"{_repr(key, depth - 1, deadline)}: {shown}")
    return _wrap(value, "{" + ", ".join(parts) + "}")


def _repr_sequence(
    value: list[object] | tuple[object, ...] | set[object] | frozenset[object] | deque[object],
    depth: int,
    deadline: float,
) -> str:
    opening, closing = _BRACKETS.get(type(value).__mro__[-2], ("[", "]"))
    if not value:
        return repr(value)  # empty: cheap, and Python's own spelling (set(), frozenset())
    if depth <= 0:
        return _wrap(value, f"{opening}…{closing}")
    parts = []
    for index, item in enumerate(value):
        if index == MAX_ITEMS:
            parts.append(f"… ({len(value)} items)")
            break
        parts.append(_repr(item, depth - 1, deadline))
    trailing = "," if isinstance(value, tuple) and len(value) == 1 else ""
    return _wrap(value, opening + ", ".join(parts) + trailing + closing)


def _wrap(value: object, text: str) -> str:
    """Name subclasses and the builtins whose repr names them (``deque([...])``, ``frozenset({...})``)."""
    kind = type(value)
    if kind in (dict, list, tuple, set):
        return text
    return f"{kind.__qualname__}({text})"


_PLAIN_REPRS = frozenset(
    {dict.__repr__, list.__repr__, tuple.__repr__, set.__repr__, frozenset.__repr__, deque.__repr__}
)
_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("{", "}"),
    deque: ("[", "]"),
}
