"""The console in headless Chromium: PIN prompt, a frame's console, multi-line input, history,
Tab completion, "show more", the standalone console, the lockout, and no script error or CSP
violation. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import http.server
import re
import rlcompleter
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from playwright.sync_api import Locator, Page

from tests.browser.conftest import WatchedPage
from tests.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

PIN = "314-159-265"
# The traceback page itself is a 500, which Chromium reports as a failed load.
PAGE_STATUS = "status of 500"


def unexpected(tab: WatchedPage, *expected: str) -> list[str]:
    allowed = (PAGE_STATUS, *expected)
    return [p for p in tab.problems() if not any(text in p for text in allowed)]


@pytest.fixture
def server(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    env = {"WSGIDEV_DEBUG_PIN": PIN, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    started = live_server("console_frames", "--debugger", "--threaded", env=env)
    started.wait_for(r" \* Debugger PIN: " + PIN)
    return started


def enter(console: Locator, line: str) -> None:
    """Type a line and press Enter, then wait until the console has answered it."""
    answered = console.locator(".console-echo").count()
    field = console.locator(".console-input")
    field.fill(line)
    field.press("Enter")
    console.locator(".console-echo").nth(answered).wait_for()
    console.page.wait_for_function(
        "el => !el.classList.contains('busy')", arg=console.element_handle()
    )


def last_result(console: Locator) -> str:
    return str(console.locator(".console-result").last.inner_text())


def type_pin(tab: Page, pin: str) -> None:
    tab.locator(".console-pin-input").first.fill(pin)
    tab.locator(".console-pin-submit").first.click()


def open_frame_console(tab: Page) -> Locator:
    frame = tab.locator("[data-frame-id]").last
    frame.locator(".console-toggle").click()
    return frame.locator(".wsgidev-console")


def console_after_the_pin(tab: Page, url: str) -> Locator:
    """Open ``url``'s traceback page, its last frame's console, and type the right PIN."""
    tab.goto(url)
    console = open_frame_console(tab)
    type_pin(tab, PIN)
    console.locator(".console-input").wait_for(state="visible")
    return console


def test_pin_then_a_frame_console_with_history_and_completion(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    tab = browser_page.page
    tab.goto(server.url + "/boom")
    console = open_frame_console(tab)

    # The PIN is asked before the first command; a wrong one is refused and says so.
    type_pin(tab, "000-000-000")
    tab.locator(".console-pin-status").wait_for()
    assert "Wrong PIN" in tab.locator(".console-pin-status").inner_text()
    type_pin(tab, PIN)
    console.locator(".console-input").wait_for(state="visible")

    enter(console, "x + 1")
    assert last_result(console) == "42"

    enter(console, "def greet(name):")
    assert console.locator(".console-prompt").last.inner_text().startswith("...")
    # The continuation line is pre-indented, as in an editor.
    assert console.locator(".console-input").input_value() == "    "
    enter(console, "    return f'hello {name} #{x}'")
    enter(console, "")
    enter(console, "greet('<b>ada</b>')")
    assert last_result(console) == "'hello <b>ada</b> #41'"
    assert console.locator(".console-result b").count() == 0
    browser_page.screenshot("console-frame-session.png")

    # Ctrl+C abandons a half-typed block, as at the REPL.
    enter(console, "for item in range(3):")
    console.locator(".console-input").press("Control+c")
    tab.wait_for_function(
        "() => document.querySelector('.console-line .console-prompt').textContent === '>>> '"
    )
    assert "KeyboardInterrupt" in last_result(console)

    enter(console, "print('out'); 1/0")
    assert "ZeroDivisionError" in last_result(console)

    # History: Up brings back earlier lines.
    field = console.locator(".console-input")
    field.press("ArrowUp")
    assert field.input_value() == "print('out'); 1/0"
    field.press("ArrowUp")
    assert field.input_value() == "for item in range(3):"
    field.press("ArrowUp")
    assert field.input_value() == "greet('<b>ada</b>')"
    for _ in range(3):
        field.press("ArrowDown")
    assert field.input_value() == ""

    # Tab completes a unique name in place, and lists several candidates.
    field.fill("user_")
    field.press("Tab")
    tab.wait_for_function("() => document.querySelector('.console-input').value !== 'user_'")
    assert field.input_value() == "user_name"
    # Spelled as this Python's rlcompleter spells it ("keys(" before 3.13, "keys()" since).
    keys = rlcompleter.Completer({"environ": {}}).complete("environ.ke", 0)
    field.fill("environ.ke")
    field.press("Tab")
    tab.wait_for_function(
        "keys => document.querySelector('.console-input').value === keys", arg=keys
    )
    field.fill("environ.")
    field.press("Tab")
    tab.wait_for_function("() => document.querySelectorAll('.console-completion').length > 5")
    console.locator(".console-completion button", has_text=keys).first.click()
    assert field.input_value() == keys

    # A long repr is cut; "show more" reveals the rest.
    enter(console, "'x' * 3000")
    more = console.locator(".show-more").last
    more.click()
    assert console.locator(".repr-rest").last.is_visible()
    assert last_result(console).count("x") >= 3000
    # The rest is still coloured as the string it continues.
    colours = console.locator(".repr").last.evaluate(
        "e => [e.querySelector('.repr-head span'), e.querySelector('.repr-rest span')]"
        ".map(s => s && getComputedStyle(s).color)"
    )
    assert colours[0] is not None and colours == [colours[0], colours[0]]

    enter(console, "dump()")
    assert console.locator(".dump th", has_text="user_name").count() == 1
    browser_page.screenshot("console-frame.png")

    # History survives a reload (local storage); so does the PIN token, which spares the prompt.
    tab.reload()
    console = open_frame_console(tab)
    field = console.locator(".console-input")
    field.wait_for(state="visible")
    assert tab.locator(".console-pin-input").count() == 0
    field.press("ArrowUp")
    assert field.input_value() == "dump()"
    assert unexpected(browser_page) == []


def test_pasting_several_lines_runs_them_as_a_block(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    tab = browser_page.page
    console = console_after_the_pin(tab, server.url + "/boom")
    field = console.locator(".console-input")
    field.focus()
    tab.evaluate(
        """() => {
            const data = new DataTransfer();
            data.setData('text', 'def twice(n):\\n    return 2 * n\\n\\ntwice(x + 1)');
            document.activeElement.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
        }"""
    )
    console.locator(".console-result").last.wait_for()
    assert last_result(console) == "84"
    assert unexpected(browser_page) == []


def test_the_standalone_console(server: LiveServer, browser_page: WatchedPage) -> None:
    tab = browser_page.page
    tab.goto(server.url + "/console")
    type_pin(tab, PIN)
    console = tab.locator(".wsgidev-console")
    console.locator(".console-input").wait_for(state="visible")
    # A fresh console has its prompt at the top, with no empty band above it.
    assert console.locator(".console-output").evaluate("e => e.offsetHeight") < 40
    enter(console, "import sys; sys.version_info[0]")
    assert last_result(console) == "3"
    enter(console, "help(len)")
    assert "Return the number of items" in last_result(console)
    enter(console, "dump()")
    assert "Names in this console" in last_result(console)
    intro = tab.locator(".console-page-header").inner_text()
    assert "console_init_func" not in intro and "starts empty" in intro
    browser_page.screenshot("console-standalone.png")
    assert unexpected(browser_page) == []


def test_ten_wrong_pins_lock_the_console_and_the_page_says_so(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    tab = browser_page.page
    tab.goto(server.url + "/console")
    status = tab.locator(".console-pin-status")
    for attempt in range(10):
        type_pin(tab, f"000-000-{attempt:03d}")
        left = 9 - attempt
        expected = f"{left} {'try' if left == 1 else 'tries'} left" if attempt < 9 else "locked"
        tab.wait_for_function(
            "text => document.querySelector('.console-pin-status').textContent.includes(text)",
            arg=expected,
        )
    assert "Restart the server" in status.inner_text()
    assert tab.locator(".console-pin-input").is_disabled()
    browser_page.screenshot("console-locked.png")
    # The locking answer is a 403, which Chromium logs as a failed load.
    assert unexpected(browser_page, "status of 403") == []


def test_under_a_multiprocess_server_the_console_explains_why_it_is_off(
    live_server: Callable[..., LiveServer], tmp_path: Path, browser_page: WatchedPage
) -> None:
    env = {"WSGIDEV_DEBUG_PIN": PIN, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    server = live_server("crash", "--debugger", "--processes", "2", env=env)
    tab = browser_page.page
    tab.goto(server.url + "/boom")
    open_frame_console(tab)
    message = tab.locator(".console-error")
    message.wait_for()
    assert "multi-process server" in message.inner_text()
    assert tab.locator(".console-pin-input").count() == 0
    assert unexpected(browser_page) == []


def test_a_page_whose_path_starts_with_two_slashes_talks_only_to_its_own_server(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    # "//attacker.invalid/boom" read as a URL is another host: the PIN must not go there.
    tab = browser_page.page
    hosts: list[str] = []
    tab.on("request", lambda request: hosts.append(request.url.split("/")[2]))
    tab.goto(server.url + "//attacker.invalid/boom")
    assert tab.evaluate("window.location.pathname") == "//attacker.invalid/boom"
    console = open_frame_console(tab)
    type_pin(tab, PIN)
    console.locator(".console-input").wait_for(state="visible")
    enter(console, "x + 1")
    assert last_result(console) == "42"
    assert set(hosts) == {f"127.0.0.1:{server.port}"}
    assert unexpected(browser_page) == []


def test_a_page_for_a_refused_client_has_no_secret_and_its_console_says_why(
    live_server: Callable[..., LiveServer], tmp_path: Path, browser_page: WatchedPage
) -> None:
    # The debugger only takes commands from 10.0.0.0/8; this browser is 127.0.0.1.
    env = {"WSGIDEV_DEBUG_PIN": PIN, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    server = live_server("console_guarded", env=env)
    tab = browser_page.page
    tab.goto(server.url + "/boom")
    assert tab.locator("body").get_attribute("data-secret") == ""
    open_frame_console(tab)
    message = tab.locator(".console-error")
    message.wait_for()
    assert "not among the trusted clients" in message.inner_text()
    # No PIN prompt (it could not help) and no input line to type into.
    assert tab.locator(".console-pin-input").count() == 0
    assert not tab.locator(".console-line").first.is_visible()
    browser_page.screenshot("console-refused-client.png")
    assert unexpected(browser_page, "status of 403") == []


def _crash_server_reloading_on(
    live_server: Callable[..., LiveServer], tmp_path: Path, *flags: str
) -> tuple[Path, LiveServer]:
    """The crash app with the debugger (known PIN) and the stat reloader; a save of the
    returned trigger file restarts it."""
    trigger = tmp_path / "settings.txt"
    trigger.write_text("one")
    env = {"WSGIDEV_DEBUG_PIN": PIN, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    server = live_server(
        "crash",
        "--debugger",
        "--reload",
        "--reloader-type",
        "stat",
        "--extra-file",
        str(trigger),
        *flags,
        env=env,
    )
    server.wait_for(r" \* Debugger PIN: ")
    return trigger, server


@pytest.mark.slow
def test_after_a_restart_the_open_page_says_reload_and_the_pin_is_not_asked_again(
    live_server: Callable[..., LiveServer], tmp_path: Path, browser_page: WatchedPage
) -> None:
    """Without live reload the page stays as it was: its console says the server restarted."""
    trigger, server = _crash_server_reloading_on(
        live_server, tmp_path, "--no-live", "--reloader-interval", "0.2"
    )
    tab = browser_page.page
    tab.goto(server.url + "/boom")
    console = open_frame_console(tab)
    type_pin(tab, PIN)
    console.locator(".console-input").wait_for(state="visible")
    enter(console, "user_id")
    assert last_result(console) == "42"

    restarted_at = len(server.lines)
    trigger.write_text("two")
    server.wait_for(r" \* Debugger PIN: ", start=restarted_at, timeout=20)
    enter(console, "user_id")
    message = console.locator('.console-error[data-reason="restarted"]')
    message.wait_for()
    assert "reload the page" in message.inner_text()
    browser_page.screenshot("console-restarted.png")

    message.locator(".console-reload").click()
    tab.wait_for_load_state()
    console = open_frame_console(tab)
    console.locator(".console-input").wait_for(state="visible")
    assert tab.locator(".console-pin-input").count() == 0
    enter(console, "user_id * 2")
    assert last_result(console) == "84"
    # The restarted secret answers 403, which Chromium logs as a failed load.
    assert unexpected(browser_page, "status of 403") == []


@pytest.mark.slow
def test_with_live_reload_the_traceback_page_reloads_itself_after_a_restart(
    live_server: Callable[..., LiveServer], tmp_path: Path, browser_page: WatchedPage
) -> None:
    """The error page follows the code like any page: after a restart it shows the failing
    URL's new answer (here the same error, from the new process), and the PIN is kept."""
    trigger, server = _crash_server_reloading_on(live_server, tmp_path)
    tab = browser_page.page
    with tab.expect_console_message(lambda m: m.text == "[wsgidev] live reload connected"):
        tab.goto(server.url + "/boom")
    console = open_frame_console(tab)
    type_pin(tab, PIN)
    console.locator(".console-input").wait_for(state="visible")
    tab.evaluate("window.marker = 'before'")
    with tab.expect_event("load", timeout=20_000):
        trigger.write_text("two")
    assert tab.evaluate("window.marker") is None
    console = open_frame_console(tab)
    console.locator(".console-input").wait_for(state="visible")
    assert tab.locator(".console-pin-input").count() == 0
    enter(console, "user_id * 2")
    assert last_result(console) == "84"


class _OtherPortPage(http.server.BaseHTTPRequestHandler):
    """Another server on this host, on another port: it records the cookies it is sent."""

    seen_cookies: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen_cookies.append(self.headers.get("Cookie", ""))
        body = b"<!doctype html><title>another tool</title><p>hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_port() -> Iterator[str]:
    _OtherPortPage.seen_cookies = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _OtherPortPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_a_page_on_another_port_gets_nothing_that_runs_code(
    server: LiveServer, browser_page: WatchedPage, other_port: str, tmp_path: Path
) -> None:
    """Cookies go to every port of a host; the PIN's proof must not. After the PIN was typed,
    a page on another port learns every cookie and the secret (any local client can fetch the
    page) but still cannot run code; the token from the console's origin can (the control)."""
    tab = browser_page.page
    console = console_after_the_pin(tab, server.url + "/boom")
    enter(console, "x + 1")
    token = tab.evaluate("localStorage.getItem('wsgidev.console.token')")
    assert token

    other = tab.context.new_page()
    other.goto(other_port + "/")
    assert other.evaluate("localStorage.getItem('wsgidev.console.token')") is None
    other.close()
    cookies = "; ".join(_OtherPortPage.seen_cookies)

    page = requests.get(server.url + "/boom", headers={"Accept": "text/html"}, timeout=10)
    secret = re.search(r'data-secret="([^"]+)"', page.text)
    frame = re.findall(r'data-frame-id="(\d+)"', page.text)
    assert secret and frame
    probe = tmp_path / "probe"
    fields = {"cmd": f"open({str(probe)!r}, 'w').close()", "frm": frame[-1], "s": secret[1]}
    endpoint = server.url + "/boom?__debugger__=yes"
    refused = requests.post(endpoint, data=fields, headers={"Cookie": cookies}, timeout=10)
    assert refused.status_code == 401 and refused.json()["reason"] == "pin"
    assert not probe.exists()
    allowed = requests.post(endpoint, data={**fields, "token": token}, timeout=10)
    assert allowed.status_code == 200, allowed.text
    assert probe.exists()


def test_a_runaway_command_says_it_is_running_and_ctrl_c_stops_it(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    tab = browser_page.page
    console = console_after_the_pin(tab, server.url + "/boom")
    field = console.locator(".console-input")
    enter(console, "while True:")
    enter(console, "    pass")
    field.fill("")
    field.press("Enter")  # the block runs now, and never ends by itself
    running = console.locator(".console-running")
    running.wait_for(timeout=10_000)
    assert "Ctrl+C" in running.inner_text()
    field.press("Control+c")
    tab.wait_for_function(
        "el => !el.classList.contains('busy')", arg=console.element_handle(), timeout=10_000
    )
    assert "KeyboardInterrupt" in last_result(console)
    assert running.count() == 0
    enter(console, "x + 1")  # the control: the console works on
    assert last_result(console) == "42"
    assert unexpected(browser_page) == []
