"""A developer's session in headless Chromium: a Flask view fails, the page opens, the console answers.

The browser runs in a thread of its own: Playwright's sync API allows one instance per thread,
and tests/browser keeps its session-wide instance open in the main thread.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM_ARGS, chromium_path
from tests.conftest import LiveServer, start_live_server
from tests.integration.conftest import shared_server

pytestmark = [pytest.mark.live, pytest.mark.browser]

PIN = "864-209-531"
# Runs before the page's scripts, outside its CSP, and records what the policy blocked.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = start_live_server("flask_app", "--debugger", env={"WSGIDEV_DEBUG_PIN": PIN})
    with shared_server(live):
        yield live


def in_browser(scenario: Callable[[Any], list[str]], timeout: float = 90) -> list[str]:
    """Run ``scenario(page)`` in a fresh headless Chromium on its own thread; return its problems."""
    executable = chromium_path()
    if executable is None:
        message = "Chromium is not installed; install it with: apt-get install -y chromium"
        if os.environ.get("WSGIDEV_REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
                context = playwright.chromium.launch_persistent_context(
                    profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    context.set_default_timeout(15_000)
                    context.add_init_script(RECORD_CSP_VIOLATIONS)
                    outcome["problems"] = scenario(context.new_page())
                finally:
                    context.close()
        except BaseException as exc:  # handed to the test's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="chromium", daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the browser scenario took more than {timeout}s"
    if "error" in outcome:
        raise outcome["error"]
    return list(outcome["problems"])


def test_flask_error_page_and_frame_console(server: LiveServer) -> None:
    def scenario(page: Any) -> list[str]:
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
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
        return problems + list(page.evaluate("window.__cspViolations"))

    # The page's own 500 is expected; nothing else may fail, and the CSP must block nothing.
    assert [p for p in in_browser(scenario) if "status of 500" not in p] == []
