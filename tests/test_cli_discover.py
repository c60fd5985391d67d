"""``wsgidev run`` without TARGET finds the app where Flask and Django users keep it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LiveServer, get, run_cli
from wsgidev._discover import DJANGO_TARGET, discover_target, settings_module_of
from wsgidev._target import TargetNotFound

APP = """\
def {name}(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [{text!r}.encode()]
"""

FACTORY = """\
def create_app():
    def wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"from the factory"]
    return wsgi
"""

MANAGE = """\
import os, sys
def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
if __name__ == "__main__":
    main()
"""

SETTINGS = """\
SECRET_KEY = "test-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
"""

URLS = """\
from django.http import HttpResponse
from django.urls import path
urlpatterns = [path("", lambda request: HttpResponse("django ok"))]
"""


@pytest.fixture
def no_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command runs with none of the variables it looks at set by the caller."""
    monkeypatch.delenv("FLASK_APP", raising=False)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)


def django_project(folder: Path) -> Path:
    (folder / "manage.py").write_text(MANAGE)
    site = folder / "mysite"
    site.mkdir()
    (site / "__init__.py").write_text("")
    (site / "settings.py").write_text(SETTINGS)
    (site / "urls.py").write_text(URLS)
    return folder


# -- the order, as a function of the folder and the environment --------------------------------


def test_flask_app_comes_first(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.format(name="app", text="app.py"))
    environ = {"FLASK_APP": "hello:create_app()", "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    assert discover_target(tmp_path, environ).target == "hello:create_app()"


def test_then_django_settings(tmp_path: Path) -> None:
    django_project(tmp_path)
    (tmp_path / "app.py").write_text(APP.format(name="app", text="app.py"))
    found = discover_target(tmp_path, {"DJANGO_SETTINGS_MODULE": "mysite.settings"})
    assert found.target == DJANGO_TARGET and "mysite.settings" in found.why


def test_then_wsgi_py_before_app_py(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.format(name="app", text="app.py"))
    assert discover_target(tmp_path, {}).target == "app"
    (tmp_path / "wsgi.py").write_text(APP.format(name="application", text="wsgi.py"))
    assert discover_target(tmp_path, {}).target == "wsgi"


def test_then_the_settings_manage_py_names(tmp_path: Path) -> None:
    django_project(tmp_path)
    environ: dict[str, str] = {}
    found = discover_target(tmp_path, environ)
    assert found.target == DJANGO_TARGET
    assert environ["DJANGO_SETTINGS_MODULE"] == "mysite.settings"


def test_a_manage_py_is_read_not_run(tmp_path: Path) -> None:
    probe = tmp_path / "ran"
    (tmp_path / "manage.py").write_text(
        f"open({str(probe)!r}, 'w').close()\n"
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n"
    )
    assert settings_module_of(tmp_path / "manage.py") == "proj.settings"
    assert not probe.exists()
    (tmp_path / "manage.py").write_text("print('no settings here')\n")
    with pytest.raises(TargetNotFound, match="DJANGO_SETTINGS_MODULE"):
        discover_target(tmp_path, {})


def test_nothing_found_says_what_was_tried_and_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(TargetNotFound) as caught:
        discover_target(tmp_path, {})
    message = str(caught.value)
    for tried in ("FLASK_APP", "DJANGO_SETTINGS_MODULE", "wsgi.py", "app.py", "manage.py"):
        assert tried in message
    assert "Pass TARGET" in message and "wsgidev run myapp:app" in message


# -- over the command line ----------------------------------------------------------------------


def test_run_finds_a_factory_in_app_py(
    serve_cli: Callable[..., LiveServer], tmp_path: Path, no_framework: None
) -> None:
    (tmp_path / "app.py").write_text(FACTORY)
    server = serve_cli("run", cwd=tmp_path)
    assert get(server)[2] == b"from the factory"
    assert "Serving app (from app.py)" in server.log


def test_run_follows_flask_app_set_in_flaskenv(
    serve_cli: Callable[..., LiveServer], tmp_path: Path, no_framework: None
) -> None:
    pytest.importorskip("dotenv")
    (tmp_path / "hello.py").write_text(APP.format(name="greet", text="hello from .flaskenv"))
    (tmp_path / "app.py").write_text(APP.format(name="app", text="the wrong app"))
    (tmp_path / ".flaskenv").write_text("FLASK_APP=hello:greet\n")
    server = serve_cli("run", cwd=tmp_path)
    assert get(server)[2] == b"hello from .flaskenv"
    assert "Serving hello:greet (from FLASK_APP)" in server.log


def test_run_serves_the_django_project_of_manage_py(
    serve_cli: Callable[..., LiveServer], tmp_path: Path, no_framework: None
) -> None:
    pytest.importorskip("django")
    django_project(tmp_path)
    server = serve_cli("run", "--threaded", cwd=tmp_path)
    assert get(server, headers={"Host": "127.0.0.1"})[2] == b"django ok"
    assert "DJANGO_SETTINGS_MODULE=mysite.settings" in server.log


def test_run_without_target_and_nothing_to_find_exits_2(tmp_path: Path, no_framework: None) -> None:
    result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "none was found" in result.stderr and "Pass TARGET" in result.stderr


def test_a_settings_module_that_does_not_exist_is_one_sentence(tmp_path: Path) -> None:
    django_project(tmp_path)
    with pytest.raises(TargetNotFound, match=r"'mysite\.settingz', which cannot be imported"):
        discover_target(tmp_path, {"DJANGO_SETTINGS_MODULE": "mysite.settingz"})
    (tmp_path / "manage.py").write_text(MANAGE.replace("mysite.settings", "nosite.settings"))
    with pytest.raises(TargetNotFound, match=r"manage\.py names .*'nosite\.settings'"):
        discover_target(tmp_path, {})


def test_one_app_under_another_name_is_found_and_two_are_named(
    serve_cli: Callable[..., LiveServer], tmp_path: Path, no_framework: None
) -> None:
    pytest.importorskip("flask")
    (tmp_path / "app.py").write_text(
        "from flask import Flask\nweb = Flask('web')\n\n@web.route('/')\ndef index():\n"
        "    return 'the only app'\n"
    )
    assert get(serve_cli("run", cwd=tmp_path))[2] == b"the only app"
    (tmp_path / "app.py").write_text(
        "from flask import Flask\nweb = Flask('web')\nadmin = Flask('admin')\n"
    )
    result = run_cli("run", "--no-reload", cwd=tmp_path)
    assert result.returncode == 2
    assert "found 2 applications (admin, web)" in result.stderr
    assert "app:admin or app:web" in result.stderr and "Traceback" not in result.stderr
