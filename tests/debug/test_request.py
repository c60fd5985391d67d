"""The request section's values: URL as the client sent it, secrets masked once for every view."""

from __future__ import annotations

import io
from typing import Any

import pytest

from wsgidev.debug._reprs import MASK
from wsgidev.debug._request import describe_request, request_url


def environ(**extra: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/mount",
        "PATH_INFO": "/caf\xc3\xa9",  # WSGI: UTF-8 bytes carried as latin-1
        "QUERY_STRING": "page=2&api_key=k-1&access_token=t-2",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_URI": "/mount/caf%C3%A9?page=2&api_key=k-1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "12",
        "HTTP_HOST": "dev.example:8080",
        "HTTP_COOKIE": "session=abc",
        "HTTP_AUTHORIZATION": "Bearer xyz",
        "HTTP_X_API_KEY": "k-3",
        "HTTP_USER_AGENT": "curl/8.5",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b"{}"),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "app.secret_thing": "s-4",
        "app.object": object(),
    }
    env.update(extra)
    return env


def test_the_url_is_decoded_for_reading_and_secret_parameters_are_masked() -> None:
    info = describe_request(environ())
    assert info.method == "POST"
    assert (
        info.url == f"https://dev.example:8080/mount/café?page=2&api_key={MASK}&access_token={MASK}"
    )


def test_without_a_host_header_the_server_name_and_port_are_used() -> None:
    env = environ()
    del env["HTTP_HOST"]
    assert request_url(env, query=False) == "https://localhost:8080/mount/café"
    assert request_url({**env, "SERVER_PORT": "443"}, query=False) == "https://localhost/mount/café"


def test_headers_are_named_as_sent_and_secret_ones_masked() -> None:
    headers = {field.name: field for field in describe_request(environ()).headers}
    assert headers["User-Agent"].value == "curl/8.5" and not headers["User-Agent"].masked
    assert headers["Content-Type"].value == "application/json"
    for name in ("Cookie", "Authorization", "X-Api-Key"):
        assert headers[name].value == MASK and headers[name].masked


def test_environ_keeps_what_a_developer_needs_and_masks_secrets() -> None:
    fields = {field.name: field.value for field in describe_request(environ()).environ}
    assert fields["REMOTE_ADDR"] == "127.0.0.1" and fields["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert fields["wsgi.multithread"] == "True"
    assert "wsgi.input" not in fields and "HTTP_COOKIE" not in fields
    assert fields["app.secret_thing"] == MASK
    assert fields["QUERY_STRING"] == f"page=2&api_key={MASK}&access_token={MASK}"
    assert fields["REQUEST_URI"] == f"/mount/caf%C3%A9?page=2&api_key={MASK}"
    assert fields["app.object"].startswith("<object object at")


@pytest.mark.parametrize(
    "odd",
    [{"REQUEST_METHOD": None}, {"HTTP_HOST": b"bytes"}, {"PATH_INFO": 42}, {1: "non-str key"}],
)
def test_odd_environ_values_never_break_the_summary(odd: dict[Any, Any]) -> None:
    info = describe_request(
        environ(**{str(k) if not isinstance(k, str) else k: v for k, v in odd.items()})
    )
    assert info.url.startswith("https://")
