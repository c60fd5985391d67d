"""One message per mistake, whichever entry point it came through (wsgidev/_checks.py)."""

from __future__ import annotations

from typing import Any

import pytest

from wsgidev import make_server, run_simple
from wsgidev._server.servers import BaseWSGIServer


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return []


def _message(call: Any) -> str:
    with pytest.raises((TypeError, ValueError)) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # The public contract's wording, which scripts and tutorials grep for.
        ({"port": "5000"}, "port must be an integer, got str"),
        ({"port": 70000}, "port must be between 0 and 65535, got 70000"),
        ({"processes": "2"}, "processes must be an integer, got str"),
        ({"processes": 0}, "processes must be at least 1, got 0"),
        (
            {"threaded": True, "processes": 2},
            "threaded=True cannot be combined with processes > 1: a server is either "
            "multi-threaded or multi-process; choose one",
        ),
        (
            {"request_handler": 5},
            "request_handler must be a subclass of WSGIRequestHandler or None, got 5",
        ),
    ],
)
def test_run_simple_make_server_and_the_server_class_say_the_same(
    arguments: dict[str, Any], expected: str
) -> None:
    port = arguments.pop("port", 0)
    through_run_simple = _message(lambda: run_simple("127.0.0.1", port, app, **arguments))
    assert through_run_simple == expected
    assert _message(lambda: make_server("127.0.0.1", port, app, **arguments)) == expected
    if set(arguments) <= {"request_handler"}:
        handler = arguments.get("request_handler")
        assert _message(lambda: BaseWSGIServer("127.0.0.1", port, app, handler)) == expected


def test_a_non_callable_app_is_named_as_each_signature_names_it() -> None:
    assert _message(lambda: run_simple("127.0.0.1", 0, "app:app")) == (
        "application must be a WSGI callable (environ, start_response), got 'app:app' of type str"
    )
    assert _message(lambda: make_server("127.0.0.1", 0, "app:app")) == (
        "app must be a WSGI callable (environ, start_response), got 'app:app' of type str"
    )


def test_the_threaded_servers_pool_size_is_a_checked_keyword() -> None:
    from wsgidev._server.servers import ThreadedWSGIServer

    assert _message(lambda: ThreadedWSGIServer("127.0.0.1", 0, app, max_threads=0)) == (
        "max_threads must be at least 1, got 0"
    )
    assert _message(lambda: ThreadedWSGIServer("127.0.0.1", 0, app, max_threads="8")) == (
        "max_threads must be an integer, got str"
    )
    server = ThreadedWSGIServer("127.0.0.1", 0, app, max_threads=3)
    try:
        assert server.max_threads == 3
        assert server.open_connections == 0
        assert server.wait_idle(0.1)
    finally:
        server.server_close()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("keep_alive_timeout", 0, "keep_alive_timeout must be more than 0 seconds, got 0"),
        ("send_timeout", "30", "send_timeout must be a number of seconds, got str"),
        ("body_timeout", True, "body_timeout must be a number of seconds, got bool"),
        ("max_body_size", -1, "max_body_size must be 0 or more, got -1"),
        (
            "max_body_size",
            1.5,
            "max_body_size must be an integer number of bytes or None, got float",
        ),
        (
            "body_memory_limit",
            None,
            "body_memory_limit must be an integer number of bytes, got NoneType",
        ),
        ("read_body_ahead", 1, "read_body_ahead must be True or False, got 1"),
    ],
)
def test_server_settings_refuse_what_cannot_be_a_timeout_or_a_size(
    field: str, value: object, expected: str
) -> None:
    from wsgidev._server.servers import ServerSettings

    assert _message(lambda: ServerSettings(**{field: value})) == expected


def test_servers_take_settings_as_one_frozen_value() -> None:
    import dataclasses

    from wsgidev._server.servers import ServerSettings

    assert _message(lambda: make_server("127.0.0.1", 0, app, settings={"x": 1})) == (
        "settings must be a ServerSettings or None, got dict; build one with "
        "ServerSettings(keep_alive_timeout=...)"
    )
    settings = ServerSettings(keep_alive_timeout=5, max_body_size=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.keep_alive_timeout = 1  # type: ignore[misc]  # the point: it is frozen
    server = make_server("127.0.0.1", 0, app, threaded=True, settings=settings)
    try:
        assert server.settings is settings
        assert make_server.__kwdefaults__ == {"settings": None}
    finally:
        server.server_close()
