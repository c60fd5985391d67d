"""httpbin, a real Flask application from PyPI, served by wsgidev's threaded server."""

from __future__ import annotations

import gzip
import json
import string
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import LiveServer, start_live_server
from tests.integration.conftest import shared_server

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with shared_server(start_live_server("httpbin_app", "--threaded")) as live:
        yield live


def test_get_echoes_arguments_and_headers(server: LiveServer, session: requests.Session) -> None:
    answer = session.get(
        server.url + "/get",
        params={"q": "wsgi dev", "n": "1"},
        headers={"X-Probe": "yes"},
        timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["args"] == {"q": "wsgi dev", "n": "1"}
    assert body["headers"]["X-Probe"] == "yes"
    assert body["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert body["url"] == f"{server.url}/get?q=wsgi+dev&n=1"


def test_post_json(server: LiveServer, session: requests.Session) -> None:
    payload = {"text": "grüße", "numbers": [1, 2, 3]}
    body = session.post(server.url + "/post", json=payload, timeout=10).json()
    assert body["json"] == payload
    assert body["headers"]["Content-Type"] == "application/json"


def test_post_multipart(server: LiveServer, session: requests.Session) -> None:
    upload = bytes(range(256)) * 40
    body = session.post(
        server.url + "/post",
        data={"field": "value"},
        files={"upload": ("notes.txt", b"some notes\n", "text/plain")},
        timeout=10,
    ).json()
    assert body["form"] == {"field": "value"}
    assert body["files"] == {"upload": "some notes\n"}
    binary = session.post(
        server.url + "/post",
        files={"blob": ("b.bin", upload, "application/octet-stream")},
        timeout=10,
    )
    assert binary.status_code == 200
    assert binary.json()["files"]["blob"].startswith("data:application/octet-stream;base64,")


def test_a_chunked_request_body_gets_httpbins_own_answer_as_under_werkzeug(
    server: LiveServer, session: requests.Session
) -> None:
    """wsgidev keeps HTTP_TRANSFER_ENCODING after decoding the chunks, as Werkzeug's server
    does; httpbin reads it and accepts chunked bodies only from gunicorn, so it answers its
    own 501 here as it does under Werkzeug. (Decoded chunked bodies reaching an app whole are
    tested in tests/test_server.py.)"""
    parts = [b"first,", b"second,", b"third"]
    answer = session.post(server.url + "/post", data=iter(parts), timeout=10)
    assert answer.request.headers["Transfer-Encoding"] == "chunked"
    assert answer.status_code == 501
    assert "Chunked requests are not supported for server wsgidev" in answer.text
    # The connection is fine afterwards: the server read the whole chunked body.
    assert session.get(server.url + "/get", timeout=10).status_code == 200


def test_stream_of_twenty_json_lines(server: LiveServer, session: requests.Session) -> None:
    with session.get(server.url + "/stream/20", stream=True, timeout=10) as answer:
        assert answer.status_code == 200
        lines = [line for line in answer.iter_lines() if line]
    assert len(lines) == 20
    assert [json.loads(line)["id"] for line in lines] == list(range(20))


def test_bytes_are_exact_and_seeded(server: LiveServer, session: requests.Session) -> None:
    first = session.get(server.url + "/bytes/100000", params={"seed": 7}, timeout=10)
    second = session.get(server.url + "/bytes/100000", params={"seed": 7}, timeout=10)
    assert first.status_code == 200
    assert len(first.content) == 100_000
    assert first.content == second.content
    assert first.headers["Content-Type"] == "application/octet-stream"


def test_gzip_body_decodes(server: LiveServer, session: requests.Session) -> None:
    raw = session.get(server.url + "/gzip", stream=True, timeout=10)
    assert raw.headers["Content-Encoding"] == "gzip"
    data = gzip.decompress(raw.raw.read())
    assert json.loads(data)["gzipped"] is True


def test_three_redirects_are_followed(server: LiveServer, session: requests.Session) -> None:
    answer = session.get(server.url + "/redirect/3", timeout=10)
    assert answer.status_code == 200
    assert [r.status_code for r in answer.history] == [302, 302, 302]
    assert answer.url == server.url + "/get"


def test_cookies_are_set_and_sent_back(server: LiveServer, session: requests.Session) -> None:
    answer = session.get(
        server.url + "/cookies/set", params={"flavour": "oatmeal", "batch": "2"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.json() == {"cookies": {"flavour": "oatmeal", "batch": "2"}}
    assert session.cookies["flavour"] == "oatmeal"


def test_range_request(server: LiveServer, session: requests.Session) -> None:
    answer = session.get(server.url + "/range/1000", headers={"Range": "bytes=10-19"}, timeout=10)
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == "bytes 10-19/1000"
    assert answer.text == string.ascii_lowercase[10:20]


def test_teapot_status(server: LiveServer, session: requests.Session) -> None:
    answer = session.get(server.url + "/status/418", timeout=10)
    assert answer.status_code == 418
    assert answer.reason == "I'M A TEAPOT" or "teapot" in answer.reason.lower()
    assert "teapot" in answer.text


def test_slow_requests_from_several_clients_run_at_once(server: LiveServer) -> None:
    clients = 6
    results: list[int] = []
    lock = threading.Lock()

    def one_client() -> None:
        with requests.Session() as own:
            code = own.get(server.url + "/delay/1", timeout=15).status_code
        with lock:
            results.append(code)

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    elapsed = time.monotonic() - started
    assert results == [200] * clients
    # One at a time would take six seconds; the threaded server overlaps them.
    assert elapsed < 3.5, f"{clients} one-second requests took {elapsed:.1f}s"
