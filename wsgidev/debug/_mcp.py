"""``/__wsgidev__/mcp``: the kept errors for coding agents, over MCP's Streamable HTTP transport.

JSON-RPC 2.0 messages arrive by POST and each request gets one ``application/json`` answer
(a notification gets ``202``); the server offers no event stream, so GET is ``405``. The
protocol version is negotiated as the MCP specification of 2025-06-18 describes: the server
answers the client's version when it speaks it, else its own latest. Three read-only tools;
nothing runs code. Before anything is parsed, the request passes the console's Host,
cross-site (``Origin``) and trusted-client checks, which is MCP's own advice against DNS
rebinding.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from wsgidev._types import StartResponse, WSGIApplication, WSGIEnvironment

if TYPE_CHECKING:
    from . import DebuggedApplication

MCP_PATH = "/__wsgidev__/mcp"
PROTOCOL_VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05")  # newest first
MAX_MESSAGE_BYTES = 1024 * 1024

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602

TOOLS: list[dict[str, Any]] = [
    {
        "name": "list_errors",
        "title": "List recent errors",
        "description": (
            "The errors the development server kept, newest first: id, time, request, "
            "exception type and message, and the URL of each interactive traceback page."
        ),
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
    {
        "name": "get_error",
        "title": "Read one error",
        "description": (
            "One kept error by id: its traceback with the app's source around each frame, "
            "the masked locals of the raising frame and the request, as Markdown (default) "
            "or as JSON."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "An id from list_errors."},
                "format": {"type": "string", "enum": ["markdown", "json"]},
            },
            "required": ["id"],
            "additionalProperties": False,
        },
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
    {
        "name": "server_status",
        "title": "Server status",
        "description": (
            "Whether the reloader runs, the error that keeps the app from importing (if "
            "any), Python and package versions, and the app's URL map where its framework "
            "exposes one (Flask, Django)."
        ),
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
]


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def mcp_endpoint(debugger: DebuggedApplication, environ: WSGIEnvironment) -> WSGIApplication:
    """Answer one HTTP request to the MCP endpoint."""
    from . import commands

    refusal = debugger.security.check_origin(environ)
    if refusal is not None:
        return commands.error_response(commands.CommandError.of(refusal))
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if method != "POST":
        # No server-initiated stream is offered (the spec allows 405 for GET).
        return _http(405, b"", [("Allow", "POST")])
    version = environ.get("HTTP_MCP_PROTOCOL_VERSION")
    if version is not None and version not in PROTOCOL_VERSIONS:
        return _rpc_response(None, error=(INVALID_REQUEST, f"unsupported protocol {version!r}"))
    try:
        message = _read_message(environ)
    except RpcError as exc:
        return _rpc_response(None, error=(exc.code, exc.message), status=400)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _rpc_response(None, error=(INVALID_REQUEST, "expected one JSON-RPC 2.0 message"))
    if "method" not in message:
        return _http(202, b"")  # a response or error from the client: nothing to answer
    request_id = message.get("id")
    if "id" not in message:
        return _http(202, b"")  # a notification (notifications/initialized, cancelled, ...)
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        return _rpc_response(None, error=(INVALID_REQUEST, "id must be a string or a number"))
    params = message.get("params") or {}
    try:
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params must be an object")
        result = _call(debugger, environ, str(message.get("method")), params)
    except RpcError as exc:
        return _rpc_response(request_id, error=(exc.code, exc.message))
    return _rpc_response(request_id, result=result)


def _read_message(environ: WSGIEnvironment) -> Any:
    content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise RpcError(INVALID_REQUEST, "send Content-Type: application/json")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 < length <= MAX_MESSAGE_BYTES:
        raise RpcError(INVALID_REQUEST, f"a message of 1 to {MAX_MESSAGE_BYTES} bytes is expected")
    try:
        return json.loads(environ["wsgi.input"].read(length))
    except ValueError as exc:
        raise RpcError(PARSE_ERROR, f"not JSON: {exc}") from None


def _call(
    debugger: DebuggedApplication, environ: WSGIEnvironment, method: str, params: dict[str, Any]
) -> dict[str, Any]:
    if method == "initialize":
        asked = params.get("protocolVersion")
        from wsgidev._version import __version__

        return {
            "protocolVersion": asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "wsgidev", "title": "wsgidev debugger", "version": __version__},
            "instructions": (
                "Read-only access to the errors of this development server: list_errors, "
                "then get_error with an id for the traceback as Markdown."
            ),
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        name = params.get("name")
        arguments = params.get("arguments") or {}
        tool = _TOOLS.get(str(name))
        if tool is None:
            raise RpcError(INVALID_PARAMS, f"unknown tool {name!r}")
        if not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, "arguments must be an object")
        return tool(debugger, environ, arguments)
    raise RpcError(METHOD_NOT_FOUND, f"method {method!r} is not offered")


def _text_result(text: str, structured: Mapping[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
    if structured is not None:
        result["structuredContent"] = dict(structured)
    return result


def _tool_error(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _list_errors(
    debugger: DebuggedApplication, environ: WSGIEnvironment, arguments: dict[str, Any]
) -> dict[str, Any]:
    errors = debugger.describe_errors(environ)
    payload = {"errors": errors, "kept_at_most": debugger.max_tracebacks}
    return _text_result(json.dumps(payload, ensure_ascii=False, indent=1), payload)


def _get_error(
    debugger: DebuggedApplication, environ: WSGIEnvironment, arguments: dict[str, Any]
) -> dict[str, Any]:
    token = arguments.get("id")
    form = arguments.get("format", "markdown")
    if not isinstance(token, str) or form not in ("markdown", "json"):
        raise RpcError(INVALID_PARAMS, 'get_error takes "id" (a string) and "format"')
    text = debugger.error_text(token, form, environ)
    if text is None:
        return _tool_error(
            f"No kept error has the id {token!r}: the debugger keeps the last "
            f"{debugger.max_tracebacks} errors; call list_errors for the current ids."
        )
    return _text_result(text)


def _server_status(
    debugger: DebuggedApplication, environ: WSGIEnvironment, arguments: dict[str, Any]
) -> dict[str, Any]:
    from wsgidev._frameworks import find_framework
    from wsgidev._version import __version__
    from wsgidev.serving import is_running_from_reloader

    status: dict[str, Any] = {
        "reloader": "running" if is_running_from_reloader() else "off",
        "import_error": debugger.startup_error,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "wsgidev": __version__,
        "packages": _versions(("flask", "django", "werkzeug", "jinja2", "bottle")),
        "errors_kept": len(debugger.tracebacks),
        "pid": os.getpid(),
    }
    framework = find_framework(debugger.app)
    if framework is not None:
        status["framework"] = framework.name
        status["url_map"] = _url_map(framework.name, framework.app)
    return _text_result(json.dumps(status, ensure_ascii=False, indent=1), status)


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    """Versions of the packages the app has imported (never importing one for this)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        if name in sys.modules:
            try:
                found[name] = version(name)
            except PackageNotFoundError:
                continue
    return found


def _url_map(framework: str, app: Any) -> list[dict[str, Any]]:
    """Routes as the framework lists them; an app that cannot list its own yields none."""
    try:
        if framework == "Flask":
            return [
                {
                    "rule": rule.rule,
                    "endpoint": rule.endpoint,
                    "methods": sorted(rule.methods or ()),
                }
                for rule in app.url_map.iter_rules()
            ]
        if framework == "Django":
            resolver = sys.modules["django.urls"].get_resolver()
            return [{"pattern": pattern} for pattern in _django_patterns(resolver.url_patterns)]
    except Exception:  # a broken URLconf is the app's to report, not the status's
        return []
    return []


def _django_patterns(patterns: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        text = prefix + str(pattern.pattern)
        nested = getattr(pattern, "url_patterns", None)
        if nested is not None:
            out.extend(_django_patterns(nested, text))
        else:
            out.append(text)
    return out[:500]


_TOOLS: dict[
    str, Callable[[DebuggedApplication, WSGIEnvironment, dict[str, Any]], dict[str, Any]]
] = {
    "list_errors": _list_errors,
    "get_error": _get_error,
    "server_status": _server_status,
}


def _rpc_response(
    request_id: str | int | None,
    *,
    result: Any = None,
    error: tuple[int, str] | None = None,
    status: int = 200,
) -> WSGIApplication:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    if error is not None:
        message["error"] = {"code": error[0], "message": error[1]}
    else:
        message["result"] = result
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    return _http(status, body, [("Content-Type", "application/json")])


def _http(
    status: int, body: bytes, headers: list[tuple[str, str]] | None = None
) -> WSGIApplication:
    reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 405: "Method Not Allowed"}[status]
    all_headers = [
        *(headers or []),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(f"{status} {reason}", all_headers)
        return [body]

    return app
