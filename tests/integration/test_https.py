"""The debugger and static files over HTTPS: ``wsgidev run --adhoc`` with a throwaway certificate."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from urllib3.exceptions import InsecureRequestWarning

from tests.conftest import LiveServer
from tests.integration._pages import BROWSER_HEADERS, assert_traceback_page, fetch_assets
from tests.integration.conftest import StaticTree

pytestmark = pytest.mark.live

APP = """
def app(environ, start_response):
    if environ["PATH_INFO"] == "/scheme":
        body = environ["wsgi.url_scheme"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return [str(undefined_name).encode()]
"""


@pytest.fixture
def insecure_session() -> Iterator[requests.Session]:
    """A client that accepts the self-signed certificate (and is quiet about it)."""
    with warnings.catch_warnings(), requests.Session() as session:
        warnings.simplefilter("ignore", InsecureRequestWarning)
        session.verify = False
        session.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment overrides verify
        yield session


def test_traceback_page_and_static_files_over_https(
    tmp_path: Path,
    static_tree: StaticTree,
    external_server: Callable[..., LiveServer],
    insecure_session: requests.Session,
) -> None:
    (tmp_path / "tls_app.py").write_text(APP)
    server = external_server(
        [
            sys.executable,
            "-m",
            "wsgidev",
            "run",
            "tls_app:app",
            "--adhoc",
            "--debug",
            "--port",
            "0",
            "--static",
            f"/files={static_tree.root}",
        ],
        r" \* Running on (?P<url>https://127\.0\.0\.1:\d+)",
        cwd=tmp_path,
    )
    assert insecure_session.get(server.url + "/scheme", timeout=10).text == "https"
    assert (
        insecure_session.get(server.url + "/files/blob.bin", timeout=10).content == static_tree.blob
    )

    page = insecure_session.get(server.url + "/orders", headers=BROWSER_HEADERS, timeout=10)
    html = assert_traceback_page(page, "NameError", "undefined_name")
    assert page.headers["X-Wsgidev-Traceback"].startswith(server.url + "/"), page.headers
    fetch_assets(insecure_session, page.url, html)

    with pytest.raises(requests.exceptions.SSLError):
        requests.get(server.url + "/scheme", timeout=10)  # a real client refuses the throwaway cert
