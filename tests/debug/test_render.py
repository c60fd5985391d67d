"""The HTML page: hostile text is escaped everywhere, no inline code, the structure the scripts use."""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
from html.parser import HTMLParser
from typing import Any, NoReturn

import pytest

from tests.conftest import call_app
from wsgidev.debug import DebuggedApplication
from wsgidev.debug._request import describe_request
from wsgidev.debug.model import Traceback, build_traceback
from wsgidev.debug.render import PLAINTEXT_INLINE_CHARS, PageContext, editor_url, render_page

HOSTILE = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"


class PageParser(HTMLParser):
    """Collects what matters for safety: elements, attributes and script/style contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.inline_code: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.inline_code.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def context(**overrides: Any) -> PageContext:
    fields: dict[str, Any] = {
        "secret": "s3cr3t",
        "token": "tok",
        "nonce": "n0nce",
        "page_url": "http://127.0.0.1/?__debugger__=yes&tb=tok",
        "asset_urls": {
            "debugger.css": "?__debugger__=yes&cmd=resource&f=debugger.css",
            "debugger.js": "?__debugger__=yes&cmd=resource&f=debugger.js",
            "favicon.svg": "?__debugger__=yes&cmd=resource&f=favicon.svg",
        },
    }
    fields.update(overrides)
    return PageContext(**fields)


def hostile_traceback() -> Traceback:
    def hostile_function() -> NoReturn:
        payload = HOSTILE  # noqa: F841 - shown as a local
        error = ValueError(HOSTILE)
        error.__notes__ = [HOSTILE]  # what add_note() does on 3.11+
        raise error

    try:
        hostile_function()
    except ValueError as exc:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/<script>",
            "QUERY_STRING": 'q=%3Cscript%3E&x="><b>',
            "HTTP_HOST": "127.0.0.1",
            "HTTP_X_EVIL": HOSTILE,
            "wsgi.url_scheme": "http",
            "wsgidev.note": HOSTILE,
        }
        return build_traceback(
            exc, frame_ids=itertools.count(1), request=describe_request(environ)
        ).traceback
    raise AssertionError("unreachable")


def test_hostile_text_is_escaped_everywhere() -> None:
    html = render_page(hostile_traceback(), context())
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    page = parse(html)
    assert not page.inline_code
    assert all(name != "img" for name, _ in page.elements)
    assert {attrs.get("src") for attrs in page.all("script")} == {
        "?__debugger__=yes&cmd=resource&f=debugger.js"
    }


def test_no_inline_script_or_style_and_every_asset_carries_the_nonce() -> None:
    page = parse(
        render_page(
            hostile_traceback(), context(extra_scripts=("?__debugger__=yes&cmd=resource&f=x.js",))
        )
    )
    assert not page.inline_code
    assert not page.all("style")
    assert all("style" not in attrs for _, attrs in page.elements)
    assert all(not key.startswith("on") for _, attrs in page.elements for key in attrs)
    scripts = page.all("script")
    assert len(scripts) == 2 and all(s["nonce"] == "n0nce" and s["src"] for s in scripts)
    sheets = [a for a in page.all("link") if a.get("rel") == "stylesheet"]
    assert sheets and all(s["nonce"] == "n0nce" for s in sheets)


def test_the_body_carries_the_secret_and_each_frame_its_id() -> None:
    tb = hostile_traceback()
    page = parse(render_page(tb, context(evalex=True)))
    body = page.all("body")[0]
    assert body["data-secret"] == "s3cr3t"
    assert body["data-evalex"] == "true"
    ids = [attrs["data-frame-id"] for _, attrs in page.elements if "data-frame-id" in attrs]
    assert ids == [str(frame.id) for frame in tb.all_frames()]


def test_library_frames_fold_into_a_group_but_the_raising_frame_stays_out() -> None:
    try:
        json.loads("{")
    except ValueError as exc:
        tb = build_traceback(exc, frame_ids=itertools.count(1)).traceback
    html = render_page(tb, context())
    library = [f for f in tb.exception.frames if f.kind == "library"]
    assert len(library) >= 3
    assert f"{len(library) - 1} library frames" in html
    group = html[
        html.index('class="library-frames"') : html.index(
            "</details>", html.index('class="library-frames"')
        )
    ]
    assert f'data-frame-id="{library[-1].id}"' not in group
    assert f'data-frame-id="{library[0].id}"' in group
    assert re.search(rf'class="frame library raising" id="frame-{library[-1].id}"', html)
    # Library paths are shortened for reading; the full path stays in the title.
    assert f'<span class="file" title="{library[-1].filename}">json/decoder.py</span>' in html


@pytest.mark.skipif(sys.version_info < (3, 11), reason="column positions are new in 3.11")
def test_carets_mark_the_failing_expression_like_python() -> None:
    def subscript() -> int:
        values: dict[str, int] = {}
        return 1 + values["<key>"]

    try:
        subscript()
    except KeyError as exc:
        tb = build_traceback(exc, frame_ids=itertools.count(1)).traceback
    html = render_page(tb, context())
    carets = re.search(
        r'<div class="line carets" data-ln="" aria-hidden="true">( *)(\^+)</div>', html
    )
    assert carets is not None
    assert len(carets[2]) == len('values["<key>"]')


def test_the_current_line_is_marked_and_extra_lines_are_present_for_no_js() -> None:
    tb = hostile_traceback()
    frame = tb.exception.frames[-1]
    html = render_page(tb, context())
    assert f'<div class="line current" data-ln="{frame.lineno}">' in html
    assert 'class="line extra"' in html
    assert "Whole function" in html


def test_secret_headers_and_locals_are_masked_in_the_page() -> None:
    app = DebuggedApplication(crash_app)
    response = call_app(
        app,
        "/?token=abc123",
        headers={"Accept": "text/html", "Cookie": "session=abc", "Authorization": "Bearer xyz"},
    )
    html = response.body.decode()
    # The source line `password = "hunter2"` is code and stays; the value in Locals is masked.
    assert (
        '<tr class="masked"><th scope="row">password</th><td><code>********</code></td></tr>'
        in html
    )
    assert "&#39;hunter2&#39;" not in html
    assert "abc123" not in html and "Bearer xyz" not in html and "session=abc" not in html
    assert html.count("********") >= 4


def crash_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    from tests.apps.crash import app

    return app(environ, start_response)


def test_editor_links_are_built_from_the_template() -> None:
    tb = hostile_traceback()
    html = render_page(tb, context(editor="vscode://file/{path}:{line}"))
    frame = tb.exception.frames[-1]
    assert f'href="vscode://file/{frame.filename}:{frame.lineno}"' in html
    assert (
        editor_url("pycharm://open?file={path}&line={line}", "/a b/c.py", 7)
        == "pycharm://open?file=/a%20b/c.py&line=7"
    )


@pytest.mark.parametrize(
    "editor", ["javascript:alert({path})", "data:text/html,{path}", "vscode://file/"]
)
def test_an_unsafe_or_useless_editor_template_is_refused(editor: str) -> None:
    with pytest.raises(ValueError, match="editor"):
        DebuggedApplication(crash_app, editor=editor)


def test_recursion_page_says_how_often_the_frames_repeat() -> None:
    def recurse(n: int) -> int:
        return recurse(n + 1)

    try:
        recurse(0)
    except RecursionError as exc:
        tb = build_traceback(exc, frame_ids=itertools.count(1)).traceback
    html = render_page(tb, context())
    assert re.search(r"The frame above repeats \d{3} more times\.", html)
    assert len(html) < 100_000


def test_syntax_error_shows_the_line_and_a_caret() -> None:
    try:
        compile("value = (1 + <b>\n", "<bad>", "exec")
    except SyntaxError as exc:
        tb = build_traceback(exc, frame_ids=itertools.count(1)).traceback
    html = render_page(tb, context())
    assert 'class="syntax-error"' in html
    assert "value = (1 + &lt;b&gt;" in html.replace('<mark class="syntax-span">', "").replace(
        "</mark>", ""
    )
    assert re.search(r'<span class="caret" aria-hidden="true"> *\^+</span>', html)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in 3.11")
def test_chain_sentences_and_group_members_appear() -> None:
    def raise_group() -> NoReturn:
        try:
            {}["k"]
        except KeyError as exc:
            raise ExceptionGroup("two failed", [ValueError("one"), TypeError("two")]) from exc  # noqa: F821

    try:
        raise_group()
    except Exception as exc:
        tb = build_traceback(exc, frame_ids=itertools.count(1)).traceback
    html = render_page(tb, context())
    assert "The above exception was the direct cause of the following exception:" in html
    assert "Sub-exception 1 of 2: <code>ValueError</code>" in html
    assert "Sub-exception 2 of 2: <code>TypeError</code>" in html


def ping(n: int) -> int:
    return pong(n + 1)


def pong(n: int) -> int:
    return ping(n + 1)


def test_mutual_recursion_keeps_the_page_small_and_links_the_whole_text() -> None:
    captured: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            ping(0)
        except RecursionError as exc:
            captured.append(exc)
            raise
        return []

    debugger = DebuggedApplication(app)
    logging.getLogger("wsgidev").disabled = True
    try:
        response = call_app(debugger, "/", headers={"Accept": "text/html"})
    finally:
        logging.getLogger("wsgidev").disabled = False
    html = response.body.decode()
    assert len(response.body) < 100_000
    assert "The 2 frames above repeat" in html
    link = re.search(
        r'<a href="(\?__debugger__=yes&amp;tb=[\w-]+&amp;format=python)">Open the whole traceback as text</a>',
        html,
    )
    assert link is not None
    whole = call_app(debugger, "/" + link[1].replace("&amp;", "&"), headers={"Accept": "text/html"})
    assert whole.code == 200 and whole.header("Content-Type") == "text/plain; charset=utf-8"
    assert len(whole.body) > PLAINTEXT_INLINE_CHARS  # too long to inline, so it was excerpted
    assert whole.body.decode().endswith("RecursionError: maximum recursion depth exceeded\n")


def test_the_banner_names_where_it_was_raised_and_the_earlier_exceptions() -> None:
    def lookup() -> NoReturn:
        try:
            json.loads("{")
        except ValueError as exc:
            raise LookupError("no <config>") from exc

    try:
        lookup()
    except LookupError as exc:
        tb = build_traceback(exc, frame_ids=itertools.count(1)).traceback
    html = render_page(tb, context())
    raised = tb.exception.frames[-1]
    assert re.search(
        rf'Raised in <a href="#frame-{raised.id}"><code>[\w.&;]*lookup</code></a>', html
    )
    assert (
        '<span class="cause-label">caused by</span> <a href="#exc-0"><code class="exc-type">'
        "json.decoder.JSONDecodeError</code>"
    ) in html
    assert 'id="exc-0"' in html


def test_templates_take_plain_fields_and_escape_every_one() -> None:
    from markupsafe import Markup

    from wsgidev.debug._template import Template

    template = Template('<a href="{href}">{text}</a>{{literal}}')
    filled = template.fill({"href": '"><script>', "text": Markup("<b>trusted</b>")})
    assert filled == '<a href="&#34;&gt;&lt;script&gt;"><b>trusted</b></a>{literal}'
    with pytest.raises(ValueError, match="plain"):
        Template("{value!r}")
    with pytest.raises(ValueError, match="plain"):
        Template("{frame.filename}")
