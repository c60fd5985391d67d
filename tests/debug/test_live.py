"""The debugger behind the real server: negotiation, the retained page, a stream cut short."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.conftest import LiveServer
from wsgidev.debug import TRACEBACK_HEADER

pytestmark = pytest.mark.live

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    return live_server("debug_showcase", "--debugger", "--threaded")


def test_curl_gets_plaintext_and_a_browser_gets_the_page(server: LiveServer) -> None:
    text = requests.get(server.url + "/boom", headers={"Accept": "*/*"}, timeout=10)
    assert text.status_code == 500
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert text.text.startswith("Traceback (most recent call last):")
    assert "RuntimeError: could not read the <payload>" in text.text
    assert "The above exception was the direct cause of the following exception:" in text.text
    html = requests.get(server.url + "/boom", headers={"Accept": BROWSER_ACCEPT}, timeout=10)
    assert html.status_code == 500
    assert html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "nonce-" in html.headers["Content-Security-Policy"]
    assert "&lt;payload&gt;" in html.text and "<payload>" not in html.text
    server.wait_for(r"Error on GET .*/boom; answered with the debugger page")


def test_an_xhr_error_links_to_its_page_which_stays_available(server: LiveServer) -> None:
    xhr = requests.get(
        server.url + "/api",
        headers={"X-Requested-With": "XMLHttpRequest", "Accept": "*/*"},
        timeout=10,
    )
    assert xhr.status_code == 500 and xhr.headers["Content-Type"].startswith("text/plain")
    url = xhr.headers[TRACEBACK_HEADER]
    assert url.startswith(server.url + "/?__debugger__=yes&tb=")
    for _ in range(2):
        page = requests.get(url, headers={"Accept": BROWSER_ACCEPT}, timeout=10)
        assert page.status_code == 200
        assert "could not read the &lt;payload&gt;" in page.text
        assert page.headers[TRACEBACK_HEADER] == url


def test_json_clients_get_the_chain(server: LiveServer) -> None:
    data: dict[str, Any] = requests.get(
        server.url + "/", headers={"Accept": "application/json"}, timeout=10
    ).json()
    assert [item["type"] for item in data["chain"]] == [
        "json.decoder.JSONDecodeError",
        "RuntimeError",
    ]


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def test_an_error_after_the_first_byte_cuts_the_response_visibly(server: LiveServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(f"GET /stream HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n\r\n".encode())
        raw = read_until_closed(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert raw.count(b"HTTP/1.") == 1  # never a second status line
    assert b"first chunk of a response" in body
    assert not body.endswith(b"0\r\n\r\n")  # no terminating chunk: the client sees the cut
    server.wait_for(r"the response is cut short")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(server.url + "/stream", timeout=10).raise_for_status()


def test_requests_without_errors_are_untouched(server: LiveServer) -> None:
    response = requests.get(server.url + "/ok", timeout=10)
    assert response.status_code == 200 and response.text == "ok"
    asset = requests.get(
        server.url + "/ok?__debugger__=yes&cmd=resource&f=debugger.css", timeout=10
    )
    assert asset.status_code == 200 and asset.headers["Content-Type"] == "text/css; charset=utf-8"
    missing = requests.get(
        server.url + "/?__debugger__=yes&cmd=resource&f=../pyproject.toml", timeout=10
    )
    assert missing.status_code == 404


def test_concurrent_errors_each_get_their_own_page(server: LiveServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def fail_once(index: int) -> str:
        response = requests.get(
            f"{server.url}/boom?n={index}", headers={"Accept": "*/*"}, timeout=20
        )
        assert response.status_code == 500
        return response.headers[TRACEBACK_HEADER]

    with ThreadPoolExecutor(max_workers=8) as pool:
        urls = list(pool.map(fail_once, range(24)))
    assert len(set(urls)) == 24
    for index, url in list(enumerate(urls))[-5:]:
        page = requests.get(url, headers={"Accept": "application/json"}, timeout=10)
        assert page.status_code == 200 and page.json()["type"] == "RuntimeError"
        assert page.json()["request"]["url"].endswith(f"/boom?n={index}")  # its own request
