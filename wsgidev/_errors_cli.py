"""``wsgidev errors``: the errors of a running server in the terminal, for a developer or an
agent without MCP. It reads the debugger's error list (JSON) and a page as Markdown, over
HTTP from the server's own URL, never through a proxy."""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

from ._last_server import last_server
from ._log import TERMINAL_CONTROLS, printable

LIST_QUERY = "/?__debugger__=yes&cmd=errors"


def errors_command(url: str | None, last: bool, error_id: str | None, as_json: bool) -> int:
    """Print the list, or one error as Markdown; returns the exit status."""
    base = (url or last_server() or "").rstrip("/")
    if not base:
        print(
            "Error: no server with the debugger was started from this folder (wsgidev run "
            "--debug records its URL); pass --url http://HOST:PORT.",
            file=sys.stderr,
        )
        return 2
    if not base.startswith(("http://", "https://")):
        print(f"Error: --url must start with http:// or https://, got {base!r}.", file=sys.stderr)
        return 2
    try:
        listed = json.loads(_get(base + LIST_QUERY, "application/json"))
    except _Failure as failure:
        print(f"Error: {failure}", file=sys.stderr)
        return 1
    errors: list[dict[str, Any]] = listed.get("errors", [])
    if last or error_id:
        chosen = errors[0] if last and errors else None
        if error_id:
            chosen = next((e for e in errors if e.get("id") == error_id), None)
        if chosen is None:
            wanted = f"no error with the id {error_id!r}" if error_id else "no errors yet"
            print(f"Error: {base} keeps {wanted}; `wsgidev errors` lists them.", file=sys.stderr)
            return 1
        try:
            page = f"{base}/?__debugger__=yes&tb={chosen['id']}&format=markdown"
            sys.stdout.write(printable(_get(page, "text/markdown")))
        except _Failure as failure:
            print(f"Error: {failure}", file=sys.stderr)
            return 1
        return 0
    if as_json:
        print(json.dumps(listed, indent=1, ensure_ascii=False))
        return 0
    if not errors:
        print(f"No errors kept by {base}.")
        return 0
    for error in errors:
        # The app and the client wrote these: no escape sequence of theirs reaches the terminal.
        shown = {key: str(value).translate(TERMINAL_CONTROLS) for key, value in error.items()}
        request = f"{shown['method']} {shown['url']}" if error.get("method") else "-"
        print(f"{shown['time']}  {shown['id']}  {request}")
        message = shown["message"]
        print(f"    {shown['type']}: {message}" if message else f"    {shown['type']}")
    print("\n`wsgidev errors --last` prints the newest as Markdown (`--id ID` another one).")
    return 0


class _Failure(Exception):
    pass


def _get(url: str, accept: str) -> str:
    # The dev server only: no proxy from the environment, and its own (often adhoc) certificate.
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https://"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with opener.open(request, timeout=10) as response:
            return str(response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail)["error"]
        except (ValueError, KeyError, TypeError):
            detail = detail[:300]
        raise _Failure(f"{url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Failure(
            f"no server answers at {url.split('/?', 1)[0]} ({reason}); start one with "
            "`wsgidev run --debug`, or pass --url"
        ) from None
