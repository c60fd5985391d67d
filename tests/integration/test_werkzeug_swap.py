"""Coming from Werkzeug: the same program runs under either package, only the imports differ.

The names, signatures and defaults of Werkzeug's development tools are wsgidev's too
(wsgidev may add keyword-only options), and a program written for Werkzeug, including a
request handler subclass, behaves the same after ``s/werkzeug/wsgidev/`` on its imports.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import werkzeug.debug
import werkzeug.middleware.shared_data
import werkzeug.serving

import wsgidev
import wsgidev.debug
import wsgidev.middleware.shared_data
import wsgidev.serving
from tests.conftest import LiveServer
from tests.integration._pages import BROWSER_HEADERS
from tests.integration.conftest import StaticTree

SERVING_NAMES = [
    "run_simple",
    "make_server",
    "BaseWSGIServer",
    "ThreadedWSGIServer",
    "ForkingWSGIServer",
    "is_running_from_reloader",
    "load_ssl_context",
    "generate_adhoc_ssl_context",
    "make_ssl_devcert",
]
PAIRS: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
    *(
        (f"serving.{name}", getattr(werkzeug.serving, name), getattr(wsgidev.serving, name))
        for name in SERVING_NAMES
    ),
    (
        "debug.DebuggedApplication",
        werkzeug.debug.DebuggedApplication,
        wsgidev.debug.DebuggedApplication,
    ),
    (
        "debug.get_pin_and_cookie_name",
        werkzeug.debug.get_pin_and_cookie_name,
        wsgidev.debug.get_pin_and_cookie_name,
    ),
    (
        "middleware.shared_data.SharedDataMiddleware",
        werkzeug.middleware.shared_data.SharedDataMiddleware,
        wsgidev.middleware.shared_data.SharedDataMiddleware,
    ),
]


@pytest.mark.parametrize(("name", "theirs", "ours"), PAIRS, ids=[pair[0] for pair in PAIRS])
def test_every_werkzeug_parameter_exists_with_the_same_default(
    name: str, theirs: Any, ours: Any
) -> None:
    if name.endswith("WSGIRequestHandler"):
        pytest.skip(
            "constructed by the server, never by user code; its overridable methods are checked below"
        )
    their_params = list(inspect.signature(theirs).parameters.values())
    our_params = inspect.signature(ours).parameters
    for position, param in enumerate(their_params):
        assert param.name in our_params, f"{name}: no parameter {param.name!r}"
        mine = our_params[param.name]
        assert list(our_params).index(param.name) == position, f"{name}: {param.name!r} moved"
        assert mine.default == param.default, (
            f"{name}({param.name}=...): {mine.default!r} != {param.default!r}"
        )
    extra = [
        p for p in list(our_params.values())[len(their_params) :] if p.kind is not p.VAR_KEYWORD
    ]
    for param in extra:
        assert param.default is not param.empty, (
            f"{name}: extra parameter {param.name!r} must be optional"
        )


def test_request_handler_has_werkzeugs_overridable_methods() -> None:
    # The server constructs the handler; user code subclasses it and overrides these.
    for method in (
        "make_environ",
        "run_wsgi",
        "log_request",
        "log_error",
        "log_message",
        "log",
        "address_string",
        "port_integer",
        "connection_dropped",
    ):
        theirs = inspect.signature(getattr(werkzeug.serving.WSGIRequestHandler, method))
        ours = inspect.signature(getattr(wsgidev.serving.WSGIRequestHandler, method))
        assert list(ours.parameters) == list(theirs.parameters), method


def test_package_root_reexports_the_four_main_names() -> None:
    assert wsgidev.run_simple is wsgidev.serving.run_simple
    assert wsgidev.make_server is wsgidev.serving.make_server
    assert wsgidev.DebuggedApplication is wsgidev.debug.DebuggedApplication
    assert wsgidev.SharedDataMiddleware is wsgidev.middleware.shared_data.SharedDataMiddleware


# A program written for Werkzeug; the test runs it as is, and with "werkzeug" replaced by "wsgidev".
WERKZEUG_PROGRAM = """
import sys

from werkzeug.debug import DebuggedApplication
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.serving import WSGIRequestHandler, run_simple


class Handler(WSGIRequestHandler):
    def make_environ(self):
        environ = super().make_environ()
        environ["shop.handler"] = "custom"
        return environ

    def log_request(self, code="-", size="-"):
        print(f"SHOP-LOG {self.command} {self.path} {code}", file=sys.stderr, flush=True)


def shop(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        return [str(1 / 0).encode()]
    body = environ.get("shop.handler", "missing").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = DebuggedApplication(SharedDataMiddleware(shop, {"/static": sys.argv[1]}), evalex=False)
run_simple("127.0.0.1", 0, app, request_handler=Handler, threaded=True)
"""


@pytest.mark.live
@pytest.mark.parametrize("package", ["werkzeug", "wsgidev"])
def test_a_werkzeug_program_runs_with_either_import(
    package: str,
    tmp_path: Path,
    static_tree: StaticTree,
    external_server: Callable[..., LiveServer],
    session: requests.Session,
) -> None:
    program = tmp_path / "shop_server.py"
    program.write_text(WERKZEUG_PROGRAM.replace("werkzeug", package))
    server = external_server(
        [sys.executable, str(program), str(static_tree.root)],
        r" \* Running on (?P<url>http://127\.0\.0\.1:\d+)",
    )
    assert session.get(server.url + "/", timeout=10).text == "custom"
    assert session.get(server.url + "/static/hello.txt", timeout=10).content == static_tree.text
    error = session.get(server.url + "/boom", headers=BROWSER_HEADERS, timeout=10)
    assert error.status_code == 500
    assert "ZeroDivisionError" in error.text
    server.wait_for(r"SHOP-LOG GET /static/hello.txt 200")
    server.wait_for(r"SHOP-LOG GET /boom 500")
