"""The failing request as plain values for the traceback page: method, URL, headers, environ.

Secret-looking headers, query parameters and environ values are masked here, once, so every
view (HTML, plaintext, JSON) shows the same safe text.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsgidev._types import WSGIEnvironment

from ._reprs import MASK, URI_KEYS, looks_secret, mask_query, mask_uri, safe_repr

# Environ entries that are streams or the server's plumbing, not facts about the request.
_SKIPPED_ENVIRON = frozenset(
    {"wsgi.input", "wsgi.errors", "wsgi.file_wrapper", "wsgi.input_terminated"}
)
MAX_ENVIRON_FIELDS = 60


@dataclass(frozen=True, slots=True)
class RequestField:
    """One header or environ entry; ``value`` is already masked when ``masked``."""

    name: str
    value: str
    masked: bool = False


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the developer needs to recognise the request that failed."""

    method: str
    url: str
    headers: tuple[RequestField, ...]
    environ: tuple[RequestField, ...]


def describe_request(environ: WSGIEnvironment) -> RequestInfo:
    """Summarise ``environ``; never raises, whatever the server or middleware put in it."""
    headers = tuple(_headers(environ))
    return RequestInfo(
        method=_text(environ.get("REQUEST_METHOD", "GET")),
        url=request_url(environ, mask=True),
        headers=headers,
        environ=tuple(_environ_fields(environ)),
    )


def request_url(environ: WSGIEnvironment, *, mask: bool = False, query: bool = True) -> str:
    """The URL as the client asked for it, decoded for reading; secret query values masked."""
    scheme = _text(environ.get("wsgi.url_scheme", "http"))
    host = _text(environ.get("HTTP_HOST", ""))
    if not host:
        host = _text(environ.get("SERVER_NAME", "localhost"))
        port = _text(environ.get("SERVER_PORT", ""))
        if port and (scheme, port) not in (("http", "80"), ("https", "443")):
            host = f"{host}:{port}"
    path = _wsgi_text(environ.get("SCRIPT_NAME", "")) + _wsgi_text(environ.get("PATH_INFO", ""))
    url = f"{scheme}://{host}{path or '/'}"
    qs = _text(environ.get("QUERY_STRING", ""))
    if query and qs:
        url += "?" + (mask_query(qs) if mask else qs)
    return url


def _headers(environ: WSGIEnvironment) -> list[RequestField]:
    fields = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not value:
                continue
            name = key
        else:
            continue
        title = "-".join(word.capitalize() for word in name.split("_"))
        if looks_secret(title):
            fields.append(RequestField(title, MASK, masked=True))
        else:
            fields.append(RequestField(title, _wsgi_text(value)))
    return fields


def _environ_fields(environ: WSGIEnvironment) -> list[RequestField]:
    fields: list[RequestField] = []
    for key in sorted(environ, key=str):
        if not isinstance(key, str) or key.startswith("HTTP_") or key in _SKIPPED_ENVIRON:
            continue
        if len(fields) == MAX_ENVIRON_FIELDS:
            fields.append(RequestField("…", f"{len(environ)} entries in all"))
            break
        value = environ[key]
        if looks_secret(key):
            fields.append(RequestField(key, MASK, masked=True))
        elif key in URI_KEYS and isinstance(value, str):
            fields.append(RequestField(key, _wsgi_text(mask_uri(key, value))))
        elif isinstance(value, str):
            fields.append(RequestField(key, _wsgi_text(value)))
        else:
            fields.append(RequestField(key, safe_repr(value)[0]))
    return fields


def _text(value: object) -> str:
    return value if isinstance(value, str) else safe_repr(value)[0]


def _wsgi_text(value: object) -> str:
    """WSGI strings carry bytes as latin-1; show them as the UTF-8 the client most likely sent."""
    if not isinstance(value, str):
        return safe_repr(value)[0]
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
