"""The traceback page in headless Chromium: folding, locals, whole-function source, no CSP or
script errors, readable without JavaScript. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import WatchedPage
from tests.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    return live_server("debug_showcase", "--debugger", "--threaded", "--no-evalex")


def real_problems(watched: WatchedPage) -> list[str]:
    # Chromium reports the document's own 500 status as a console error; that is the point here.
    return [p for p in watched.problems() if "status of 500" not in p]


def test_the_page_folds_library_frames_and_shows_locals_on_demand(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page: Any = browser_page.page
    page.goto(server.url + "/boom")
    assert page.title().startswith("RuntimeError: could not read the <payload>")
    assert page.locator("h1 .exc-type").inner_text() == "RuntimeError"

    group = page.locator("details.library-frames").first
    assert group.get_attribute("open") is None  # folded by the script
    assert group.locator(".frame").first.is_hidden()
    group.locator(":scope > summary").click()
    assert group.get_attribute("open") == ""
    assert group.locator(".frame").first.is_visible()

    raising = page.locator(".frame.raising").first
    assert raising.is_visible()  # the frame that raised is never folded away

    function_name = page.locator(".function code", has_text=re.compile(r"^parse_payload$"))
    app_frame = page.locator(".frame.app").filter(has=function_name)
    locals_table = app_frame.locator("details.locals table")
    assert locals_table.is_hidden()
    app_frame.locator("details.locals > summary").click()
    assert locals_table.is_visible()
    token_row = locals_table.locator("tr", has_text="api_token")
    assert token_row.locator("td").inner_text() == "********"
    assert "tok-123456" not in page.content()

    outer = page.locator(".frame.app").filter(
        has=page.locator(".function code", has_text=re.compile(r"^app$"))
    )
    extra = outer.first.locator(".line.extra").first
    assert extra.is_hidden()
    outer.first.locator("button.expand").click()
    assert extra.is_visible()

    assert (
        page.locator("#plaintext-text")
        .inner_text()
        .startswith("Traceback (most recent call last):")
    )
    assert real_problems(browser_page) == []
    browser_page.screenshot("traceback-page.png")


def test_dark_mode_follows_the_system_setting(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page: Any = browser_page.page
    page.emulate_media(color_scheme="dark")
    page.goto(server.url + "/boom")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(244, 245, 247)"  # not the light palette
    page.emulate_media(color_scheme="light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 245, 247)"
    page.emulate_media(color_scheme="dark")
    assert real_problems(browser_page) == []
    browser_page.screenshot("traceback-page-dark.png")


def test_without_javascript_everything_is_shown_expanded(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page: Any = browser_page.page
    page.route("**/*f=debugger.js*", lambda route: route.abort())
    page.goto(server.url + "/boom")
    assert page.evaluate("document.documentElement.classList.contains('js')") is False
    assert page.locator("details.library-frames .frame").first.is_visible()
    assert page.locator("details.locals table").first.is_visible()
    assert page.locator(".line.extra").first.is_visible()
    # The copy buttons need the script, so they stay out of the way.
    assert page.locator("button.copy").evaluate_all("els => els.every(e => e.hidden)")
    browser_page.screenshot("traceback-page-no-js.png")


def test_the_copy_button_copies_pythons_traceback(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page: Any = browser_page.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.goto(server.url + "/boom")
    button = page.locator("button.copy[data-copy]")
    button.click()
    # A function, not an expression string: polling a string needs eval, which the CSP forbids.
    page.wait_for_function(
        "() => document.querySelector('button.copy[data-copy]').textContent === 'Copied'"
    )
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#plaintext-text").text_content()
    assert copied.startswith("Traceback (most recent call last):")
    assert copied.rstrip().endswith("RuntimeError: could not read the <payload>")
    assert real_problems(browser_page) == []


def test_copy_as_markdown_copies_the_traceback_for_an_agent(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page: Any = browser_page.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.goto(server.url + "/boom")
    page.get_by_role("button", name="Copy as Markdown").click()
    page.wait_for_function(
        "() => document.querySelector('button.copy[data-label]').textContent === 'Copied'"
    )
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("# `RuntimeError`")
    assert "```python" in copied and "could not read the <payload>" in copied
    page.wait_for_function(
        "() => document.querySelector('button.copy[data-label]').textContent === 'Copy as Markdown'"
    )
    assert real_problems(browser_page) == []


@pytest.mark.parametrize("path", ["/boom", "/recursion"])
def test_the_plaintext_traceback_is_shown_whole_not_in_a_scroll_box(
    server: LiveServer, browser_page: WatchedPage, path: str
) -> None:
    # A fixed-height box cut the text mid-traceback; the page itself scrolls instead.
    page: Any = browser_page.page
    page.goto(server.url + path)
    box = page.locator("#plaintext-text")
    heights = box.evaluate("e => [e.scrollHeight, e.clientHeight]")
    assert heights[0] <= heights[1] + 1, heights
    last_line = box.inner_text().rstrip().splitlines()[-1]
    assert last_line.endswith(("could not read the <payload>", "maximum recursion depth exceeded"))
    assert page.locator("#plaintext button.copy").first.is_visible()
    box.scroll_into_view_if_needed()
    assert real_problems(browser_page) == []
    browser_page.screenshot(f"traceback-plaintext{path.replace('/', '-')}.png")


def test_a_huge_traceback_is_excerpted_but_copied_whole(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page: Any = browser_page.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    response = page.goto(server.url + "/recursion")
    assert len(response.body()) < 100_000
    assert page.locator(".repeat").first.inner_text().startswith("The 2 frames above repeat")
    page.locator("button.copy").first.click()
    # A function, not an expression string: polling a string needs eval, which the CSP forbids.
    page.wait_for_function("() => document.querySelector('button.copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    # Whole: every recursive frame, however many characters this Python prints for each.
    recursive_frames = len(re.findall(r", in (ping|pong)\n", copied))
    assert recursive_frames > sys.getrecursionlimit() // 2
    assert copied.endswith("RecursionError: maximum recursion depth exceeded\n")
    assert real_problems(browser_page) == []
    browser_page.screenshot("traceback-page-recursion.png", full_page=False)
