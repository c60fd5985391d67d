"""``wsgidev run --debug`` on unmodified framework apps: the framework's own switch lets errors
through to the debugger (as ``flask --debug run`` does), and ``--debug`` reloads on changes."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RUNNING_ON, LiveServer, call_app
from wsgidev import DebuggedApplication, SharedDataMiddleware
from wsgidev._frameworks import find_framework

pytestmark = pytest.mark.live

FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "shop"


@app.route("/orders/<int:order_id>")
def order(order_id):
    orders = {}
    return orders[order_id]
"""

BOTTLE_APP = """
import bottle

app = bottle.Bottle()


@app.route("/orders/<order_id:int>")
def order(order_id):
    orders = {}
    return orders[order_id]
"""

HTML = {"Accept": "text/html"}


def _serve(
    external_server: Callable[..., LiveServer], tmp_path: Path, source: str, *flags: str
) -> LiveServer:
    (tmp_path / "app.py").write_text(textwrap.dedent(source))
    command = [sys.executable, "-m", "wsgidev", "run", "app:app", "--port", "0", *flags]
    return external_server(command, RUNNING_ON.pattern, cwd=tmp_path)


@pytest.mark.parametrize("source", [FLASK_APP, BOTTLE_APP], ids=["flask", "bottle"])
def test_an_unmodified_app_shows_the_debugger_page_not_its_own_500(
    external_server: Callable[..., LiveServer], tmp_path: Path, source: str
) -> None:
    pytest.importorskip("flask" if "flask" in source else "bottle")
    server = _serve(external_server, tmp_path, source, "--debug")
    page = requests.get(server.url + "/orders/7", headers=HTML, timeout=10)
    assert page.status_code == 500
    assert "KeyError" in page.text and "data-frame-id" in page.text, page.text[:500]
    assert page.headers.get("X-Wsgidev-Traceback")


def test_debug_turns_the_reloader_on_and_no_reload_turns_it_off(
    external_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    pytest.importorskip("flask")
    reloading = _serve(external_server, tmp_path, FLASK_APP, "--debug")
    reloading.wait_for(r"Restarting with")
    plain = _serve(external_server, tmp_path, FLASK_APP, "--debug", "--no-reload")
    assert requests.get(plain.url + "/", timeout=10).text == "shop"
    assert "Restarting with" not in plain.log


def test_recognising_an_app_sees_through_middleware_and_imports_nothing() -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("shop")
    wrapped = DebuggedApplication(SharedDataMiddleware(app, {"/static": "."}))
    found = find_framework(wrapped)
    assert found is not None and found.name == "Flask" and found.app is app

    def plain(environ: Any, start_response: Any) -> list[bytes]:
        return []

    assert find_framework(plain) is None


def test_an_app_that_answers_its_own_500_gets_one_hint_naming_the_switch(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrapped by hand, the debugger cannot flip the switch; it says which one, once."""
    import wsgidev.debug

    flask = pytest.importorskip("flask")
    monkeypatch.setattr(wsgidev.debug, "_hinted_5xx", __import__("threading").Event())
    app = flask.Flask("shop")

    @app.route("/boom")
    def boom() -> str:
        raise KeyError("gone")

    debugged = DebuggedApplication(app)
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        for _ in range(3):
            response = call_app(debugged, "/boom", headers=HTML)
            assert response.code == 500 and b"data-frame-id" not in response.body
    hints = [r.getMessage() for r in caplog.records if "no exception reached" in r.getMessage()]
    assert len(hints) == 1
    assert "app.debug = True" in hints[0]
    app.debug = True  # the control: with the switch on, the debugger gets the error
    assert b"data-frame-id" in call_app(debugged, "/boom", headers=HTML).body


def test_a_template_frame_shows_its_own_variables_first_and_folds_the_engine_globals(
    tmp_path: Path,
) -> None:
    flask = pytest.importorskip("flask")
    (tmp_path / "page.html").write_text(
        '<p>{{ user.name }}</p>\n{{ items | sum(attribute="price") }}\n'
    )
    app = flask.Flask(__name__, template_folder=str(tmp_path))
    app.debug = True

    @app.route("/")
    def index() -> str:
        return flask.render_template("page.html", user={"name": "ada"}, items=[1, 2], cycler="mine")

    page = call_app(DebuggedApplication(app, pin_logging=False), "/", headers=HTML)
    html = page.body.decode()
    start = html.index('title="' + str(tmp_path / "page.html") + '"')
    frame = html[start : html.index("</article>", start)]
    assert "top-level template code" in frame
    own, _, folded = frame.partition('<details class="engine-globals">')
    own_names = re.findall(r'<th scope="row">([^<]+)</th>', own)
    folded_names = re.findall(r'<th scope="row">([^<]+)</th>', folded)
    assert sorted(own_names) == ["cycler", "items", "user"]  # this "cycler" is the view's
    assert {"range", "url_for", "config", "request", "session", "g"} <= set(folded_names)
    assert "cycler" not in folded_names
    assert re.search(r"<summary>\d+ globals of the template engine", folded)
