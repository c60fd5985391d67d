"""A Flask application served by ``run_simple(..., use_debugger=True, static_files=...)``."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import LiveServer, start_live_server
from tests.integration._pages import (
    BROWSER_HEADERS,
    assert_traceback_page,
    body_attributes,
    fetch_assets,
    frame_id_of,
)
from tests.integration.conftest import StaticTree, make_static_tree, shared_server

pytestmark = pytest.mark.live

PIN = "135-792-468"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> StaticTree:
    return make_static_tree(tmp_path_factory.mktemp("flask") / "public")


@pytest.fixture(scope="module")
def server(site: StaticTree) -> Iterator[LiveServer]:
    live = start_live_server(
        "flask_app",
        "--debugger",
        "--static",
        f"/assets={site.root}",
        env={"WSGIDEV_DEBUG_PIN": PIN},
    )
    with shared_server(live):
        yield live


def test_page_and_json_routes(server: LiveServer, session: requests.Session) -> None:
    page = session.get(server.url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.text == "<h1>Hello from Flask</h1>"

    item = session.get(server.url + "/items/7", params=[("tag", "a"), ("tag", "b c")], timeout=10)
    assert item.status_code == 200
    assert item.headers["Content-Type"] == "application/json"
    assert item.json() == {"id": 7, "name": "item 7", "tags": ["a", "b c"]}


def test_unknown_route_is_flasks_404_not_a_traceback(
    server: LiveServer, session: requests.Session
) -> None:
    missing = session.get(server.url + "/no/such/page", headers=BROWSER_HEADERS, timeout=10)
    assert missing.status_code == 404
    assert "data-frame-id" not in missing.text


def test_json_post_round_trips_unicode(server: LiveServer, session: requests.Session) -> None:
    payload = {"name": "Zoë", "emoji": "\N{SNOWMAN}", "nested": {"list": [1, 2.5, None, True]}}
    answer = session.post(server.url + "/echo", json=payload, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"received": payload, "content_type": "application/json"}


def test_multipart_upload_arrives_intact(
    server: LiveServer, session: requests.Session, site: StaticTree
) -> None:
    files = {
        "report": ("résumé.txt", site.text, "text/plain"),
        "archive": ("blob.bin", site.blob, "application/octet-stream"),
    }
    answer = session.post(
        server.url + "/upload", files=files, data={"note": "two files"}, timeout=20
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "files": {
            "report": {
                "filename": "résumé.txt",
                "size": len(site.text),
                "sha256": hashlib.sha256(site.text).hexdigest(),
            },
            "archive": {
                "filename": "blob.bin",
                "size": len(site.blob),
                "sha256": hashlib.sha256(site.blob).hexdigest(),
            },
        },
        "form": {"note": "two files"},
    }


def test_streamed_response_arrives_line_by_line(
    server: LiveServer, session: requests.Session
) -> None:
    started = time.monotonic()
    with session.get(
        server.url + "/stream", params={"count": 4, "pause": 0.4}, stream=True, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in response.headers
        arrivals: list[tuple[float, bytes]] = []
        for line in response.iter_lines():
            arrivals.append((time.monotonic() - started, line))
    assert [line for _, line in arrivals] == [f"line {n} of 4".encode() for n in range(4)]
    # The first line is sent before the generator sleeps, so it arrives long before the last.
    assert arrivals[-1][0] - arrivals[0][0] >= 1.0, arrivals


def test_one_connection_serves_many_requests(server: LiveServer, session: requests.Session) -> None:
    ports = {session.get(server.url + "/client", timeout=10).json()["port"] for _ in range(5)}
    assert len(ports) == 1, f"each request used a new connection: {ports}"


def test_static_file_from_the_middleware(
    server: LiveServer, session: requests.Session, site: StaticTree
) -> None:
    text = session.get(server.url + "/assets/hello.txt", timeout=10)
    assert text.status_code == 200
    assert text.content == site.text
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    css = session.get(server.url + "/assets/css/site.css", timeout=10)
    assert css.headers["Content-Type"].startswith("text/css")
    assert css.content == (site.root / "css" / "site.css").read_bytes()

    again = session.get(
        server.url + "/assets/hello.txt",
        headers={"If-None-Match": text.headers["ETag"]},
        timeout=10,
    )
    assert again.status_code == 304
    assert again.content == b""

    part = session.get(
        server.url + "/assets/blob.bin", headers={"Range": "bytes=1000-1999"}, timeout=10
    )
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(site.blob)}"
    assert part.content == site.blob[1000:2000]


def test_error_route_shows_the_traceback_page_with_its_assets(
    server: LiveServer, session: requests.Session
) -> None:
    page = session.get(server.url + "/orders/42/charge", headers=BROWSER_HEADERS, timeout=10)
    html = assert_traceback_page(page, "ValueError", "charge_order", "order 42 has no price")
    # The message is shown as text: its markup is escaped, never rendered.
    assert "&lt;b&gt;set&lt;/b&gt;" in html
    assert "<b>set</b>" not in html
    assert "flask_app.py" in html
    fetch_assets(session, page.url, html)
    server.wait_for(r"ValueError: order 42 has no price")


def test_error_is_plain_text_for_clients_that_do_not_ask_for_html(
    server: LiveServer, session: requests.Session
) -> None:
    answer = session.get(server.url + "/orders/7/charge", headers={"Accept": "*/*"}, timeout=10)
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Traceback (most recent call last):" in answer.text
    assert "ValueError: order 7 has no price <b>set</b>" in answer.text


def test_debugger_pin_is_printed_at_startup(server: LiveServer) -> None:
    server.wait_for(rf" \* Debugger PIN: {PIN}", timeout=5)


def test_console_runs_code_in_the_failing_flask_view(
    server: LiveServer, session: requests.Session
) -> None:
    page = session.get(server.url + "/orders/42/charge", headers=BROWSER_HEADERS, timeout=10)
    secret = body_attributes(page.text).get("data-secret") or ""
    frame = frame_id_of(page.text, "charge_order")
    endpoint = server.url + "/orders/42/charge?__debugger__=yes"
    browser = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}

    refused = session.post(
        endpoint, data={"cmd": "order_id", "frm": frame, "s": secret}, headers=browser, timeout=10
    )
    assert refused.status_code in (401, 403), "code ran before the PIN was given"
    auth = session.post(
        endpoint, data={"cmd": "pinauth", "pin": PIN, "s": secret}, headers=browser, timeout=10
    )
    assert auth.status_code == 200, auth.text
    assert auth.json()["auth"] is True
    token = auth.json()["token"]

    answer = session.post(
        endpoint,
        data={"cmd": "order_id * 2", "frm": frame, "s": secret, "token": token},
        headers=browser,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert "84" in answer.json()["html"]
    path = session.post(
        endpoint,
        data={"cmd": "environ['PATH_INFO']", "frm": frame, "s": secret, "token": token},
        headers=browser,
        timeout=10,
    )
    assert "/orders/42/charge" in path.json()["html"]


def test_a_client_that_hangs_up_stops_the_stream(server: LiveServer, tmp_path: Path) -> None:
    marker = tmp_path / "ticker-closed"
    lines_before = len(server.lines)
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(f"GET /ticker?marker={marker} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        received = b""
        while b"tick 0" not in received and time.monotonic() - started < 10:
            received += sock.recv(4096)
        assert b"tick 0" in received
    # The next write fails; the server closes the app's iterable, which runs Flask's teardown.
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the streamed response was not closed after the client left"
    assert time.monotonic() - started < 6, "the stream ran to its end instead of stopping"
    # One line about the disconnect, no traceback, and the server keeps serving.
    assert requests.get(server.url + "/", timeout=10).status_code == 200
    assert "Traceback" not in "".join(server.lines[lines_before:])


def test_the_same_app_under_forked_processes(
    live_server: Callable[..., LiveServer], site: StaticTree
) -> None:
    forked = live_server(
        "flask_app", "--processes", "2", "--debugger", "--static", f"/assets={site.root}"
    )
    with requests.Session() as session:
        assert session.get(forked.url + "/items/3", timeout=10).json()["id"] == 3
        upload = session.post(
            forked.url + "/upload", files={"blob": ("blob.bin", site.blob)}, timeout=20
        )
        assert upload.json()["files"]["blob"]["sha256"] == hashlib.sha256(site.blob).hexdigest()
        lines = list(
            session.get(
                forked.url + "/stream", params={"count": 3}, stream=True, timeout=10
            ).iter_lines()
        )
        assert lines == [b"line 0 of 3", b"line 1 of 3", b"line 2 of 3"]
        assert session.get(forked.url + "/assets/hello.txt", timeout=10).content == site.text

        page = session.get(forked.url + "/orders/9/charge", headers=BROWSER_HEADERS, timeout=10)
        html = assert_traceback_page(page, "ValueError", "charge_order")
        body = body_attributes(html)
        assert body.get("data-multiprocess") == "true"
        fetch_assets(session, page.url, html)
        answer = session.post(
            forked.url + "/orders/9/charge?__debugger__=yes",
            data={
                "cmd": "order_id",
                "frm": frame_id_of(html, "charge_order"),
                "s": body.get("data-secret") or "",
            },
            headers={"Origin": forked.url},
            timeout=10,
        )
        assert (answer.status_code, answer.json()["reason"]) == (409, "multiprocess")
