"""wsgidev's middlewares are plain WSGI: the same stack under real gunicorn (gthread) and waitress."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import (
    GUNICORN_READY,
    WAITRESS_READY,
    LiveServer,
    gunicorn_command,
    waitress_command,
)
from tests.integration._pages import (
    BROWSER_HEADERS,
    assert_traceback_page,
    body_attributes,
    fetch_assets,
    frame_id_of,
)
from tests.integration.conftest import (
    StaticTree,
    make_static_tree,
    shared_server,
    start_process,
)

pytestmark = pytest.mark.live

TARGET = "tests.apps.production_stack:app"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> StaticTree:
    return make_static_tree(tmp_path_factory.mktemp("production") / "public")


@pytest.fixture(scope="module", params=["gunicorn", "waitress"])
def server(request: pytest.FixtureRequest, site: StaticTree) -> Iterator[LiveServer]:
    if request.param == "gunicorn":
        command, ready = gunicorn_command(TARGET), GUNICORN_READY
    else:
        command, ready = waitress_command(TARGET), WAITRESS_READY
    live = start_process(command, ready, env={"WSGIDEV_TEST_STATIC_DIR": str(site.root)})
    with shared_server(live):
        yield live


def test_requests_outside_the_exports_reach_the_app(
    server: LiveServer, session: requests.Session
) -> None:
    answer = session.get(server.url + "/orders/1", timeout=10)
    assert answer.status_code == 200
    assert answer.text == "app: /orders/1"
    assert (
        session.get(server.url + "/static/nothing-here.txt", timeout=10).text
        == "app: /static/nothing-here.txt"
    )


def test_static_files_with_validators(
    server: LiveServer, session: requests.Session, site: StaticTree
) -> None:
    text = session.get(server.url + "/static/hello.txt", timeout=10)
    assert text.status_code == 200
    assert text.content == site.text
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert text.headers["Content-Length"] == str(len(site.text))
    assert text.headers["Accept-Ranges"] == "bytes"
    assert text.headers["ETag"].startswith('"')
    modified = parsedate_to_datetime(text.headers["Last-Modified"])
    assert int(modified.timestamp()) == int((site.root / "hello.txt").stat().st_mtime)

    blob = session.get(server.url + "/static/blob.bin", timeout=10)
    assert blob.content == site.blob
    assert blob.headers["Content-Type"] == "application/octet-stream"


def test_head_sends_headers_only(
    server: LiveServer, session: requests.Session, site: StaticTree
) -> None:
    head = session.head(server.url + "/static/blob.bin", timeout=10)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(site.blob))
    assert head.content == b""


def test_revalidation_answers_304(server: LiveServer, session: requests.Session) -> None:
    first = session.get(server.url + "/static/css/site.css", timeout=10)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    by_etag = session.get(
        server.url + "/static/css/site.css", headers={"If-None-Match": etag}, timeout=10
    )
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    assert by_etag.headers["ETag"] == etag
    by_date = session.get(
        server.url + "/static/css/site.css", headers={"If-Modified-Since": modified}, timeout=10
    )
    assert by_date.status_code == 304
    changed = session.get(
        server.url + "/static/css/site.css", headers={"If-None-Match": '"other"'}, timeout=10
    )
    assert changed.status_code == 200
    assert changed.content == first.content


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=100-199", 100, 199), ("bytes=307000-", 307000, 307199), ("bytes=-50", 307150, 307199)],
)
def test_byte_ranges(
    server: LiveServer,
    session: requests.Session,
    site: StaticTree,
    header: str,
    start: int,
    end: int,
) -> None:
    assert len(site.blob) == 307200
    answer = session.get(server.url + "/static/blob.bin", headers={"Range": header}, timeout=10)
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == f"bytes {start}-{end}/{len(site.blob)}"
    assert answer.headers["Content-Length"] == str(end - start + 1)
    assert answer.content == site.blob[start : end + 1]


def test_unsatisfiable_range_is_416(
    server: LiveServer, session: requests.Session, site: StaticTree
) -> None:
    answer = session.get(
        server.url + "/static/blob.bin", headers={"Range": "bytes=999999-"}, timeout=10
    )
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{len(site.blob)}"


def test_traceback_page_and_its_assets(server: LiveServer, session: requests.Session) -> None:
    page = session.get(server.url + "/report", headers=BROWSER_HEADERS, timeout=10)
    html = assert_traceback_page(page, "ZeroDivisionError", "compute_report", "production_stack.py")
    fetch_assets(session, page.url, html)


def test_console_stays_off_so_no_code_runs(
    server: LiveServer, session: requests.Session, tmp_path: Path
) -> None:
    page = session.get(server.url + "/report", headers=BROWSER_HEADERS, timeout=10)
    secret = body_attributes(page.text).get("data-secret") or ""
    frames = re.findall(r'data-frame-id="(\d+)"', page.text)
    assert frames, "no frame ids on the page"
    probe = tmp_path / "console-ran"
    for frame in frames:
        answer = session.post(
            server.url + "/report?__debugger__=yes",
            data={"cmd": f"open({str(probe)!r}, 'w').close()", "frm": frame, "s": secret},
            headers={"Origin": server.url},
            timeout=10,
        )
        assert answer.status_code >= 400, f"frame {frame}: {answer.status_code} {answer.text[:300]}"
    assert not probe.exists(), "a console command ran although evalex is off"


@pytest.fixture
def two_workers(site: StaticTree, external_server: Callable[..., LiveServer]) -> LiveServer:
    """gunicorn with two gthread worker processes, each importing the app (and its debugger)."""
    command = gunicorn_command(TARGET)
    command[command.index("--workers") + 1] = "2"
    env = {"WSGIDEV_TEST_STATIC_DIR": str(site.root), "WSGIDEV_TEST_EVALEX": "1"}
    return external_server(command, GUNICORN_READY, env)


def _error_page(session: requests.Session, url: str) -> tuple[str, str]:
    """The traceback page's secret (one per worker process) and its compute_report frame id."""
    page = session.get(url + "/report", headers=BROWSER_HEADERS, timeout=10)
    html = assert_traceback_page(page, "ZeroDivisionError", "compute_report")
    body = body_attributes(html)
    assert body.get("data-multiprocess") == "true", body
    return body.get("data-secret") or "", frame_id_of(html, "compute_report")


def _connection_to_another_worker(url: str, secret: str) -> requests.Session:
    """A kept-alive connection served by a worker other than the one whose page had ``secret``."""
    for _ in range(60):
        session = requests.Session()
        if _error_page(session, url)[0] != secret:
            return session
        session.close()
    raise AssertionError("60 new connections all reached the same gunicorn worker")


def test_console_under_several_processes_says_why_it_is_unavailable(
    two_workers: LiveServer, session: requests.Session, tmp_path: Path
) -> None:
    secret, frame = _error_page(session, two_workers.url)
    probe = tmp_path / "console-ran"
    command = {"cmd": f"open({str(probe)!r}, 'w').close()", "frm": frame, "s": secret}
    endpoint = two_workers.url + "/report?__debugger__=yes"
    origin = {"Origin": two_workers.url}

    same_worker = session.post(endpoint, data=command, headers=origin, timeout=10)
    assert (same_worker.status_code, same_worker.json()["reason"]) == (409, "multiprocess")

    # The next request may reach another process, which made its own secret: that worker
    # must explain the same real cause, not claim a restart that a reload would not fix.
    with _connection_to_another_worker(two_workers.url, secret) as elsewhere:
        other_worker = elsewhere.post(endpoint, data=command, headers=origin, timeout=10)
    assert not probe.exists(), "a console command ran under a multi-process server"
    assert (other_worker.status_code, other_worker.json()["reason"]) == (409, "multiprocess"), (
        other_worker.text
    )


def test_under_preloaded_workers_every_worker_answers_a_pages_link(
    site: StaticTree, external_server: Callable[..., LiveServer]
) -> None:
    """With ``--preload`` the debugger is built before the fork: one shared store of pages."""
    command = [*gunicorn_command(TARGET), "--preload"]
    command[command.index("--workers") + 1] = "2"
    env = {"WSGIDEV_TEST_STATIC_DIR": str(site.root)}
    server = external_server(command, GUNICORN_READY, env)
    with requests.Session() as first:
        page = first.get(server.url + "/report", headers=BROWSER_HEADERS, timeout=10)
        renderer = first.get(server.url + "/pid", timeout=10).text
    assert page.status_code == 500
    link = page.headers["X-Wsgidev-Traceback"]
    for _ in range(60):  # fresh connections until one reaches the other worker
        with requests.Session() as fresh:
            if fresh.get(server.url + "/pid", timeout=10).text == renderer:
                continue
            answer = fresh.get(link, headers={"Accept": "text/plain"}, timeout=10)
        assert answer.status_code == 200 and "ZeroDivisionError" in answer.text, answer.text
        return
    raise AssertionError("60 new connections all reached the worker that rendered the page")


def test_static_responses_carry_one_date_header(server: LiveServer) -> None:
    # The server adds Date; a middleware that adds its own makes two (Werkzeug's does).
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"HEAD /static/hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.split(b"\r\n\r\n")[0].lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 200"), head
    assert sum(line.startswith(b"date:") for line in lines) == 1, head
