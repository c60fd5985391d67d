"""LiveReloadMiddleware, called as a WSGI server would: which pages get the script, how an app's
Content-Security-Policy is amended, and what its own routes answer (and to whom)."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import call_app
from wsgidev._events import EventChannel, EventStream
from wsgidev.debug import DebuggedApplication
from wsgidev.middleware.live_reload import PREFIX, LiveReloadMiddleware

PAGE = b"<!doctype html>\n<html><head><title>t</title></head><body><p>hello</p></body></html>"
HOST = {"Host": "127.0.0.1:5000"}
SCRIPT = re.compile(rb'<script src="/__wsgidev__/live/client\.js"[^>]*></script>')


def html_app(
    body: bytes = PAGE, headers: list[tuple[str, str]] | None = None, length: bool = True
) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        extra = [("Content-Length", str(len(body)))] if length else []
        start_response(
            "200 OK", [("Content-Type", "text/html; charset=utf-8"), *extra, *(headers or [])]
        )
        return [body]

    return app


@pytest.fixture
def live() -> Iterator[Callable[..., LiveReloadMiddleware]]:
    made: list[LiveReloadMiddleware] = []

    def make(app: Callable[..., Any], **kwargs: Any) -> LiveReloadMiddleware:
        middleware = LiveReloadMiddleware(app, **kwargs)
        made.append(middleware)
        return middleware

    yield make
    for middleware in made:
        middleware.close()


def script_tags(body: bytes) -> list[bytes]:
    return SCRIPT.findall(body)


# -- which responses get the script ------------------------------------------------------------


def test_a_whole_document_gets_one_script_before_body_end_and_a_corrected_length(live: Any) -> None:
    response = call_app(live(html_app()), headers=HOST)
    tags = script_tags(response.body)
    assert len(tags) == 1
    assert response.body.index(tags[0]) + len(tags[0]) == response.body.index(b"</body>")
    assert int(response.header("Content-Length") or 0) == len(response.body)
    assert b'data-wsgidev-events="/__wsgidev__/live/events"' in tags[0]
    assert b" defer" in tags[0]


def test_the_script_names_this_process_boot_and_urls_under_script_name(live: Any) -> None:
    middleware = live(html_app())
    response = call_app(middleware, headers=HOST, SCRIPT_NAME="/shop")
    (tag,) = re.findall(rb"<script[^>]*></script>", response.body)
    assert f'data-wsgidev-boot="{middleware.boot}"'.encode() in tag
    assert b'src="/shop/__wsgidev__/live/client.js"' in tag
    assert b'data-wsgidev-error="/shop/__wsgidev__/live/error"' in tag


def test_the_last_body_end_is_used_when_a_script_string_mentions_one(live: Any) -> None:
    body = b"<!DOCTYPE html><html><body><script>let s='</body>';</script>\n</BODY></html>"
    response = call_app(live(html_app(body)), headers=HOST)
    assert response.body.endswith(b"defer></script></BODY></html>")
    assert response.body.count(b"client.js") == 1
    assert response.body.index(b"client.js") > response.body.index(b"let s=")


@pytest.mark.parametrize(
    ("why", "body", "headers", "request_headers"),
    [
        ("a fragment", b"<div>rows</div>", [], {}),
        ("htmx asked", PAGE, [], {"HX-Request": "true"}),
        ("fetch() asked", PAGE, [], {"Sec-Fetch-Dest": "empty"}),
        ("compressed", PAGE, [("Content-Encoding", "gzip")], {}),
        ("a range", PAGE, [("Content-Range", "bytes 0-10/80")], {}),
        ("no body end", b"<!doctype html><html><body>streaming...", [], {}),
    ],
)
def test_responses_that_are_not_a_whole_page_load_pass_untouched(
    live: Any,
    why: str,
    body: bytes,
    headers: list[tuple[str, str]],
    request_headers: dict[str, str],
) -> None:
    response = call_app(live(html_app(body, headers)), headers={**HOST, **request_headers})
    assert response.body == body, why
    assert response.header("Content-Length") == str(len(body))


def test_other_content_types_methods_and_debugger_requests_pass_untouched(live: Any) -> None:
    def text_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [PAGE]

    assert call_app(live(text_app), headers=HOST).body == PAGE
    assert call_app(live(html_app()), method="HEAD", headers=HOST).body == PAGE
    assert call_app(live(html_app()), "/?__debugger__=yes&cmd=x", headers=HOST).body == PAGE


def test_a_host_the_debugger_would_refuse_gets_no_script(live: Any) -> None:
    response = call_app(live(html_app()), headers={"Host": "attacker.example"})
    assert response.body == PAGE


def test_a_streamed_document_gets_the_script_even_when_body_end_is_split(live: Any) -> None:
    blocks = [b"<!doctype html><html><body>", b"x" * 2000, b"</bo", b"dy></html>"]

    def streaming(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield from blocks

    response = call_app(live(streaming), headers=HOST)
    assert response.header("Content-Length") is None
    assert response.body.replace(script_tags(response.body)[0], b"") == b"".join(blocks)
    assert response.body.endswith(b"></script></body></html>")


def test_the_apps_iterable_is_closed(live: Any) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield PAGE

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("Content-Type", "text/html")])
        return Body()

    call_app(live(app), headers=HOST)
    assert closed == [True]


def test_debugged_application_alone_injects_nothing() -> None:
    """A production stack that keeps the debugger by mistake still never gets live reload."""
    response = call_app(DebuggedApplication(html_app()), headers=HOST)
    assert b"__wsgidev__/live" not in response.body


# -- the app's Content-Security-Policy ---------------------------------------------------------


def csp_of(response: Any) -> str:
    return response.header("Content-Security-Policy") or ""


def test_a_nonce_policy_gets_the_scripts_own_nonce(live: Any) -> None:
    policy = "default-src 'self'; script-src 'nonce-appnonce' 'strict-dynamic'"
    response = call_app(live(html_app(headers=[("Content-Security-Policy", policy)])), headers=HOST)
    nonce = re.search(rb'nonce="([^"]+)"', script_tags(response.body)[0])
    assert nonce is not None
    assert csp_of(response) == f"{policy} 'nonce-{nonce.group(1).decode()}'"


def test_a_self_policy_already_allows_the_script_and_is_left_as_is(live: Any) -> None:
    policy = "default-src 'self'"
    response = call_app(live(html_app(headers=[("Content-Security-Policy", policy)])), headers=HOST)
    assert csp_of(response) == policy
    assert script_tags(response.body)


def test_unsafe_inline_keeps_working_the_script_is_allowed_by_its_url(live: Any) -> None:
    """A nonce beside 'unsafe-inline' would turn the app's own inline scripts off."""
    policy = "script-src 'unsafe-inline' https://cdn.example; connect-src https://api.example"
    response = call_app(live(html_app(headers=[("Content-Security-Policy", policy)])), headers=HOST)
    assert csp_of(response) == (
        "script-src 'unsafe-inline' https://cdn.example "
        "http://127.0.0.1:5000/__wsgidev__/live/client.js; "
        "connect-src https://api.example http://127.0.0.1:5000/__wsgidev__/live/"
    )


def test_a_rule_inherited_from_default_src_becomes_its_own_directive(live: Any) -> None:
    policy = "default-src https://cdn.example; img-src *"
    response = call_app(live(html_app(headers=[("Content-Security-Policy", policy)])), headers=HOST)
    assert csp_of(response) == (
        "default-src https://cdn.example; img-src *; "
        "script-src-elem https://cdn.example http://127.0.0.1:5000/__wsgidev__/live/client.js; "
        "connect-src https://cdn.example http://127.0.0.1:5000/__wsgidev__/live/"
    )


@pytest.mark.parametrize(
    "policy", ["default-src 'self'; connect-src 'none'", "script-src 'none'", "default-src 'none'"]
)
def test_a_policy_that_forbids_it_leaves_the_page_untouched_and_says_why_once(
    live: Any, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    middleware = live(html_app(headers=[("Content-Security-Policy", policy)]))
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        first = call_app(middleware, headers=HOST)
        second = call_app(middleware, headers=HOST)
    assert first.body == second.body == PAGE
    assert csp_of(first) == policy
    warnings = [
        r.getMessage() for r in caplog.records if "Live reload left pages" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "'none'" in warnings[0]


# -- its own routes ----------------------------------------------------------------------------


def test_the_client_script_is_served_as_javascript(live: Any) -> None:
    response = call_app(live(html_app()), PREFIX + "client.js", headers=HOST)
    assert response.code == 200
    assert response.header("Content-Type") == "text/javascript; charset=utf-8"
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert b"wsgidev-overlay" in response.body
    etag = response.header("ETag") or ""
    again = call_app(
        live(html_app()), PREFIX + "client.js", headers={**HOST, "If-None-Match": etag}
    )
    assert (again.code, again.body) == (304, b"")


def test_the_event_stream_says_hello_with_the_boot_first(live: Any) -> None:
    middleware = live(html_app())
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": PREFIX + "events", "HTTP_HOST": "localhost"}
    stream = middleware(environ, start_response)
    assert isinstance(stream, EventStream)
    assert captured["status"] == "200 OK"
    assert captured["headers"]["Content-Type"].startswith("text/event-stream")
    assert captured["headers"]["Cache-Control"] == "no-store"
    assert stream.first.startswith(b"retry: ")
    assert f'event: hello\ndata: {{"boot":"{middleware.boot}"}}\n\n'.encode() in stream.first
    assert environ["wsgidev.log_request"] is False


@pytest.mark.parametrize("name", ["client.js", "events", "error?tb=abc"])
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Host": "rebound.attacker.example"}, 400),
        ({**HOST, "Sec-Fetch-Site": "cross-site"}, 403),
        ({**HOST, "Sec-Fetch-Site": "same-site"}, 403),
        ({**HOST, "Origin": "http://evil.example"}, 403),
    ],
)
def test_its_routes_pass_the_debuggers_host_and_cross_site_checks(
    live: Any, name: str, headers: dict[str, str], code: int
) -> None:
    response = call_app(live(html_app()), PREFIX + name, headers=headers)
    assert response.code == code
    assert b"boot" not in response.body


def test_other_methods_and_names_are_refused(live: Any) -> None:
    assert call_app(live(html_app()), PREFIX + "events", method="POST", headers=HOST).code == 405
    assert call_app(live(html_app()), PREFIX + "nope", headers=HOST).code == 404


# -- error summaries for the overlay -----------------------------------------------------------


def failing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    cart = {"apples": 2}
    return [str(cart["pears"]).encode()]  # the raising line


def test_an_error_summary_has_the_exception_and_the_raising_lines(live: Any) -> None:
    stack = live(DebuggedApplication(failing_app))
    failed = call_app(stack, "/api/cart", headers={**HOST, "Sec-Fetch-Dest": "empty"})
    assert failed.code == 500
    link = failed.header("X-Wsgidev-Traceback") or ""
    token = link.rsplit("tb=", 1)[1]
    response = call_app(stack, f"{PREFIX}error?tb={token}", headers=HOST)
    assert response.code == 200
    summary = json.loads(response.body)
    assert (summary["type"], summary["message"]) == ("KeyError", "'pears'")
    assert summary["traceback_url"] == link
    assert summary["request"]["method"] == "GET"
    assert summary["request"]["url"].endswith("/api/cart")
    frame = summary["frame"]
    assert (frame["function"], frame["filename"]) == ("failing_app", __file__)
    current = [line for line in frame["lines"] if line["lineno"] == frame["lineno"]]
    assert current[0]["text"].strip() == 'return [str(cart["pears"]).encode()]  # the raising line'
    assert len(frame["lines"]) == 7


def test_an_unknown_or_malformed_token_is_a_404_without_details(live: Any) -> None:
    stack = live(DebuggedApplication(failing_app))
    for token in ("nosuchtoken", "../../etc", "x" * 100):
        response = call_app(stack, f"{PREFIX}error?tb={token}", headers=HOST)
        assert response.code == 404
        assert json.loads(response.body) == {"error": "This error is no longer kept, or never was."}


# -- what changed, told to open pages ----------------------------------------------------------


def test_saved_files_become_css_or_reload_events(live: Any, tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("p{}")
    (static / "app.js").write_text("")
    templates = tmp_path / "templates"
    templates.mkdir()
    middleware = live(html_app(), static_files={"/assets": static}, watch=[templates])
    events: list[bytes] = []
    middleware.channel.subscribe(events.append)
    middleware.file_changed(str(static / "css" / "site.css"))
    middleware.file_changed(str(static / "app.js"))
    middleware.file_changed(str(templates / "index.html"))
    assert events == [
        b'event: css\ndata: {"url":"/assets/css/site.css"}\n\n',
        b'event: reload\ndata: {"path":"/assets/app.js"}\n\n',
        b'event: reload\ndata: {"path":"index.html"}\n\n',
    ]


def test_a_saved_stylesheet_is_noticed_by_the_watcher(live: Any, tmp_path: Path) -> None:
    sheet = tmp_path / "site.css"
    sheet.write_text("p { color: red }")
    middleware = live(html_app(), static_files={"/static": tmp_path})
    events: list[bytes] = []
    middleware.channel.subscribe(events.append)
    import time

    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        sheet.write_text(f"p {{ color: blue }} /* {time.monotonic()} */")
        time.sleep(0.3)
    assert events and events[0] == b'event: css\ndata: {"url":"/static/site.css"}\n\n'


def test_arguments_are_checked_with_messages_that_say_what_to_pass() -> None:
    with pytest.raises(TypeError, match="app must be a WSGI callable"):
        LiveReloadMiddleware("app")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="static_files must be a mapping of URL prefix"):
        LiveReloadMiddleware(html_app(), static_files="static")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="URL paths such as '/static'"):
        LiveReloadMiddleware(html_app(), static_files={"static": "."})
    with pytest.raises(TypeError, match="watch must be a list"):
        LiveReloadMiddleware(html_app(), watch="templates")
    with pytest.raises(TypeError, match="trusted_hosts must be a list"):
        LiveReloadMiddleware(html_app(), trusted_hosts="localhost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heartbeat must be a positive number"):
        LiveReloadMiddleware(html_app(), heartbeat=0)


# -- what the review found: heads replaced late, forms, caches, streams ------------------------


def test_a_streamed_page_that_fails_before_its_first_byte_gets_the_debuggers_500(live: Any) -> None:
    def streaming_csv(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/csv")])
        raise RuntimeError("the export failed")
        yield b"a,b\n"  # never reached

    browser = {**HOST, "Accept": "text/html", "Sec-Fetch-Dest": "document"}
    response = call_app(live(DebuggedApplication(streaming_csv)), headers=browser)
    assert response.code == 500
    assert (response.header("Content-Type") or "").startswith("text/html")
    assert response.header("X-Wsgidev-Traceback")
    assert "nonce-" in (response.header("Content-Security-Policy") or "")
    assert response.header("X-Frame-Options") == "DENY"
    assert len(script_tags(response.body)) == 1


def test_a_head_replaced_after_the_first_body_byte_is_refused_as_a_server_would(live: Any) -> None:
    def late(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield b"<!doctype html><html><body>"
        try:
            raise ValueError("late")
        except ValueError:
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        yield b"never"

    with pytest.raises(ValueError, match="late"):
        call_app(live(late), headers=HOST)


def test_the_answer_to_a_form_post_gets_no_script(live: Any) -> None:
    """A reload would send the form again."""
    assert call_app(live(html_app()), method="POST", headers=HOST).body == PAGE


def test_pages_with_the_script_are_never_answered_from_a_cache(live: Any) -> None:
    seen: list[str | None] = []

    def cached(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ.get("HTTP_IF_NONE_MATCH"))
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html"),
                ("ETag", '"v1"'),
                ("Last-Modified", "Wed, 01 Jan 2025 00:00:00 GMT"),
                ("Cache-Control", "max-age=43200"),
                ("Vary", "Accept-Encoding"),
            ],
        )
        return [PAGE]

    response = call_app(live(cached), headers={**HOST, "If-None-Match": '"v1"'})
    assert seen == [None]  # the page comes whole, never as a 304 of the copy with the old boot
    assert script_tags(response.body)
    assert response.header("ETag") is None and response.header("Last-Modified") is None
    assert response.header("Cache-Control") == "no-cache"
    assert response.header("Vary") == "Accept-Encoding, Sec-Fetch-Dest, HX-Request"


def test_a_download_gets_no_script(live: Any) -> None:
    headers = [("Content-Disposition", "attachment; filename=page.html")]
    assert call_app(live(html_app(headers=headers)), headers=HOST).body == PAGE


def test_a_report_only_policy_is_amended_and_never_stops_the_script(live: Any) -> None:
    allowed = "script-src https://cdn.example"
    response = call_app(
        live(html_app(headers=[("Content-Security-Policy-Report-Only", allowed)])), headers=HOST
    )
    assert response.header("Content-Security-Policy-Report-Only") == (
        "script-src https://cdn.example http://127.0.0.1:5000/__wsgidev__/live/client.js"
    )
    forbidding = "default-src 'none'"
    response = call_app(
        live(html_app(headers=[("Content-Security-Policy-Report-Only", forbidding)])), headers=HOST
    )
    assert response.header("Content-Security-Policy-Report-Only") == forbidding
    assert script_tags(response.body)


def test_a_streamed_page_gets_the_script_before_its_last_body_end(live: Any) -> None:
    blocks = [
        b"<!doctype html><html><body><script>let s='</body>';</script>",
        b"<p>x</p>",
        b"</body></html>",
    ]

    def streaming(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield from blocks

    body = call_app(live(streaming), headers=HOST).body
    assert b"let s='</body>';</script><p>x</p><script src=" in body
    assert body.endswith(b"></script></body></html>")


def test_a_streamed_page_starts_flowing_as_soon_as_it_looks_like_a_document(live: Any) -> None:
    asked: list[int] = []

    def slow(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        asked.append(1)
        yield b"<!doctype html><html><head><title>report</title></head><body><p>working"
        asked.append(2)  # the app computes for a long time here
        yield b"...done</p></body></html>"

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "localhost"}
    middleware = live(slow)
    body = iter(middleware(environ, lambda status, headers, exc_info=None: None))
    first = next(body)
    assert first.startswith(b"<!doctype html>") and asked == [1]


def test_without_a_debugger_error_summaries_never_reach_the_app(live: Any) -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"type": "Forged"}']

    response = call_app(live(app), f"{PREFIX}error?tb=abc", headers=HOST)
    assert response.code == 404 and calls == []


def test_under_another_server_a_stream_ends_after_its_max_age() -> None:
    """A foreign server's reload or stop waits for running requests: it never waits long."""
    stream = EventStream(EventChannel(), b"hello", heartbeat=10.0, max_age=0.2)
    started = time.monotonic()
    assert list(stream) == [b"hello"]
    assert time.monotonic() - started < 2.0
