"""HTTP/1.1 request heads: find where a head ends in a buffer and parse it into a RequestHead.

Framing decisions (RFC 9112) and the request-smuggling defences live here; bodies are read by
_http.body, responses are written by _server.handler."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BLOCK = 64 * 1024
MAX_HEADERS = 100

# RFC 9112 2.2: a recipient may accept a bare LF as a line terminator.
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_METHOD = re.compile(_TOKEN)
_FIELD = re.compile(rf"({_TOKEN}):[ \t]*(.*?)[ \t]*")
# RFC 9110 5.5: CR, LF and NUL in a field value must be rejected; so are the other controls.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
# Any control but TAB, LF and CR, anywhere in a head: when there is none (and every CR ends a
# line), no field value needs its own search.
_BAD_HEAD_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_DIGITS = re.compile(r"[0-9]{1,18}")
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)")
_KNOWN_CODINGS = frozenset({"chunked"})
_COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HTTPError(Exception):
    """A request the server answers itself, with ``status``; the connection is closed after."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @property
    def reason(self) -> str:
        return HTTPStatus(self.status).phrase


class ClientDisconnected(ConnectionError):
    """The client went away (or stalled past the timeout) while we read or wrote.

    ``sent`` is how many bytes of the failed write went out first, for the access log.
    """

    sent = 0


class RequestHead(NamedTuple):
    """One parsed request head (a named tuple: built for every request, and cheaply).

    ``environ`` holds the CGI keys taken from the head (``HTTP_*``, ``CONTENT_TYPE``,
    ``CONTENT_LENGTH``), repeated fields already joined; ``headers`` keeps the fields as sent.
    """

    method: str
    target: str
    version: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    environ: dict[str, str]
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} {self.version}"


def skip_blank_lines(buffer: bytearray) -> None:
    """Drop CR/LF before a request line (RFC 9112 2.2: clients may send one after a body)."""
    count = 0
    while count < len(buffer) and buffer[count] in (13, 10):
        count += 1
    if count:
        del buffer[:count]


def find_head_end(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """Return ``(head_stop, body_start)`` of a complete head in ``buffer``, or ``(-1, -1)``.

    ``start`` lets a caller that reads in pieces skip what it already searched.
    """
    match = _HEAD_END.search(buffer, start)
    if match is None:
        return -1, -1
    return match.start(), match.end()


def read_head(buffer: bytearray, scan: int = 0) -> tuple[RequestHead | None, int]:
    """Take the next complete head out of ``buffer``; return it (or None) and the next ``scan``.

    Feed it the same ``buffer`` as bytes arrive, with the ``scan`` it returned last time, so each
    call searches only new bytes. Raises HTTPError as soon as the head is known to be bad.
    """
    if buffer and buffer[0] in (13, 10):  # CR, LF
        skip_blank_lines(buffer)
        scan = 0
    stop, start = find_head_end(buffer, scan)
    if stop < 0:
        check_partial_head(buffer)
        return None, max(0, len(buffer) - 3)
    end = bytes(buffer[stop:start])
    if end not in (b"\r\n\r\n", b"\n\n"):
        raise HTTPError(400, "the head mixes CRLF and bare LF line ends")
    head = parse_head(bytes(buffer[:stop]), crlf=end == b"\r\n\r\n")
    del buffer[:start]
    return head, 0


def check_partial_head(buffer: bytes | bytearray) -> None:
    """Raise 414/431 as soon as an incomplete head is already past a limit."""
    newline = buffer.find(b"\n", 0, MAX_REQUEST_LINE + 2)
    if newline < 0:
        if len(buffer) > MAX_REQUEST_LINE + 1:
            raise HTTPError(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
    elif len(buffer) - newline > MAX_HEADER_BLOCK:
        raise HTTPError(431, f"header block larger than {MAX_HEADER_BLOCK} bytes")


def parse_head(raw: bytes | bytearray, *, crlf: bool | None = None) -> RequestHead:
    """Parse a head without its final blank line; raise HTTPError for anything malformed.

    ``crlf`` says how the head ended (CRLF CRLF or LF LF); every line must end the same way.
    """
    text = raw.decode("latin-1")
    if crlf is None:
        first = text.find("\n")
        crlf = first > 0 and text[first - 1] == "\r"
    # Bare LF line ends are tolerated (RFC 9112 2.2) only for a whole head: a head that mixes
    # them with CRLF is how a line hides from a parser that splits on CRLF alone. The last
    # line's own line end is part of the terminator, already cut off. Counts, not a pass over
    # the lines: this runs for every request.
    breaks = text.count("\n")
    if (text.count("\r\n") != breaks) if crlf else ("\r\n" in text):
        raise HTTPError(400, "the head mixes CRLF and bare LF line ends")
    lines = text.split("\r\n" if crlf else "\n")
    line = lines[0]
    if len(line) > MAX_REQUEST_LINE:
        raise HTTPError(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
    method, target, version = _parse_request_line(line)
    http11 = version == "HTTP/1.1"
    # No control character but the line ends (and every CR ends a line): then no field value
    # needs its own search.
    clean = _BAD_HEAD_CHAR.search(text) is None and text.count("\r") == breaks * crlf
    fields, found = _parse_fields(lines, check_values=not clean)
    environ = found.environ

    content_length, chunked = _body_framing(found.lengths, found.codings, http11)
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)

    path, query, authority = _split_target(target)
    if authority is not None:
        # RFC 9112 3.2.2: the authority of an absolute-form target replaces Host.
        environ["HTTP_HOST"] = authority
    elif found.hosts == 0 and http11:
        raise HTTPError(400, "HTTP/1.1 request without a Host header")
    if found.hosts > 1:
        raise HTTPError(400, "more than one Host header")

    connection = found.connection
    if http11:
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection and "close" not in connection
    expect_continue = False
    if found.expect is not None:
        if found.expect.lower() != "100-continue":
            raise HTTPError(417, f"unsupported expectation {found.expect!r}")
        expect_continue = http11
    return RequestHead(
        method,
        target,
        version,
        path,
        query,
        tuple(fields),
        environ,
        content_length,
        chunked,
        keep_alive,
        expect_continue,
    )


def _body_framing(
    lengths: list[str], codings: list[str] | None, http11: bool
) -> tuple[int | None, bool]:
    """``(content_length, chunked)`` of the request body (RFC 9112 6.1-6.3)."""
    if codings is None:
        return (_parse_content_length(lengths) if lengths else None), False
    # In theory Transfer-Encoding overrides Content-Length; a request with both is how
    # smuggling starts, so refuse it.
    if lengths:
        raise HTTPError(400, "both Content-Length and Transfer-Encoding")
    if not http11:
        raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
    unknown = [c for c in codings if c not in _KNOWN_CODINGS]
    if unknown:
        raise HTTPError(501, f"unsupported transfer coding {unknown[0]!r}")
    if codings != ["chunked"]:
        raise HTTPError(400, "chunked must be the only, final transfer coding")
    return None, True


def _parse_request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3:
        raise HTTPError(400, "malformed request line")
    method, target, version = parts
    if method not in _COMMON_METHODS and not _METHOD.fullmatch(method):
        raise HTTPError(400, "malformed method")
    if not target or _BAD_TARGET.search(target):
        raise HTTPError(400, "malformed request target")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        match = _VERSION.fullmatch(version)
        if match is None:
            raise HTTPError(400, "malformed HTTP version")
        raise HTTPError(505, f"{version} is not supported")
    return method, target, version


class _Found:
    """What the header fields say about framing and the connection, besides the environ."""

    __slots__ = ("codings", "connection", "environ", "expect", "hosts", "lengths")

    def __init__(self) -> None:
        self.environ: dict[str, str] = {}
        self.lengths: list[str] = []
        self.codings: list[str] | None = None
        self.connection: set[str] = set()
        self.hosts = 0
        self.expect: str | None = None


# Field name -> (lowercase name, environ key or None when the name has an underscore), for
# the names seen so far: most requests repeat the same dozen. Bounded.
_NAMES: dict[str, tuple[str, str | None]] = {}
_NAMES_LIMIT = 512
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "host", "expect"})


def _name_info(name: str) -> tuple[str, str | None]:
    info = _NAMES.get(name)
    if info is None:
        lower = name.lower()
        key: str | None = None
        # X_Foo and X-Foo would share the key HTTP_X_FOO; a proxy that strips one spelling
        # would let the other through, so drop the ambiguous one (as nginx and gunicorn do).
        if "_" not in name:
            key = lower.upper().replace("-", "_")
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
        info = (lower, key)
        if len(_NAMES) < _NAMES_LIMIT:
            _NAMES[name] = info
    return info


def _parse_fields(
    lines: list[str], check_values: bool = True
) -> tuple[list[tuple[str, str]], _Found]:
    """The fields as sent, and what they say (one pass: this runs for every request)."""
    fields: list[tuple[str, str]] = []
    found = _Found()
    environ = found.environ
    size = 0
    for line in lines[1:]:
        size += len(line) + 2
        if size > MAX_HEADER_BLOCK:
            raise HTTPError(431, f"header block larger than {MAX_HEADER_BLOCK} bytes")
        if line[:1] in (" ", "\t"):
            # RFC 9112 5.2 lets a server refuse obsolete line folding, and it should: a proxy
            # that unfolds "Transfer-Encoding:\r\n chunked" and one that does not disagree on
            # where the body ends.
            raise HTTPError(400, "obsolete line folding in the header block")
        match = _FIELD.fullmatch(line)
        if match is None:
            raise HTTPError(400, "malformed header line")
        name, value = match.groups()
        if check_values and _BAD_VALUE.search(value):
            raise HTTPError(400, f"control character in header {name!r}")
        fields.append((name, value))
        if len(fields) > MAX_HEADERS:
            raise HTTPError(431, f"more than {MAX_HEADERS} headers")
        lower, key = _name_info(name)
        if lower in _FRAMING and _framing_field(found, lower, value):
            continue
        if key is None:
            continue
        previous = environ.get(key)
        if previous is None:
            environ[key] = value
        else:
            # RFC 9110 5.3 joins repeated fields with ", "; cookies use "; " (RFC 6265 5.4).
            environ[key] = f"{previous}{'; ' if key == 'HTTP_COOKIE' else ', '}{value}"
    return fields, found


def _framing_field(found: _Found, lower: str, value: str) -> bool:
    """Note a field that decides framing or the connection; True if it stays out of the
    environ (it is put there once decided)."""
    if lower == "content-length":
        found.lengths.append(value)
        return True
    if lower == "transfer-encoding":
        codings = [c.strip().lower() for c in value.split(",") if c.strip()]
        found.codings = (found.codings or []) + codings
        # Kept once the body is decoded, as Werkzeug's server does: apps and Werkzeug's own
        # request objects read it (wsgi.input_terminated says the body is framed).
        previous = found.environ.get("HTTP_TRANSFER_ENCODING")
        found.environ["HTTP_TRANSFER_ENCODING"] = (
            value if previous is None else f"{previous},{value}"
        )
        return True
    if lower == "connection":
        found.connection.update(t.strip().lower() for t in value.split(","))
    elif lower == "host":
        found.hosts += 1
    elif lower == "expect":
        found.expect = value
    return False


def _parse_content_length(values: list[str]) -> int:
    """Exactly one field of digits: a list ("5, 5") or a repeated field is refused, even with
    equal values, as gunicorn does, so no two parsers can read two lengths into it."""
    if len(values) > 1 or "," in values[0]:
        raise HTTPError(400, "more than one Content-Length value")
    if not _DIGITS.fullmatch(values[0]):
        raise HTTPError(400, "malformed Content-Length")
    return int(values[0])


def _split_target(target: str) -> tuple[str, str, str | None]:
    """Return PATH_INFO (percent-decoded, latin-1), QUERY_STRING and an absolute-form authority."""
    authority: str | None = None
    if target[0] == "/":
        # "//x" is a path (origin-form), never a scheme-relative URL.
        rest = target
    elif target == "*":
        return "*", "", None
    else:
        match = _ABSOLUTE.fullmatch(target)
        if match is None:
            raise HTTPError(400, "malformed request target")
        authority = match.group(2)
        rest = match.group(3) or "/"
        if rest[0] != "/":
            rest = "/" + rest
    rest = rest.partition("#")[0]
    path, _, query = rest.partition("?")
    if "%" in path:
        path = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    return path, query, authority
