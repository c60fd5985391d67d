"""Under the reloader an edited template is served on the next request, for Flask (Jinja
rereads it, no restart) and Django (its template folders are watched)."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import RUNNING_ON, LiveServer

pytestmark = pytest.mark.live

FLASK_APP = """
from flask import Blueprint, Flask, render_template

shop = Blueprint("shop", __name__, template_folder="shop_templates")


@shop.route("/shop")
def shop_page():
    return render_template("shop.html")


app = Flask(__name__)
app.register_blueprint(shop)


@app.route("/")
def index():
    return render_template("index.html")
"""

DJANGO_SETTINGS = """
SECRET_KEY = "test-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "site_urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": ["templates"],
    "OPTIONS": {"loaders": [("django.template.loaders.cached.Loader", [
        "django.template.loaders.filesystem.Loader"])]},
}]
"""

DJANGO_URLS = """
from django.shortcuts import render
from django.urls import path

urlpatterns = [path("", lambda request: render(request, "index.html"))]
"""

DJANGO_WSGI = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
"""


def wait_for_text(url: str, expected: str, seconds: float = 10.0) -> float:
    """Seconds until ``url`` answers ``expected`` (bounded by ``seconds``)."""
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < seconds:
        try:
            last = requests.get(url, timeout=2).text
        except requests.ConnectionError:
            last = "(connection refused)"
        if last == expected:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"{url} still answers {last!r}, not {expected!r}")


def serve(
    external_server: Callable[..., LiveServer], project: Path, target: str, *flags: str
) -> LiveServer:
    command = [sys.executable, "-m", "wsgidev", "run", target, "--port", "0", *flags]
    return external_server(command, RUNNING_ON.pattern, cwd=project)


@pytest.mark.parametrize("flags", [("--reload",), ("--debug",)], ids=["reload", "debug"])
def test_flask_templates_of_the_app_and_its_blueprints_are_reread(
    external_server: Callable[..., LiveServer], tmp_path: Path, flags: tuple[str, ...]
) -> None:
    pytest.importorskip("flask")
    (tmp_path / "app.py").write_text(textwrap.dedent(FLASK_APP))
    (tmp_path / "templates").mkdir()
    (tmp_path / "shop_templates").mkdir()
    (tmp_path / "templates" / "index.html").write_text("home v1")
    (tmp_path / "shop_templates" / "shop.html").write_text("shop v1")
    server = serve(external_server, tmp_path, "app:app", *flags, "--reloader-type", "stat")
    wait_for_text(server.url + "/", "home v1")
    wait_for_text(server.url + "/shop", "shop v1")
    (tmp_path / "templates" / "index.html").write_text("home v2")
    (tmp_path / "shop_templates" / "shop.html").write_text("shop v2")
    wait_for_text(server.url + "/", "home v2")
    wait_for_text(server.url + "/shop", "shop v2")
    assert "Detected change" not in server.log  # Jinja reread them: no restart


def test_django_template_folders_are_watched(
    external_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    pytest.importorskip("django")
    (tmp_path / "site_settings.py").write_text(textwrap.dedent(DJANGO_SETTINGS))
    (tmp_path / "site_urls.py").write_text(textwrap.dedent(DJANGO_URLS))
    (tmp_path / "wsgi.py").write_text(textwrap.dedent(DJANGO_WSGI))
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "index.html").write_text("page v1")
    server = serve(external_server, tmp_path, "wsgi:application", "--reload")
    wait_for_text(server.url + "/", "page v1")
    server.wait_for(r"Restarting with")
    (templates / ".index.html.swp").write_text("editor noise")  # never a reason to restart
    (templates / "index.html").write_text("page v2")
    wait_for_text(server.url + "/", "page v2")
    server.wait_for(r"Detected change in '.*index\.html'")
    assert ".swp" not in server.log
