"""``flask dev``: Flask's own CLI and app discovery, served by wsgidev; ``flask run`` untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, RUNNING_ON, LiveServer

pytestmark = pytest.mark.live
flask = pytest.importorskip("flask")

SHOP = """
from flask import Flask

def create_app():
    app = Flask(__name__)

    @app.route("/")
    def index():
        return "shop"

    @app.route("/orders/<int:order_id>")
    def order(order_id):
        orders = {}
        return orders[order_id]

    return app
"""

HTML = {"Accept": "text/html"}


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose app is found the Flask way: a factory in a module named by .flaskenv."""
    monkeypatch.delenv("FLASK_APP", raising=False)
    (tmp_path / "shop.py").write_text(textwrap.dedent(SHOP))
    (tmp_path / ".flaskenv").write_text("FLASK_APP=shop\n")
    return tmp_path


def flask_dev(external_server: Callable[..., LiveServer], project: Path, *args: str) -> LiveServer:
    command = [sys.executable, "-m", "flask", *args, "--port", "0"]
    return external_server(command, RUNNING_ON.pattern, cwd=project)


def test_flask_debug_dev_serves_with_the_reloader_and_the_debugger(
    external_server: Callable[..., LiveServer], shop: Path
) -> None:
    pytest.importorskip("dotenv")
    server = flask_dev(external_server, shop, "--debug", "dev")
    assert requests.get(server.url + "/", timeout=10).text == "shop"
    page = requests.get(server.url + "/orders/7", headers=HTML, timeout=10)
    assert page.status_code == 500
    assert "KeyError" in page.text and "data-frame-id" in page.text, page.text[:300]
    assert page.headers.get("X-Wsgidev-Traceback")
    server.wait_for(r"Restarting with")
    server.wait_for(r" \* Debugger PIN: ")


def test_without_debug_there_is_no_debugger_and_no_reloader(
    external_server: Callable[..., LiveServer], shop: Path
) -> None:
    server = flask_dev(external_server, shop, "--app", "shop", "dev")
    page = requests.get(server.url + "/orders/7", headers=HTML, timeout=10)
    assert page.status_code == 500 and "data-frame-id" not in page.text
    assert "Restarting with" not in server.log and "Debugger" not in server.log


def test_run_options_and_static_files(
    external_server: Callable[..., LiveServer], shop: Path
) -> None:
    public = shop / "public"
    public.mkdir()
    (public / "site.css").write_text("body { color: teal }")
    server = flask_dev(
        external_server,
        shop,
        "--app",
        "shop:create_app()",
        "dev",
        "--host",
        "127.0.0.1",
        "--without-threads",
        "--static",
        f"/assets={public}",
    )
    assert requests.get(server.url + "/assets/site.css", timeout=10).text == "body { color: teal }"
    assert requests.get(server.url + "/", timeout=10).text == "shop"


def test_a_broken_app_is_shown_until_it_is_fixed(
    external_server: Callable[..., LiveServer], shop: Path
) -> None:
    source = (shop / "shop.py").read_text()
    (shop / "shop.py").write_text(source.replace("def index():", "def index(:"))
    server = flask_dev(external_server, shop, "--app", "shop", "--debug", "dev")
    page = requests.get(server.url + "/", headers=HTML, timeout=10)
    assert page.status_code == 500 and "Python could not compile" in page.text
    (shop / "shop.py").write_text(source)
    deadline = time.monotonic() + 20  # the reloader restarts within a second or two
    while time.monotonic() < deadline:
        try:
            if requests.get(server.url + "/", timeout=2).text == "shop":
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    assert requests.get(server.url + "/", timeout=10).text == "shop"


def test_flask_run_stays_flasks_own_and_wsgidev_does_not_import_flask(shop: Path) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "flask", "--help"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "dev " in listing.stdout and "run " in listing.stdout
    run_help = subprocess.run(
        [sys.executable, "-m", "flask", "run", "--help"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "wsgidev" not in run_help.stdout
    probe = "import sys, wsgidev, wsgidev.serving, wsgidev.cli; print('flask' in sys.modules)"
    imported = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert imported.stdout.strip() == "False"
