"""DebuggedApplication as a WSGI callable: when it catches, what it answers, what it keeps."""

from __future__ import annotations

import contextvars
import gc
import logging
import re
import threading
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from tests.conftest import call_app
from wsgidev.debug import TRACEBACK_HEADER, DebuggedApplication

ACCEPT_HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def crash(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-App-Header", "kept?")])
    password = "hunter2"  # noqa: F841 - must be masked
    raise LookupError("no such <thing>")


def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fine"]


class Body:
    """A response iterable that records close() and can fail at a chosen chunk."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError(f"failed at chunk {index}")
            yield chunk
        if self.fail_at == len(self.chunks):
            raise RuntimeError("failed at the end")

    def close(self) -> None:
        self.closed += 1


def streaming(body: Body) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-App-Header", "1")])
        return body

    return app


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (ACCEPT_HTML, "text/html; charset=utf-8"),
        ({"Accept": "text/html"}, "text/html; charset=utf-8"),
        ({"Accept": "*/*"}, "text/plain; charset=utf-8"),  # curl
        ({}, "text/plain; charset=utf-8"),
        ({"Accept": "text/plain"}, "text/plain; charset=utf-8"),
        ({"Accept": "application/json"}, "application/json"),
        ({"Accept": "application/json, text/plain, */*"}, "application/json"),  # axios
        ({"Accept": "text/html;q=0.5, text/plain"}, "text/plain; charset=utf-8"),
        ({"Accept": "text/html;q=bogus"}, "text/plain; charset=utf-8"),
        ({**ACCEPT_HTML, "X-Requested-With": "XMLHttpRequest"}, "text/plain; charset=utf-8"),
        ({"Accept": "text/html, */*", "HX-Request": "true"}, "text/plain; charset=utf-8"),
    ],
)
def test_content_negotiation(headers: dict[str, str], expected: str) -> None:
    response = call_app(DebuggedApplication(crash), "/", headers=headers)
    assert response.code == 500
    assert response.header("Content-Type") == expected
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("X-App-Header") is None  # the app's headers are discarded


def test_plaintext_is_pythons_traceback_then_masked_locals_and_the_page_url() -> None:
    response = call_app(DebuggedApplication(crash), "/")
    text = response.body.decode()
    assert text.startswith("Traceback (most recent call last):\n")
    assert 'raise LookupError("no such <thing>")\nLookupError: no such <thing>\n' in text
    assert "    password" in text and "= ********" in text and "hunter2'" not in text
    assert f"Interactive traceback: {response.header(TRACEBACK_HEADER)}" in text


def test_json_form_has_the_chain_and_frames() -> None:
    import json

    response = call_app(DebuggedApplication(crash), "/", headers={"Accept": "application/json"})
    data = json.loads(response.body)
    assert data["type"] == "LookupError" and data["message"] == "no such <thing>"
    frame = data["chain"][-1]["frames"][-1]
    assert frame["function"] == "crash" and frame["locals"]["password"] == "********"
    assert data["traceback_url"] == response.header(TRACEBACK_HEADER)


def test_the_traceback_url_keeps_working_while_retained() -> None:
    app = DebuggedApplication(crash, max_tracebacks=2)
    urls = [
        call_app(app, "/", headers={"Host": "dev.example:8000"}).header(TRACEBACK_HEADER)
        for _ in range(3)
    ]
    assert all(
        url and url.startswith("http://dev.example:8000/?__debugger__=yes&tb=") for url in urls
    )
    oldest, *kept = (url.split("/", 3)[3] for url in urls if url)
    for path in kept:
        page = call_app(app, "/" + path, headers=ACCEPT_HTML)
        assert page.code == 200 and "LookupError" in page.body.decode()
        assert "Content-Security-Policy" in dict(page.headers)
    gone = call_app(app, "/" + oldest, headers=ACCEPT_HTML)
    assert gone.code == 404 and b"max_tracebacks" in gone.body


def test_the_page_is_sent_with_a_strict_csp() -> None:
    response = call_app(DebuggedApplication(crash), "/", headers=ACCEPT_HTML)
    csp = response.header("Content-Security-Policy") or ""
    nonce = re.search(r"script-src 'nonce-([\w-]+)'", csp)
    assert nonce, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert f"style-src 'nonce-{nonce[1]}'" in csp
    html = response.body.decode()
    assert html.count(f'nonce="{nonce[1]}"') >= 2
    assert response.header("Cache-Control") == "no-store"


@pytest.mark.parametrize("name", ["debugger.css", "debugger.js", "favicon.svg"])
def test_resources_are_served_with_caching_headers(name: str) -> None:
    app = DebuggedApplication(ok)
    response = call_app(app, f"/any/path?__debugger__=yes&cmd=resource&f={name}")
    assert response.code == 200 and response.body
    etag = response.header("ETag")
    assert etag and response.header("Cache-Control") == "no-cache"
    assert response.header("X-Content-Type-Options") == "nosniff"
    versioned = call_app(app, f"/?__debugger__=yes&cmd=resource&f={name}&v={etag.strip(chr(34))}")
    assert "immutable" in (versioned.header("Cache-Control") or "")
    again = call_app(
        app, f"/?__debugger__=yes&cmd=resource&f={name}", headers={"If-None-Match": etag}
    )
    assert again.code == 304 and again.body == b""


@pytest.mark.parametrize(
    "name",
    [
        "../pyproject.toml",
        "..%2Fpyproject.toml",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "nope.js",
        "",
        ".",
        "static/debugger.css",
        "debugger.css%00",
    ],
)
def test_anything_but_a_known_resource_is_404(name: str) -> None:
    response = call_app(DebuggedApplication(ok), f"/?__debugger__=yes&cmd=resource&f={name}")
    assert response.code == 404


def test_a_non_error_request_passes_straight_through() -> None:
    body = [b"fine"]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return body

    env = {"QUERY_STRING": "", "PATH_INFO": "/"}
    assert DebuggedApplication(app)(env, lambda *a: None) is body
    assert call_app(DebuggedApplication(ok), "/?__debugger__=no").body == b"fine"


def test_close_is_called_once_on_success() -> None:
    body = Body([b"a", b"b"])
    response = call_app(DebuggedApplication(streaming(body)), "/")
    assert response.body == b"ab" and body.closed == 1


def test_an_error_before_the_first_byte_is_the_page_and_close_is_called() -> None:
    body = Body([b"never sent"], fail_at=0)
    response = call_app(DebuggedApplication(streaming(body)), "/", headers=ACCEPT_HTML)
    assert response.code == 500 and b"failed at chunk" in response.body
    assert response.header("X-App-Header") is None
    assert body.closed == 1


def test_empty_chunks_are_not_the_first_byte() -> None:
    """PEP 3333: headers go out with the first non-empty chunk, so the page can still replace them."""
    body = Body([b"", b"late"], fail_at=1)
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    result = DebuggedApplication(streaming(body))(environ, start_response)
    output = b"".join(result)
    assert statuses == ["200 OK", "500 INTERNAL SERVER ERROR"]
    assert b"RuntimeError: failed at chunk 1" in output
    assert body.closed == 1


def test_an_error_after_the_first_byte_is_logged_and_re_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Body([b"partial", b"more"], fail_at=1)
    app = DebuggedApplication(streaming(body))
    with (
        caplog.at_level(logging.ERROR, "wsgidev"),
        pytest.raises(RuntimeError, match="failed at chunk 1"),
    ):
        call_app(app, "/")
    assert body.closed == 1
    assert "the response is cut short" in caplog.text
    assert "RuntimeError: failed at chunk 1" in caplog.text
    assert len(app.tracebacks) == 1


def test_the_error_is_logged_with_the_page_url(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "wsgidev"):
        response = call_app(DebuggedApplication(crash), "/boom")
    assert "Error on GET http://127.0.0.1/boom" in caplog.text
    assert "LookupError: no such <thing>" in caplog.text
    assert f"Debugger page: {response.header(TRACEBACK_HEADER)}" in caplog.text


def test_the_same_error_again_is_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    # What an app that failed to import does: every request raises the one stored exception.
    stored = ValueError("boom at import")

    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise stored

    app = DebuggedApplication(broken)
    with caplog.at_level(logging.ERROR, "wsgidev"):
        urls = [call_app(app, f"/page{n}").header(TRACEBACK_HEADER) for n in range(5)]
    records = [r.getMessage() for r in caplog.records]
    assert len(records) == 5
    assert records[0].count("Traceback (most recent call last)") == 1
    assert "ValueError: boom at import" in records[0] and urls[0] in records[0]
    for n, message in enumerate(records[1:], 1):
        assert "\n" not in message and "Traceback" not in message
        assert f"Error on GET http://127.0.0.1/page{n}" in message
        assert "same error as logged above" in message and "ValueError: boom at import" in message
        assert str(urls[n]) in message


def test_a_different_error_between_repeats_is_logged_in_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = KeyError("first"), KeyError("second")
    order = iter([first, first, second, first])

    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise next(order)

    app = DebuggedApplication(broken)
    with caplog.at_level(logging.ERROR, "wsgidev"):
        for _ in range(4):
            call_app(app, "/")
    full = ["Traceback (most recent call last)" in r.getMessage() for r in caplog.records]
    assert full == [True, False, True, True]


def test_an_error_already_shown_in_the_terminal_is_not_shown_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The reloader prints an import error once when the child starts, then serves it.
    stored = SyntaxError("invalid syntax")

    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise stored

    app = DebuggedApplication(broken)
    app.mark_logged(stored)
    with caplog.at_level(logging.ERROR, "wsgidev"):
        url = call_app(app, "/").header(TRACEBACK_HEADER)
    (record,) = caplog.records
    assert "Traceback" not in record.getMessage() and "\n" not in record.getMessage()
    assert "SyntaxError: invalid syntax" in record.getMessage() and str(url) in record.getMessage()


def test_if_rendering_fails_the_client_still_gets_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> str:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr("wsgidev.debug.render.render_page", broken)
    response = call_app(DebuggedApplication(crash), "/", headers=ACCEPT_HTML)
    assert response.code == 500
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    text = response.body.decode()
    assert "LookupError: no such <thing>" in text and "RuntimeError: renderer broke" in text


def test_frames_are_reachable_for_the_console_only_with_evalex() -> None:
    on = DebuggedApplication(crash, evalex=True, pin_logging=False)
    html = call_app(on, "/", headers=ACCEPT_HTML).body.decode()
    frame_ids = [int(n) for n in re.findall(r'data-frame-id="(\d+)"', html)]
    handle = on.find_frame(frame_ids[-1])
    assert handle is not None
    assert handle.locals["password"] == "hunter2"
    assert handle.environ["PATH_INFO"] == "/" and "__name__" in handle.globals
    off = DebuggedApplication(crash)
    html = call_app(off, "/", headers=ACCEPT_HTML).body.decode()
    assert off.find_frame(int(re.findall(r'data-frame-id="(\d+)"', html)[-1])) is None


def test_old_tracebacks_are_dropped_with_their_frames() -> None:
    class Marker:
        pass

    refs: list[weakref.ref[Marker]] = []

    def leaky(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        marker = Marker()
        refs.append(weakref.ref(marker))
        raise ValueError("again")

    app = DebuggedApplication(leaky, evalex=True, pin_logging=False, max_tracebacks=3)
    logging.getLogger("wsgidev").disabled = True
    try:
        for _ in range(10):
            call_app(app, "/")
    finally:
        logging.getLogger("wsgidev").disabled = False
    gc.collect()
    alive = [ref for ref in refs if ref() is not None]
    assert len(app.tracebacks) == 3
    assert len(alive) == 3


def test_memory_stays_bounded_over_many_errors() -> None:
    app = DebuggedApplication(crash, max_tracebacks=32)
    logger = logging.getLogger("wsgidev")
    logger.disabled = True
    try:
        for _ in range(100):  # warm caches (highlighting, linecache, logging)
            call_app(app, "/")
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            call_app(app, "/")
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        logger.disabled = False
    assert grown < 512 * 1024, f"grew {grown} bytes over 1000 errors"


def test_debugger_commands_are_routed_to_the_console() -> None:
    response = call_app(
        DebuggedApplication(crash, pin_logging=False), "/?__debugger__=yes&cmd=printpin"
    )
    assert response.code == 405  # commands must be POSTed: answered by commands.dispatch_command


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"max_tracebacks": 0}, ValueError, "max_tracebacks"),
        ({"max_tracebacks": "3"}, TypeError, "max_tracebacks"),
        ({"console_path": "console"}, ValueError, "console_path"),
        ({"editor": "vscode://file/"}, ValueError, "editor"),
    ],
)
def test_bad_arguments_are_named(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        DebuggedApplication(ok, **kwargs)


def test_a_bad_editor_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSGIDEV_EDITOR", "javascript:alert({path})")
    with pytest.raises(ValueError, match="WSGIDEV_EDITOR"):
        DebuggedApplication(ok)
    monkeypatch.setenv("WSGIDEV_EDITOR", "vscode://file/{path}:{line}")
    assert DebuggedApplication(ok).editor == "vscode://file/{path}:{line}"


def test_a_non_callable_app_is_refused() -> None:
    with pytest.raises(TypeError, match="app must be a WSGI callable"):
        DebuggedApplication("not an app")  # type: ignore[arg-type]


class StrictServer:
    """Just enough of a PEP 3333 server: write() sends headers, exc_info then re-raises."""

    def __init__(self) -> None:
        self.sent = False
        self.statuses: list[str] = []
        self.environ: dict[str, Any] = {}
        setup_testing_defaults(self.environ)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.statuses.append(status)
        return self.write

    def write(self, data: bytes) -> None:
        self.sent = True


def test_an_error_after_write_is_re_raised_with_its_chain_untouched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def writer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"already on the wire")
        try:
            {}["key"]
        except KeyError as exc:
            raise RuntimeError("after write") from exc

    server = StrictServer()
    with caplog.at_level(logging.ERROR, "wsgidev"), pytest.raises(RuntimeError) as raised:
        DebuggedApplication(writer)(server.environ, server.start_response)
    assert isinstance(raised.value.__cause__, KeyError)
    assert raised.value.__context__ is raised.value.__cause__  # nothing re-chained on the way out
    assert server.statuses == ["200 OK"]
    assert "the response is cut short" in caplog.text


def test_a_response_abandoned_by_the_server_is_closed_without_a_page() -> None:
    class FailingClose(Body):
        def close(self) -> None:
            super().close()
            raise OSError("close failed")

    body = FailingClose([b"", b"never read"])
    server = StrictServer()
    result = DebuggedApplication(streaming(body))(server.environ, server.start_response)
    iterator = iter(result)
    assert next(iterator) == b""
    logging.getLogger("wsgidev").disabled = True
    try:
        with pytest.raises(OSError, match="close failed"):
            iterator.close()  # type: ignore[attr-defined]
    finally:
        logging.getLogger("wsgidev").disabled = False
    assert body.closed == 1
    assert server.statuses == ["200 OK"]


@pytest.mark.parametrize(
    ("form", "content_type", "start"),
    [
        ("python", "text/plain; charset=utf-8", b"Traceback (most recent call last):"),
        ("text", "text/plain; charset=utf-8", b"Traceback (most recent call last):"),
        ("json", "application/json", b"{"),
        ("html", "text/html; charset=utf-8", b"<!doctype html>"),
        ("bogus", "text/html; charset=utf-8", b"<!doctype html>"),  # unknown: negotiated as usual
    ],
)
def test_a_retained_page_can_be_asked_for_in_one_form(
    form: str, content_type: str, start: bytes
) -> None:
    app = DebuggedApplication(crash)
    url = call_app(app, "/").header(TRACEBACK_HEADER) or ""
    response = call_app(app, "/" + url.split("/", 3)[3] + f"&format={form}", headers=ACCEPT_HTML)
    assert response.code == 200
    assert response.header("Content-Type") == content_type
    assert response.body.startswith(start)
    if form == "python":
        assert response.body.decode().endswith("LookupError: no such <thing>\n")  # nothing appended


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("dev.example:8000", "http://dev.example:8000/"),
        ("[::1]:5000", "http://[::1]:5000/"),
        ("evil.example/<script>", "http://127.0.0.1/"),  # falls back to SERVER_NAME
        ("a b", "http://127.0.0.1/"),
    ],
)
def test_the_traceback_url_only_echoes_a_well_formed_host(host: str, expected: str) -> None:
    response = call_app(DebuggedApplication(crash), "/", headers={"Host": host})
    assert (response.header(TRACEBACK_HEADER) or "").startswith(expected + "?__debugger__=yes&tb=")


def test_text_python_cannot_encode_is_replaced_not_fatal() -> None:
    def odd(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("undecodable file name: \udcff")

    response = call_app(DebuggedApplication(odd), "/", headers=ACCEPT_HTML)
    assert response.code == 500 and response.header("Content-Type") == "text/html; charset=utf-8"
    assert "undecodable file name: ?" in response.body.decode()


def test_the_console_assets_are_included_only_with_evalex() -> None:
    with_console = call_app(
        DebuggedApplication(crash, evalex=True, pin_logging=False), "/", headers=ACCEPT_HTML
    )
    html = with_console.body.decode()
    nonce = re.search(r"'nonce-([\w-]+)'", with_console.header("Content-Security-Policy") or "")
    assert nonce
    assert re.search(
        rf'<script src="\?__debugger__=yes&amp;cmd=resource&amp;f=console\.js&amp;v=\w+" nonce="{nonce[1]}"',
        html,
    )
    assert re.search(
        rf'<link rel="stylesheet" href="\?__debugger__=yes&amp;cmd=resource&amp;f=console\.css&amp;v=\w+" nonce="{nonce[1]}"',
        html,
    )
    assert 'data-evalex="true"' in html
    plain = call_app(DebuggedApplication(crash), "/", headers=ACCEPT_HTML).body.decode()
    assert (
        "console.js" not in plain and "console.css" not in plain and 'data-evalex="false"' in plain
    )


def test_head_on_a_retained_page_has_headers_and_no_body() -> None:
    app = DebuggedApplication(crash)
    url = call_app(app, "/").header(TRACEBACK_HEADER) or ""
    response = call_app(app, "/" + url.split("/", 3)[3], method="HEAD", headers=ACCEPT_HTML)
    assert response.code == 200 and response.body == b""
    assert int(response.header("Content-Length") or 0) > 1000


# -- under Werkzeug's and Flask's test clients ------------------------------------------------


def _fails_before_starting(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise KeyError("missing")


def test_werkzeugs_test_client_gets_the_page() -> None:
    """Werkzeug's Client re-raises any exc_info given to start_response, even before headers
    went out: the debugger passes it only when the app had started a response (then PEP 3333
    needs it, to replace those headers)."""
    from werkzeug.test import Client

    client = Client(DebuggedApplication(_fails_before_starting))
    response = client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert "KeyError" in response.get_data(as_text=True)
    assert response.headers.get(TRACEBACK_HEADER)


def test_flasks_test_client_gets_the_page() -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("shop")
    app.testing = False  # as served: Flask lets the error through only in debug mode
    app.debug = True

    @app.route("/orders/<int:order_id>")
    def order(order_id: int) -> str:
        return str({}[order_id])

    app.wsgi_app = DebuggedApplication(app.wsgi_app)  # type: ignore[method-assign]
    response = app.test_client().get("/orders/7", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert "KeyError" in response.get_data(as_text=True)
    assert response.headers.get(TRACEBACK_HEADER)


# -- memory: kept frames are bounded by size as well as by count --------------------------------


class _Upload:
    """A big request body held in a local, as a view that read the upload would hold it."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)


def test_kept_frames_stay_within_the_size_budget_oldest_released_first() -> None:
    """32 failed 40 MB uploads once kept every frame alive (2.6 GB); now the oldest errors'
    frames go once the kept ones pass the budget, and their pages stay."""
    uploads: list[weakref.ref[_Upload]] = []

    def upload_view(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        upload = _Upload(10 * 1024 * 1024)
        uploads.append(weakref.ref(upload))
        raise ValueError("the upload was refused")

    app = DebuggedApplication(upload_view, evalex=True, pin_logging=False)
    budget = 35 * 1024 * 1024
    app.tracebacks.max_frame_bytes = budget
    urls = [call_app(app, "/", headers=ACCEPT_HTML).header(TRACEBACK_HEADER) for _ in range(8)]
    gc.collect()
    assert app.tracebacks.frame_bytes <= budget
    alive = [ref() is not None for ref in uploads]
    assert alive[-3:] == [True, True, True]  # the newest keep their consoles
    assert not any(alive[:5]), alive  # the oldest frames, and their uploads, are freed
    oldest = call_app(app, "/" + (urls[0] or "").split("/", 3)[3], headers=ACCEPT_HTML)
    assert oldest.code == 200 and b"the upload was refused" in oldest.body
    assert b"console was released" in oldest.body and b"console.js" not in oldest.body
    newest = call_app(app, "/" + (urls[-1] or "").split("/", 3)[3], headers=ACCEPT_HTML)
    assert b"console was released" not in newest.body and b"console.js" in newest.body


def test_the_default_budget_is_at_most_256_mb() -> None:
    from wsgidev.debug._store import DEFAULT_MAX_FRAME_BYTES

    app = DebuggedApplication(crash, evalex=True)
    assert app.tracebacks.max_frame_bytes == DEFAULT_MAX_FRAME_BYTES <= 256 * 1024 * 1024


# -- bounded rendering: time and size whatever the locals and the message ------------------------


def test_a_20_mb_message_makes_a_bounded_page_and_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wsgidev.debug._python_text import MAX_MESSAGE_CHARS

    def huge(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("x" * 20_000_000)

    app = DebuggedApplication(huge, pin_logging=False)
    with caplog.at_level(logging.ERROR, logger="wsgidev"):
        page = call_app(app, "/", headers=ACCEPT_HTML)
    assert page.code == 500 and b"ValueError" in page.body  # the control: the error is shown
    assert len(page.body) < 20 * MAX_MESSAGE_CHARS  # an 80 MB page before
    assert b"more characters" in page.body
    assert max(len(record.getMessage()) for record in caplog.records) < 10 * MAX_MESSAGE_CHARS
    for form in ("text", "json", "python"):
        url = (page.header(TRACEBACK_HEADER) or "").split("/", 3)[3] + f"&format={form}"
        assert len(call_app(app, "/" + url).body) < 10 * MAX_MESSAGE_CHARS, form


def test_locals_that_are_slow_to_repr_keep_the_page_fast() -> None:
    """A blocking __repr__, many of them, and a C-level repr of a 1M-key defaultdict."""
    import collections

    class Blocking:
        def __repr__(self) -> str:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                pass
            return "never shown"

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        counts = collections.defaultdict(int, {n: n for n in range(1_000_000)})  # noqa: F841
        ordered = collections.OrderedDict((n, n) for n in range(200_000))  # noqa: F841
        first, second, third = Blocking(), Blocking(), Blocking()  # noqa: F841
        raise ValueError("slow locals")

    app = DebuggedApplication(slow, pin_logging=False)
    started = time.monotonic()
    page = call_app(app, "/", headers=ACCEPT_HTML)
    elapsed = time.monotonic() - started
    body = page.body.decode()
    assert "slow locals" in body and "1000000 items" in body  # the control: values are shown
    assert "never shown" not in body and "took longer" in body
    assert elapsed < 2.5, f"the page took {elapsed:.2f} s"  # generous: 3 x 3 s before


def test_reprs_that_block_inside_c_cost_their_deadline_not_the_page() -> None:
    """time.sleep and a lock the failing thread holds: no tracer can stop either."""
    held = threading.Lock()

    class Sleeping:
        def __repr__(self) -> str:
            time.sleep(3)
            return "never " + "shown"

    class Locking:
        def __repr__(self) -> str:
            with held:  # never released: inline, this would wait forever
                return "never " + "shown"

    def blocked(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        visible = ["shown", 42]  # noqa: F841 - the control
        first, second, third, fourth = Sleeping(), Sleeping(), Sleeping(), Locking()  # noqa: F841
        held.acquire()  # as if another thread of the app held it
        raise ValueError("blocking locals")

    app = DebuggedApplication(blocked, pin_logging=False)
    started = time.monotonic()
    page = call_app(app, "/", headers=ACCEPT_HTML)
    elapsed = time.monotonic() - started
    body = page.body.decode()
    assert "blocking locals" in body and "[&#39;shown&#39;, 42]" in body
    assert "never shown" not in body and body.count("took longer") >= 3
    assert elapsed < 1.5, f"the page took {elapsed:.2f} s"  # 9 s and a hang before


def test_a_repr_sees_the_requests_context_variables() -> None:
    """Reprs run in a copy of the request's context, so Flask's ``request`` proxy resolves."""
    current_user: contextvars.ContextVar[str] = contextvars.ContextVar("current_user")

    class Proxy:
        def __repr__(self) -> str:
            return f"<Proxy of {current_user.get()}>"

    def failing(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        current_user.set("ada")
        proxy = Proxy()  # noqa: F841
        raise ValueError("with a proxy")

    page = call_app(DebuggedApplication(failing, pin_logging=False), "/", headers=ACCEPT_HTML)
    assert "&lt;Proxy of ada&gt;" in page.body.decode()


def test_secrets_inside_a_flask_config_are_masked_on_the_page_and_in_plaintext() -> None:
    flask = pytest.importorskip("flask")
    # Built at run time: the page also shows the source, and secrets written there are visible.
    key, password, api_key = ("-".join(["s3cr3t", word]) for word in ("key", "pw", "api"))
    shop = flask.Flask("shop")
    shop.config.update(SECRET_KEY=key, DEBUG=True)

    def crash_with_config(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        config = shop.config  # noqa: F841
        settings = {"db": {"PASSWORD": password, "HOST": "db.local"}, "api_key": api_key}  # noqa: F841
        raise RuntimeError("misconfigured")

    app = DebuggedApplication(crash_with_config, pin_logging=False)
    for headers in (ACCEPT_HTML, {"Accept": "text/plain"}):
        body = call_app(app, "/", headers=headers).body.decode()
        assert "db.local" in body and "SECRET_KEY" in body  # the control: the values are shown
        for secret in (key, password, api_key):
            assert secret not in body, (headers, secret)


def test_a_local_that_raises_on_every_attribute_does_not_break_the_page() -> None:
    """Like Flask's ``request`` proxy outside its context: ``__class__`` and ``__dict__`` raise."""

    class Unbound:
        def __getattribute__(self, name: str) -> Any:
            raise RuntimeError("Working outside of application context.")

    def crash_with_proxy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request = Unbound()  # noqa: F841
        raise KeyError("order")

    page = call_app(DebuggedApplication(crash_with_proxy, evalex=True), "/", headers=ACCEPT_HTML)
    assert page.code == 500 and b"data-frame-id" in page.body and b"KeyError" in page.body
