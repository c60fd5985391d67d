"""A developer's session in headless Chromium: a Flask view fails, the page opens, the console answers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import WatchedPage, browser_page, chromium_context
from tests.conftest import LiveServer, start_live_server
from tests.integration.conftest import shared_server

pytestmark = [pytest.mark.live, pytest.mark.browser]

__all__ = ["browser_page", "chromium_context"]  # fixtures shared with tests/browser

PIN = "864-209-531"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = start_live_server("flask_app", "--debugger", env={"WSGIDEV_DEBUG_PIN": PIN})
    with shared_server(live):
        yield live


def test_flask_error_page_and_frame_console(server: LiveServer, browser_page: WatchedPage) -> None:
    page = browser_page.page
    response = page.goto(server.url + "/orders/42/charge", wait_until="networkidle")
    assert response is not None and response.status == 500
    assert page.title().startswith("ValueError")

    frame = page.locator("[data-frame-id]:visible").filter(
        has=page.locator("code", has_text=re.compile(r"^charge_order$"))
    )
    frame.locator(".console-toggle").click()
    page.locator(".console-pin-input").fill(PIN)
    page.locator(".console-pin-submit").click()
    prompt = frame.locator(".console-input")
    prompt.fill("order_id * 2")
    prompt.press("Enter")
    frame.locator(".console-result", has_text="84").wait_for()
    prompt.fill("environ['PATH_INFO']")
    prompt.press("Enter")
    frame.locator(".console-result", has_text="/orders/42/charge").wait_for()
    browser_page.screenshot("integration-flask-console.png", full_page=False)

    # The page's own 500 is expected; nothing else may fail, and the CSP must block nothing.
    problems = [p for p in browser_page.problems() if "status of 500" not in p]
    assert problems == []
