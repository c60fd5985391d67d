"""Live reload in headless Chromium, on a Flask project served by ``wsgidev run --debug``:
open pages follow saves of code, templates and stylesheets, show an import error until it is
fixed, and show errors of background requests (fetch, htmx) in an overlay."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import WatchedPage
from tests.conftest import RUNNING_ON, LiveServer, checkout_env, start_server_process

pytestmark = [pytest.mark.browser, pytest.mark.live]

APP = """\
from flask import Flask, render_template

app = Flask(__name__)


@app.get("/")
def index():
    return render_template("index.html", version="{version}")


@app.get("/api/cart")
def cart():
    items = {{"apples": 2}}
    return str(items["pears"])


@app.get("/fragment")
def fragment():
    return "<p id='fresh'>fresh rows</p>"


@app.get("/strict")
def strict():
    page = render_template("strict.html")
    policy = "default-src 'self'; script-src 'self' 'nonce-appnonce'; style-src 'self'"
    return page, 200, {{"Content-Security-Policy": policy}}
"""
INDEX = """\
<!doctype html>
<html>
<head>
  <title>shop</title>
  <link rel="stylesheet" href="/assets/site.css">
  <script src="/static/htmx.min.js"></script>
</head>
<body>
  <h1 id="title">{{ version }} {marker}</h1>
  <button id="load-fail" hx-get="/api/cart" hx-target="#target">load</button>
  <button id="load-ok" hx-get="/fragment" hx-target="#target">load</button>
  <div id="target">original</div>
  <div style="height: 3000px"></div>
  <p id="bottom">bottom</p>
</body>
</html>
"""
STRICT = """\
<!doctype html>
<html><head><title>strict</title></head>
<body>
  <p>strict</p>
  <script nonce="appnonce">window.appScriptRan = true;</script>
  <script>window.injectedScriptRan = true;</script>
</body>
</html>
"""
CONNECTED = "[wsgidev] live reload connected"


def htmx_js() -> Path:
    spec = importlib.util.find_spec("django_htmx")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("django-htmx (which carries htmx.js) is missing: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations))) / "static/django_htmx/htmx-2.min.js"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP.format(version="one"))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "index.html").write_text(INDEX.replace("{marker}", "template-1"))
    (tmp_path / "templates" / "strict.html").write_text(STRICT)
    (tmp_path / "static").mkdir()
    shutil.copy(htmx_js(), tmp_path / "static" / "htmx.min.js")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "site.css").write_text("h1 { color: rgb(200, 0, 0); }\n")
    return tmp_path


@pytest.fixture
def server(project: Path, serve_cli: Callable[..., LiveServer]) -> LiveServer:
    return serve_cli("run", "app:app", "--debug", "--static", "/assets=assets", cwd=project)


def open_page(watched: WatchedPage, url: str) -> Any:
    """Load ``url`` and wait until its live-reload stream is connected."""
    page = watched.page
    with page.expect_console_message(lambda m: m.text == CONNECTED, timeout=10_000):
        page.goto(url)
    page.evaluate("window.marker = 'kept'")
    return page


def wait_until(check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` from Python: a page with a strict CSP (the debugger's) refuses the
    string evaluation that ``wait_for_function`` needs."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(0.05)


def reloaded(page: Any) -> bool:
    return page.evaluate("window.marker === undefined")


def test_saving_python_code_reloads_the_open_page(
    server: LiveServer, project: Path, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/")
    assert page.locator("#title").inner_text() == "one template-1"
    saved = time.monotonic()
    (project / "app.py").write_text(APP.format(version="two"))
    page.wait_for_function(
        "document.querySelector('#title')?.textContent.startsWith('two')", timeout=3_000
    )
    took = time.monotonic() - saved
    assert reloaded(page)
    assert took < 3.0
    assert "Detected change" in server.log


def test_saving_a_template_reloads_the_open_page_without_a_restart(
    server: LiveServer, project: Path, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/")
    page.evaluate("window.scrollTo(0, 800)")
    (project / "templates" / "index.html").write_text(INDEX.replace("{marker}", "template-2"))
    page.wait_for_function(
        "document.querySelector('#title')?.textContent === 'one template-2'", timeout=3_000
    )
    assert reloaded(page)
    page.wait_for_function("window.scrollY === 800", timeout=2_000)  # scroll position restored
    assert "Detected change" not in server.log  # Flask rereads its templates: no restart


def test_saving_a_stylesheet_swaps_it_in_place_and_keeps_the_page_state(
    server: LiveServer, project: Path, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/")
    page.evaluate("window.scrollTo(0, 600)")
    color = "getComputedStyle(document.querySelector('#title')).color"
    assert page.evaluate(color) == "rgb(200, 0, 0)"
    (project / "assets" / "site.css").write_text("h1 { color: rgb(0, 0, 200); }\n")
    page.wait_for_function(f"{color} === 'rgb(0, 0, 200)'", timeout=3_000)
    assert page.evaluate("window.marker") == "kept"
    assert page.evaluate("window.scrollY") == 600
    assert page.locator("link[rel=stylesheet]").count() == 1


def overlay(page: Any) -> Any:
    return page.locator("wsgidev-overlay")


def test_a_failing_fetch_shows_the_overlay_with_the_raising_line(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/")
    status = page.evaluate("fetch('/api/cart').then(r => r.status)")
    assert status == 500
    entry = overlay(page).locator(".entry").first
    entry.wait_for(timeout=2_000)
    assert entry.locator(".type").inner_text() == "KeyError"
    assert entry.locator(".message").inner_text() == "'pears'"
    assert 'items["pears"]' in entry.locator(".line.current").inner_text()
    link = entry.locator("a.full").get_attribute("href") or ""
    assert link.startswith(server.url + "/?__debugger__=yes&tb=")
    assert page.evaluate("window.marker") == "kept"  # no navigation, no reload
    page.keyboard.press("Escape")
    overlay(page).locator(".entry").first.wait_for(state="detached", timeout=2_000)
    browser_page.screenshot("live-overlay-dismissed.png")


def test_htmx_requests_that_fail_show_the_overlay_and_swap_nothing(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/")
    page.click("#load-fail")
    overlay(page).locator(".entry .type").first.wait_for(timeout=2_000)
    assert overlay(page).locator(".entry .type").first.inner_text() == "KeyError"
    assert page.locator("#target").inner_text() == "original"  # htmx swaps no error response
    browser_page.screenshot("live-overlay.png", full_page=False)
    page.click("#load-ok")
    page.locator("#fresh").wait_for(timeout=2_000)  # htmx keeps working as the app defines
    assert page.locator("#target").inner_text() == "fresh rows"
    assert page.evaluate("document.body.querySelectorAll('wsgidev-overlay').length") == 0


def test_an_import_error_shows_in_the_open_page_until_it_is_fixed(
    server: LiveServer, project: Path, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/")
    (project / "app.py").write_text(
        APP.format(version="three").replace("def cart():", "def cart(:")
    )
    wait_until(lambda: page.title().startswith("SyntaxError"), 5.0)
    assert "app.py" in page.locator("body").inner_text()
    browser_page.screenshot("live-import-error.png", full_page=False)
    (project / "app.py").write_text(APP.format(version="four"))
    wait_until(lambda: page.title() == "shop", 5.0)
    assert page.locator("#title").inner_text().startswith("four")


def test_the_apps_own_content_security_policy_stays_enforced(
    server: LiveServer, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/strict")
    assert page.evaluate("window.appScriptRan") is True
    assert page.evaluate("window.injectedScriptRan") is None  # the app's rule still blocks it
    violations = browser_page.csp_violations()
    assert violations == ["script-src-elem blocked inline"]
    page.evaluate("fetch('/api/cart')")
    overlay(page).locator(".entry .type").first.wait_for(timeout=2_000)
    assert browser_page.csp_violations() == violations  # the overlay needed no exception


DJANGO_SETTINGS = """\
SECRET_KEY = "test-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = ["django.contrib.staticfiles", "shop", "wsgidev.contrib.django"]
MIDDLEWARE = []
DATABASES = {}
STATIC_URL = "/static/"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
"""
DJANGO_PAGE = """\
{% load static %}<!doctype html>
<html><head><link rel="stylesheet" href="{% static 'shop/site.css' %}"></head>
<body><h1 id="title">VERSION</h1></body></html>
"""


@pytest.fixture
def django_project(tmp_path: Path) -> Path:
    pytest.importorskip("django")
    (tmp_path / "manage.py").write_text(
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    (tmp_path / "mysite").mkdir()
    (tmp_path / "mysite" / "__init__.py").write_text("")
    (tmp_path / "mysite" / "settings.py").write_text(DJANGO_SETTINGS)
    (tmp_path / "mysite" / "urls.py").write_text(
        "from django.shortcuts import render\nfrom django.urls import path\n"
        "urlpatterns = [path('', lambda request: render(request, 'shop/index.html'))]\n"
    )
    shop = tmp_path / "shop"
    (shop / "templates" / "shop").mkdir(parents=True)
    (shop / "static" / "shop").mkdir(parents=True)
    (shop / "__init__.py").write_text("")
    (shop / "templates" / "shop" / "index.html").write_text(DJANGO_PAGE.replace("VERSION", "v1"))
    (shop / "static" / "shop" / "site.css").write_text("h1 { color: rgb(0, 128, 0); }\n")
    return tmp_path


def test_a_django_devserver_page_follows_its_stylesheet_and_templates(
    django_project: Path, browser_page: WatchedPage
) -> None:
    command = [sys.executable, "manage.py", "devserver", "--skip-checks", "127.0.0.1:0"]
    server = start_server_process(command, RUNNING_ON.pattern, checkout_env(), django_project)
    try:
        follow_django_page(server, django_project, browser_page)
    finally:
        server.stop()


def follow_django_page(server: LiveServer, django_project: Path, browser_page: WatchedPage) -> None:
    page = open_page(browser_page, server.url + "/")
    color = "getComputedStyle(document.querySelector('#title')).color"
    assert page.evaluate(color) == "rgb(0, 128, 0)"
    (django_project / "shop" / "static" / "shop" / "site.css").write_text(
        "h1 { color: rgb(0, 0, 255); }\n"
    )
    page.wait_for_function(f"{color} === 'rgb(0, 0, 255)'", timeout=3_000)
    assert page.evaluate("window.marker") == "kept"  # swapped in place
    template = django_project / "shop" / "templates" / "shop" / "index.html"
    template.write_text(DJANGO_PAGE.replace("VERSION", "v2"))
    wait_until(lambda: page.locator("#title").inner_text() == "v2", 5.0)
    assert reloaded(page)


def test_a_tab_on_a_stopped_server_reloads_when_a_server_is_back(
    server: LiveServer, project: Path, browser_page: WatchedPage
) -> None:
    page = open_page(browser_page, server.url + "/")
    port = server.port
    assert server.stop() == 0
    # The server stays away a while (the tab backs off meanwhile); no server can answer, so
    # the check below cannot pass by chance.
    time.sleep(1.0)
    assert page.evaluate("window.marker") == "kept"  # nothing to reload into yet
    (project / "app.py").write_text(APP.format(version="back"))
    command = [sys.executable, "-m", "wsgidev", "run", "app:app", "--debug", "--port", str(port)]
    again = start_server_process(command, RUNNING_ON.pattern, checkout_env(), project)
    try:
        wait_until(lambda: page.locator("#title").inner_text().startswith("back"), 7.0)
        assert reloaded(page)
    finally:
        again.stop()
