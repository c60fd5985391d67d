"""``wsgidev demo``: a small app that shows each part working — the debugger (an error
route), static files from inside the package, a streamed response and a form POST.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs

from markupsafe import Markup

from ._types import StartResponse, WSGIEnvironment

# A (package, folder) export works from a wheel as well as from a checkout.
STATIC_EXPORTS = {"/static": ("wsgidev", "_demo_static")}
MAX_FORM_BYTES = 64 * 1024
MAX_STREAM_LINES = 100
DEMO_TITLE = "wsgidev demo"

_PAGE = Markup("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{page_title}</title>
<link rel="stylesheet" href="/static/demo.css">
</head>
<body>
<header><img src="/static/logo.svg" alt="wsgidev logo"><h1>{title}</h1></header>
{content}
</body>
</html>
""")

_INDEX = Markup("""<p>This app is served by the wsgidev development server with the debugger on.</p>
<ul>
  <li><a href="/error">/error</a> raises an exception: the traceback page opens, with a
      console per frame once you enter the PIN printed in the terminal.</li>
  <li><a href="/static/demo.css">/static/demo.css</a> and
      <a href="/static/logo.svg">/static/logo.svg</a> are files served from inside the
      package by SharedDataMiddleware.</li>
  <li><a href="/stream">/stream</a> sends its lines one by one (chunked transfer coding).</li>
  <li><a href="/form">/form</a> posts a form and shows what the app received.</li>
  <li><a href="/console">/console</a> is a Python console in the browser, behind the same
      PIN.</li>
</ul>
""")

_FORM = Markup("""<form method="post" action="/form">
  <label>Name <input name="name" value="Ada"></label>
  <label>Message <textarea name="message">Hello from the form</textarea></label>
  <button type="submit">Send</button>
</form>
<p><a href="/">Back</a></p>
""")


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    """Route the demo's few URLs; everything under /static is answered before this."""
    path = environ.get("PATH_INFO", "/")
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/":
        return _html(start_response, "200 OK", DEMO_TITLE, _INDEX)
    if path == "/error":
        return _error_route()
    if path == "/stream":
        return _stream(environ, start_response)
    if path == "/form":
        if method == "POST":
            return _form_post(environ, start_response)
        if method in ("GET", "HEAD"):
            return _html(start_response, "200 OK", "A form", _FORM)
        return _html(
            start_response,
            "405 Method Not Allowed",
            "Method not allowed",
            Markup(""),
            [("Allow", "GET, HEAD, POST")],
        )
    return _html(
        start_response,
        "404 Not Found",
        "Not found",
        Markup("<p>No page at <code>{}</code>. <a href='/'>Back</a></p>").format(path),
    )


def _html(
    start_response: StartResponse,
    status: str,
    title: str,
    content: Markup,
    extra_headers: list[tuple[str, str]] | None = None,
) -> Iterator[bytes]:
    # The home page is the demo itself; the others say which page of the demo they are.
    page_title = title if title == DEMO_TITLE else f"{title} · {DEMO_TITLE}"
    body = _PAGE.format(title=title, page_title=page_title, content=content).encode("utf-8")
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra_headers or []))
    return iter([body])


def _error_route() -> Iterator[bytes]:
    cart = {"apple": 3, "pear": 1}
    prices = {"apple": 0.5}
    return iter([f"{_total(cart, prices):.2f}".encode()])


def _total(cart: dict[str, int], prices: dict[str, float]) -> float:
    # The demo's bug, on purpose: "pear" has no price, so this raises KeyError.
    return sum(prices[item] * count for item, count in cart.items())


def _stream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        lines = min(int(query.get("lines", ["10"])[0]), MAX_STREAM_LINES)
        delay = min(max(float(query.get("delay", ["0.3"])[0]), 0.0), 1.0)
    except ValueError:
        start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")])
        return iter([b"lines must be an integer and delay a number of seconds\n"])
    # No Content-Length: the server sends it chunked, each line as it is produced.
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return _lines(max(lines, 0), delay)


def _lines(count: int, delay: float) -> Iterator[bytes]:
    for number in range(1, count + 1):
        yield f"line {number} of {count}\n".encode()
        if number < count:
            time.sleep(delay)


def _form_post(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 <= length <= MAX_FORM_BYTES:
        status = "400 Bad Request" if length < 0 else "413 Content Too Large"
        return _html(
            start_response,
            status,
            "Form not accepted",
            Markup("<p>The form must be under {} bytes.</p>").format(MAX_FORM_BYTES),
        )
    fields = parse_qs(environ["wsgi.input"].read(length).decode("utf-8", "replace"))
    rows = Markup("").join(
        Markup("<dt>{}</dt><dd>{}</dd>").format(name, value)
        for name, values in fields.items()
        for value in values
    )
    content = Markup(
        "<p>The app received:</p><dl class='echo'>{}</dl><p><a href='/form'>Again</a></p>"
    ).format(rows or Markup("<dd>nothing</dd>"))
    return _html(start_response, "200 OK", "Form received", content)


def serve_demo(host: str = "127.0.0.1", port: int = 5000) -> None:
    """Serve the demo with the debugger (console on) and its static folder, threaded."""
    from .serving import run_simple

    run_simple(
        host,
        port,
        app,
        use_debugger=True,
        use_evalex=True,
        threaded=True,
        static_files=STATIC_EXPORTS,
    )
