"""``manage.py devserver``: runserver with wsgidev inside, in a real Django project."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import RUNNING_ON, LiveServer

pytestmark = pytest.mark.live
pytest.importorskip("django")

MANAGE = """\
import os, sys
if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"""

SETTINGS = """\
SECRET_KEY = "test-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
    "shop",
    "wsgidev.contrib.django",
]
MIDDLEWARE = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
STATIC_URL = "/static/"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
"""

URLS = """\
from django.shortcuts import render
from django.urls import path


def order(request, order_id):
    orders = {}
    return orders[order_id]


urlpatterns = [
    path("", lambda request: render(request, "shop/index.html")),
    path("orders/<int:order_id>", order),
]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two modules of settings and URLs, an app with a template and a static file."""
    (tmp_path / "manage.py").write_text(MANAGE)
    (tmp_path / "mysite").mkdir()
    (tmp_path / "mysite" / "__init__.py").write_text("")
    (tmp_path / "mysite" / "settings.py").write_text(SETTINGS)
    (tmp_path / "mysite" / "urls.py").write_text(URLS)
    shop = tmp_path / "shop"
    (shop / "templates" / "shop").mkdir(parents=True)
    (shop / "static" / "shop").mkdir(parents=True)
    (shop / "__init__.py").write_text("")
    (shop / "templates" / "shop" / "index.html").write_text("shop v1")
    (shop / "static" / "shop" / "site.css").write_text("body { color: teal }")
    return tmp_path


def devserver(external_server: Callable[..., LiveServer], project: Path, *args: str) -> LiveServer:
    command = [sys.executable, "manage.py", "devserver", "127.0.0.1:0", *args]
    return external_server(command, RUNNING_ON.pattern, cwd=project)


def wait_for_text(url: str, expected: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=2).text
        except requests.ConnectionError:
            last = "(connection refused)"
        if last == expected:
            return
        time.sleep(0.02)
    raise AssertionError(f"{url} still answers {last!r}, not {expected!r}")


def test_devserver_checks_serves_static_files_and_shows_the_debugger(
    external_server: Callable[..., LiveServer], project: Path
) -> None:
    server = devserver(external_server, project)
    assert requests.get(server.url + "/", timeout=10).text == "shop v1"
    css = requests.get(server.url + "/static/shop/site.css", timeout=10)
    assert css.status_code == 200 and css.text == "body { color: teal }"  # no collectstatic
    page = requests.get(server.url + "/orders/7", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 500
    assert "KeyError" in page.text and "data-frame-id" in page.text, page.text[:300]
    assert 'data-evalex="true"' in page.text
    server.wait_for(r"System check identified no issues")
    server.wait_for(r"unapplied migration")
    server.wait_for(r"Restarting with")
    # Templates are watched: an edit is served without touching any Python file.
    (project / "shop" / "templates" / "shop" / "index.html").write_text("shop v2")
    wait_for_text(server.url + "/", "shop v2")


def test_noreload_nothreading_and_nostatic(
    external_server: Callable[..., LiveServer], project: Path
) -> None:
    server = devserver(external_server, project, "--noreload", "--nothreading", "--nostatic")
    assert requests.get(server.url + "/", timeout=10).text == "shop v1"
    assert requests.get(server.url + "/static/shop/site.css", timeout=10).status_code == 404
    assert "Restarting with" not in server.log


def test_a_port_in_use_is_one_line(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "devserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "already in use" in result.stderr and "Traceback" not in result.stderr
