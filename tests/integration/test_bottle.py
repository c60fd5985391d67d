"""A Bottle application served by ``run_simple`` with the debugger and static files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import LiveServer, start_live_server
from tests.integration._pages import BROWSER_HEADERS, assert_traceback_page, fetch_assets
from tests.integration.conftest import StaticTree, make_static_tree, shared_server

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> StaticTree:
    return make_static_tree(tmp_path_factory.mktemp("bottle") / "public")


@pytest.fixture(scope="module")
def server(site: StaticTree) -> Iterator[LiveServer]:
    live = start_live_server(
        "bottle_app", "--debugger", "--threaded", "--static", f"/files={site.root}"
    )
    with shared_server(live):
        yield live


def test_routes_and_json(server: LiveServer, session: requests.Session) -> None:
    hello = session.get(server.url + "/hello/W%C3%B6rld", timeout=10)
    assert hello.status_code == 200
    assert hello.text == "Hello, Wörld!"
    assert session.get(server.url + "/api/status", timeout=10).json() == {
        "ok": True,
        "framework": "bottle",
    }
    answer = session.post(server.url + "/api/sum", json={"numbers": [1, 2, 39]}, timeout=10)
    assert answer.json() == {"sum": 42}


def test_static_files(server: LiveServer, session: requests.Session, site: StaticTree) -> None:
    css = session.get(server.url + "/files/css/site.css", timeout=10)
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    head = session.head(server.url + "/files/blob.bin", timeout=10)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(site.blob))
    assert head.content == b""
    modified = head.headers["Last-Modified"]
    again = session.get(
        server.url + "/files/blob.bin", headers={"If-Modified-Since": modified}, timeout=10
    )
    assert again.status_code == 304


def test_error_shows_the_traceback_page(server: LiveServer, session: requests.Session) -> None:
    page = session.get(server.url + "/cart/many", headers=BROWSER_HEADERS, timeout=10)
    html = assert_traceback_page(page, "ValueError", "parse_quantity", "invalid literal for int()")
    fetch_assets(session, page.url, html)
