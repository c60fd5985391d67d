"""A Django project configured in code, served by ``run_simple`` with the debugger and static files."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import LiveServer, start_live_server
from tests.integration._pages import BROWSER_HEADERS, assert_traceback_page, fetch_assets
from tests.integration.conftest import StaticTree, make_static_tree, shared_server

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> StaticTree:
    return make_static_tree(tmp_path_factory.mktemp("django") / "public")


@pytest.fixture(scope="module")
def server(site: StaticTree) -> Iterator[LiveServer]:
    live = start_live_server("django_app", "--debugger", "--static", f"/static={site.root}")
    with shared_server(live):
        yield live


def test_page_renders(server: LiveServer, session: requests.Session) -> None:
    page = session.get(server.url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Guestbook</h1>" in page.text
    assert "csrftoken" in session.cookies


def test_post_with_csrf_token_is_accepted(server: LiveServer, session: requests.Session) -> None:
    page = session.get(server.url + "/", timeout=10)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, page.text
    answer = session.post(
        server.url + "/",
        data={"csrfmiddlewaretoken": match[1], "name": "Ada Lovelace"},
        headers={"Referer": server.url + "/"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text[:2000]
    assert answer.json() == {"greeting": "Hello, Ada Lovelace!", "path": "/"}


def test_post_without_csrf_token_is_refused_by_django(server: LiveServer) -> None:
    answer = requests.post(server.url + "/", data={"name": "Mallory"}, timeout=10)
    assert answer.status_code == 403


def test_static_file_exported_by_the_middleware(
    server: LiveServer, session: requests.Session, site: StaticTree
) -> None:
    text = session.get(server.url + "/static/hello.txt", timeout=10)
    assert text.status_code == 200
    assert text.content == site.text
    blob = session.get(server.url + "/static/blob.bin", timeout=10)
    assert blob.content == site.blob
    assert blob.headers["Content-Length"] == str(len(site.blob))
    # A path under the export that has no file falls through to Django, which answers 404.
    assert session.get(server.url + "/static/missing.txt", timeout=10).status_code == 404


def test_unhandled_error_shows_the_traceback_page(
    server: LiveServer, session: requests.Session
) -> None:
    page = session.get(server.url + "/invoices/404", headers=BROWSER_HEADERS, timeout=10)
    html = assert_traceback_page(page, "KeyError", "find_invoice", "django_app.py")
    fetch_assets(session, page.url, html)


def test_readme_django_quick_start(
    tmp_path: Path, external_server: Callable[..., LiveServer]
) -> None:
    """startproject, the README's settings, collectstatic, then ``wsgidev run mysite.wsgi:application``."""
    run = functools.partial(
        subprocess.run, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    run([sys.executable, "-m", "django", "startproject", "mysite", "."])
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + '\nDEBUG = True\nDEBUG_PROPAGATE_EXCEPTIONS = True\nSTATIC_ROOT = BASE_DIR / "staticfiles"\n'
    )
    urls = tmp_path / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\n\ndef broken(request):\n    return 1 / 0\n\n\nurlpatterns.append(path('broken/', broken))\n"
    )
    run([sys.executable, "manage.py", "collectstatic", "--noinput"])

    server = external_server(
        [
            sys.executable,
            "-m",
            "wsgidev",
            "run",
            "mysite.wsgi:application",
            "--debug",
            "--static",
            "/static=./staticfiles",
            "--port",
            "0",
        ],
        r" \* Running on (?P<url>http://127\.0\.0\.1:\d+)",
        cwd=tmp_path,
    )
    with requests.Session() as session:
        login = session.get(server.url + "/admin/login/", timeout=10)
        assert login.status_code == 200
        assert "Django administration" in login.text
        stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', login.text)
        assert stylesheets, "the admin page links no stylesheet under /static/"
        for stylesheet in stylesheets:
            css = session.get(server.url + stylesheet, timeout=10)
            assert css.status_code == 200, stylesheet
            assert css.headers["Content-Type"].startswith("text/css")
        page = session.get(server.url + "/broken/", headers=BROWSER_HEADERS, timeout=10)
        fetch_assets(session, page.url, assert_traceback_page(page, "ZeroDivisionError", "broken"))
