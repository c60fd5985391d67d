"""``wsgidev run TARGET`` and ``wsgidev demo``: every TARGET form, helpful failures, --help."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, LiveServer, get, run_cli
from wsgidev import cli
from wsgidev._target import Target, TargetNotFound, load_app, parse_target

APP_SOURCE = """\
def make(text):
    def app(environ, start_response):
        body = text.encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return app
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project: modules, a factory, a package with a relative import, a plain file."""
    (tmp_path / "helpers.py").write_text(APP_SOURCE)
    (tmp_path / "site_app.py").write_text("from helpers import make\napp = make('module app')\n")
    (tmp_path / "legacy.py").write_text("from helpers import make\napplication = make('legacy')\n")
    (tmp_path / "factory.py").write_text(
        "from helpers import make\n"
        "def create_app(name='default', *, shout=False):\n"
        "    return make(name.upper() if shout else name)\n"
    )
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_make.py").write_text(APP_SOURCE)
    (package / "web.py").write_text("from ._make import make\nwsgi = make('package file')\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "standalone.py").write_text(APP_SOURCE + "app = make('standalone file')\n")
    (tmp_path / "notcallable.py").write_text("app = 42\n")
    (tmp_path / "badfactory.py").write_text("def create_app():\n    return None\n")
    plain_dir = tmp_path / "plaindir"  # a folder without __init__.py: a namespace package
    plain_dir.mkdir()
    (plain_dir / "wsgi.py").write_text(APP_SOURCE + "app = make('in a plain folder')\n")
    return tmp_path


@pytest.mark.live
@pytest.mark.parametrize(
    ("target", "text"),
    [
        ("site_app:app", "module app"),
        ("site_app", "module app"),
        ("legacy", "legacy"),
        ("factory:create_app()", "default"),
        ("factory:create_app('shop', shout=True)", "SHOP"),
        ("shop/web.py:wsgi", "package file"),
        ("elsewhere/standalone.py", "standalone file"),
    ],
)
def test_every_target_form_is_served(
    serve_cli: Callable[..., LiveServer], project: Path, target: str, text: str
) -> None:
    server = serve_cli("run", target, cwd=project)
    status, _, body = get(server)
    assert (status, body.decode()) == (200, text)


@pytest.mark.live
def test_ctrl_c_stops_wsgidev_run_with_status_0(
    serve_cli: Callable[..., LiveServer], project: Path
) -> None:
    server = serve_cli("run", "site_app", cwd=project)
    assert get(server)[0] == 200
    assert server.stop() == 0
    assert "Traceback" not in server.log


@pytest.mark.live
def test_console_script_serves_threaded_by_default(
    serve_cli: Callable[..., LiveServer], tmp_path: Path
) -> None:
    script = shutil.which("wsgidev", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the wsgidev console script is not installed in this environment")
    server = serve_cli("run", "tests.apps.echo_environ:app", cwd=ROOT, command=[script])
    environ = json.loads(get(server)[2])
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False


@pytest.mark.live
@pytest.mark.parametrize(
    ("flags", "multithread", "multiprocess"),
    [(["--no-threaded"], False, False), (["--processes", "2"], False, True)],
)
def test_concurrency_flags_reach_the_server(
    serve_cli: Callable[..., LiveServer], flags: list[str], multithread: bool, multiprocess: bool
) -> None:
    server = serve_cli("run", "tests.apps.echo_environ:app", *flags, cwd=ROOT)
    environ = json.loads(get(server)[2])
    assert (environ["wsgi.multithread"], environ["wsgi.multiprocess"]) == (
        multithread,
        multiprocess,
    )


@pytest.mark.live
def test_static_and_debug_flags_wrap_the_app(
    serve_cli: Callable[..., LiveServer], project: Path
) -> None:
    (project / "assets").mkdir()
    (project / "assets" / "note.txt").write_text("static note")
    (project / "broken.py").write_text("def app(environ, start_response):\n    return 1 / 0\n")
    server = serve_cli("run", "broken", "--debug", "--static", "/files=assets", cwd=project)
    assert get(server, "/files/note.txt")[::2] == (200, b"static note")
    status, headers, body = get(server, "/", headers={"Accept": "text/html"})
    assert status == 500
    assert b"ZeroDivisionError" in body
    assert "text/html" in headers["Content-Type"]


@pytest.mark.live
def test_https_with_a_cert_and_key(serve_cli: Callable[..., LiveServer], project: Path) -> None:
    from wsgidev._tls import make_ssl_devcert

    cert, key = make_ssl_devcert(project / "dev")
    server = serve_cli("run", "site_app", "--cert", cert, "--key", key, cwd=project)
    assert server.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_such_module", ["no_such_module", "no module named 'no_such_module'"]),
        ("no_such_pkg.web:app", ["no_such_pkg.web", "no module named 'no_such_pkg'"]),
        ("site_app:missing", ["site_app", "no attribute 'missing'"]),
        ("helpers", ["helpers", "app, application, create_app(), make_app()"]),
        ("factory:create_app(name)", ["must be Python literals"]),
        ("site_app:app[0]", ["not a name or a call"]),
        ("missing/file.py", ["file", "file.py", "does not exist"]),
        ("helpers:make('x')()", ["not a name or a call"]),
        ("legacy:__name__", ["legacy:__name__ is 'legacy' (a str)", "WSGI application"]),
        ("notcallable", ["notcallable:app is 42 (an int)", "must be a WSGI application"]),
        ("notcallable:app", ["notcallable:app is 42 (an int)", "must be a WSGI application"]),
        ("badfactory", ["badfactory:create_app() returned None", "must be a WSGI application"]),
        ("plaindir/", ["is a folder without __init__.py", "plaindir/wsgi.py"]),
        ("plaindir", ["namespace package", "no __init__.py", "plaindir.wsgi"]),
        ("plaindir:app", ["namespace package", "no __init__.py", "plaindir.wsgi"]),
    ],
)
def test_a_target_that_cannot_be_found_is_one_paragraph_and_status_2(
    project: Path, target: str, expected: list[str]
) -> None:
    result = run_cli("run", target, cwd=project)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith(f"Error: could not load the application {target!r}:")
    assert "\n" not in message
    assert "?" not in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("import not_installed_anywhere\napp = None\n", "ModuleNotFoundError"),
        ("def fail():\n    raise RuntimeError('config missing')\napp = fail()\n", "config missing"),
        ("def create_app():\n    raise KeyError('DATABASE_URL')\n", "KeyError: 'DATABASE_URL'"),
    ],
)
def test_an_error_inside_the_users_module_shows_its_traceback(
    tmp_path: Path, source: str, error: str
) -> None:
    (tmp_path / "buggy.py").write_text(source)
    result = run_cli("run", "buggy", cwd=tmp_path)
    assert result.returncode == 2
    assert "Error: importing the application 'buggy' raised:" in result.stderr
    assert "Traceback (most recent call last):" in result.stderr
    assert 'buggy.py", line' in result.stderr
    assert error in result.stderr
    # The user's frames, not wsgidev's or importlib's machinery.
    assert "_target.py" not in result.stderr
    assert "importlib" not in result.stderr


def test_help_explains_every_flag(tmp_path: Path) -> None:
    result = run_cli("run", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--reload",
        "--debug",
        "--no-evalex",
        "--static",
        "--threaded",
        "--processes",
        "--cert",
        "--key",
        "--adhoc",
        "--reloader-type",
        "--extra-files",
        "--exclude-patterns",
        "module:factory()",
        "path/to/app.py",
    ):
        assert flag in result.stdout, flag
    top = run_cli("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "run" in top.stdout and "demo" in top.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "site_app", "--static", "static"], "--static: expected /URL=DIR"),
        (["run", "site_app", "--static", "/s=nowhere"], "--static: 'nowhere' does not exist"),
        (["run", "site_app", "--key", "k.pem"], "--key needs --cert"),
        (["run", "site_app", "--cert", "nope.pem"], "cert_file: no such file"),
        (["run", "site_app", "--port", "http"], "must be an integer"),
        (["run", "site_app", "--port", "70000"], "between 0 and 65535"),
        (["run", "site_app", "--processes", "0"], "must be at least 1"),
        (["run", "site_app", "--threaded", "--processes", "2"], "not allowed with argument"),
        (["run", "site_app", "--adhoc", "--cert", "c.pem"], "not allowed with argument"),
        (["run", "site_app", "--reloader-type", "inotify"], "invalid choice"),
        (["run", "site_app", "--adhoc"], "--adhoc: "),
        (["serve"], "invalid choice"),
    ],
)
def test_bad_flags_are_usage_errors(
    project: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(project)
    # As on a machine without the tls extra (only --adhoc reaches for it).
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args, prog="wsgidev")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    # The usage shown is the one of the command that was mistyped, with its own flags.
    usage = "usage: wsgidev run " if args[0] == "run" else "usage: wsgidev [-h]"
    assert err.startswith(usage), err
    if args == ["run", "site_app", "--adhoc"]:
        assert "wsgidev[tls]" in err


@pytest.mark.parametrize(
    "host", ["nosuchhost.invalid", "192.0.2.1"], ids=["unresolvable", "not-this-machine"]
)
def test_a_host_that_cannot_be_listened_on_is_one_line_and_status_1(
    project: Path, host: str
) -> None:
    result = run_cli("run", "site_app", "--host", host, cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert host in result.stderr


@pytest.mark.live
def test_flags_that_modify_an_absent_flag_warn_in_one_line_each(
    serve_cli: Callable[..., LiveServer], project: Path
) -> None:
    server = serve_cli(
        "run",
        "site_app",
        "--no-evalex",
        "--reloader-type",
        "stat",
        "--extra-files",
        "settings.toml",
        "--exclude-patterns",
        "*.log",
        cwd=project,
    )
    for flag, needed in (
        ("--no-evalex", "--debug"),
        ("--reloader-type", "--reload"),
        ("--extra-files", "--reload"),
        ("--exclude-patterns", "--reload"),
    ):
        line = f"Warning: {flag} has no effect without {needed}"
        assert server.log.count(line) == 1, server.log
    assert get(server)[2] == b"module app"


@pytest.mark.live
def test_flags_used_with_the_flag_they_modify_do_not_warn(
    serve_cli: Callable[..., LiveServer], project: Path
) -> None:
    server = serve_cli("run", "site_app", "--debug", "--no-evalex", cwd=project)
    assert get(server)[2] == b"module app"
    assert "Warning:" not in server.log


def test_port_in_use_is_one_line_and_status_1(project: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_cli("run", "site_app", "--port", str(busy.getsockname()[1]), cwd=project)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "already in use" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app", Target("app", None)),
        ("pkg.mod:obj.app", Target("pkg.mod", "obj.app")),
        ("pkg.mod:create_app('a:b')", Target("pkg.mod", "create_app('a:b')")),
        ("mod:", Target("mod", None)),
    ],
)
def test_parse_target_splits_module_and_attribute(text: str, expected: Target) -> None:
    parsed = parse_target(text)
    assert (parsed.module, parsed.attribute, parsed.path) == (
        expected.module,
        expected.attribute,
        None,
    )


def test_parse_target_maps_a_file_in_a_package_to_its_dotted_name(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    target = parse_target(f"{project / 'shop' / 'web.py'}:wsgi")
    assert (target.module, target.attribute, target.search_dir) == ("shop.web", "wsgi", project)
    assert parse_target(str(project / "shop")).module == "shop"
    assert parse_target("elsewhere/standalone").path == project / "elsewhere" / "standalone.py"


def test_parse_target_rejects_what_cannot_be_a_module() -> None:
    for text in ("", "my-app", "3rd:app"):
        with pytest.raises(TargetNotFound):
            parse_target(text)


def test_load_app_calls_a_dotted_factory_with_literals(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "nested.py").write_text(
        "from helpers import make\n"
        "class Config:\n"
        "    @staticmethod\n"
        "    def build(*names, sep='+'):\n"
        "        return make(sep.join(names))\n"
    )
    monkeypatch.syspath_prepend(str(project))
    app: Any = load_app(parse_target("nested:Config.build('a', 'b', sep='-')"))
    captured: list[str] = []
    body = b"".join(app({}, lambda status, headers: captured.append(status)))
    assert (captured, body) == (["200 OK"], b"a-b")


@pytest.mark.live
def test_demo_serves_its_pages_static_files_stream_and_form(
    serve_cli: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = serve_cli("demo", cwd=tmp_path)
    server.wait_for(r"Debugger PIN|Debugger is active")
    status, _, index = get(server, "/")
    assert status == 200
    # The home page is the demo itself; other pages are "PAGE · wsgidev demo".
    assert b"<title>wsgidev demo</title>" in index
    assert "<title>A form · wsgidev demo</title>".encode() in get(server, "/form")[2]
    for link in (
        b'href="/error"',
        b'href="/static/demo.css"',
        b'src="/static/logo.svg"',
        b'href="/stream"',
        b'href="/form"',
        b'href="/console"',
    ):
        assert link in index
    status, headers, css = get(server, "/static/demo.css")
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/css")
    assert b"--accent" in css
    status, headers, _ = get(server, "/static/logo.svg")
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "image/svg+xml")
    status, headers, lines = get(server, "/stream?lines=3&delay=0")
    assert headers.get("Transfer-Encoding") == "chunked"
    assert lines == b"line 1 of 3\nline 2 of 3\nline 3 of 3\n"
    form = b"name=%3Cb%3EAda%3C%2Fb%3E&message=hi"
    status, _, echoed = get(
        server, "/form", "POST", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200
    assert b"&lt;b&gt;Ada&lt;/b&gt;" in echoed
    assert b"<b>Ada" not in echoed
    status, _, page = get(server, "/error", headers={"Accept": "text/html"})
    assert status == 500
    assert b"KeyError" in page
    assert b"data-secret" in page  # the debugger's page, not a bare 500
    assert get(server, "/console")[0] == 200  # the debugger's console page, PIN-protected
    assert get(server, "/nowhere")[0] == 404


def test_python_dash_m_names_itself_in_usage_and_reports_the_version(tmp_path: Path) -> None:
    from wsgidev import __version__

    version = run_cli("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"wsgidev {__version__}")
    usage = run_cli("run", cwd=tmp_path)
    assert usage.returncode == 2
    assert usage.stderr.startswith("usage: python -m wsgidev run")
    assert "TARGET" in usage.stderr


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["run", "app:app", "--prot", "5000"], "did you mean --port for --prot?"),
        (["run", "app:app", "--relaod"], "did you mean --reload for --relaod?"),
        (["rn", "app:app"], "did you mean run for rn?"),
    ],
)
def test_a_mistyped_option_or_command_gets_a_suggestion(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from wsgidev.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert suggestion in capsys.readouterr().err


def test_an_unknown_option_with_nothing_close_gets_no_guess(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wsgidev.cli import main

    with pytest.raises(SystemExit):
        main(["run", "app:app", "--zzzzzz"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzzzz" in err and "did you mean" not in err
