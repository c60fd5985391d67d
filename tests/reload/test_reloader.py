"""The reloader, live: a real supervisor and child serving a temporary project over 127.0.0.1.

Each test writes a small project (``app.py`` calling ``run_simple(..., use_reloader=True)`` and
the ``views.py`` it imports) into ``tmp_path``, edits it, and talks to the server over sockets.
Every process is stopped at teardown, and the child's pid (which the app reports) is checked.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, RUNNING_ON, LiveServer
from wsgidev._reload.watch.scope import available_watchers

pytestmark = pytest.mark.live

APP = """\
import json, os
from wsgidev.serving import run_simple
import views

def app(environ, start_response):
    if environ["PATH_INFO"] == "/crash":
        os._exit(7)
    body = f"{views.VERSION} pid={os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

if __name__ == "__main__":
    options = json.loads(os.environ["RELOAD_TEST_OPTIONS"])
    run_simple("127.0.0.1", 0, app, use_reloader=True, **options)
"""
BACKENDS = ["stat", "watchfiles", "watchdog"]
# Our own checkout is an editable install, so its files are watched like project files; keep
# edits made to it meanwhile out of these tests.
NOT_OURS = [str(ROOT / "wsgidev" / "*"), str(ROOT / "tests" / "*")]


class Project:
    """A temporary project and the supervisor serving it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server: LiveServer | None = None
        (root / "app.py").write_text(APP)
        self.write("views.py", "VERSION = 1\n")

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def start(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: int = subprocess.DEVNULL,
        **options: Any,
    ) -> LiveServer:
        options.setdefault("reloader_type", "stat")
        options.setdefault("reloader_interval", 0.1)
        options["exclude_patterns"] = [*options.get("exclude_patterns", []), *NOT_OURS]
        command = list(args) or [sys.executable, "app.py"]
        full_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT),
            "RELOAD_TEST_OPTIONS": json.dumps(options),
        }
        full_env.pop("WSGIDEV_RELOADER_TYPE", None)
        # With bytecode caching, as developers run: a same-size edit within the second its
        # .pyc was written must not bring the old code back.
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
        full_env.update(env or {})
        proc = subprocess.Popen(
            command,
            cwd=self.root,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
        server = LiveServer(proc)
        self.server = server
        threading.Thread(target=server._pump, name=f"live-server-{proc.pid}", daemon=True).start()
        server.url = server.wait_for(RUNNING_ON.pattern, timeout=20)["url"]
        return server

    def start_cli(self, *flags: str, launcher: list[str] | None = None) -> LiveServer:
        """``wsgidev run web:app --reload`` (stat watcher) on a free port, plus ``flags``."""
        return self.start(
            *(launcher or [sys.executable, "-m", "wsgidev"]),
            "run",
            "web:app",
            "--port",
            "0",
            "--reload",
            "--reloader-type",
            "stat",
            "--exclude-patterns",
            os.pathsep.join(NOT_OURS),
            *flags,
        )

    def get(self, path: str = "/", accept: str = "*/*") -> tuple[int, str]:
        """One request on a fresh connection: (status, body)."""
        assert self.server is not None
        conn: http.client.HTTPConnection
        if self.server.url.startswith("https://"):
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(
                self.server.host, self.server.port, timeout=10, context=context
            )
        else:
            conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Accept": accept})
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def wait_for_body(
        self, check: Callable[[int, str], bool], timeout: float = 10
    ) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        status, body = self.get()
        while not check(status, body):
            if time.monotonic() > deadline:
                log = self.server.log if self.server else ""
                raise AssertionError(f"last answer {status} {body[:500]!r}; log:\n{log}")
            time.sleep(0.05)
            status, body = self.get()
        return status, body

    def child_pid(self) -> int:
        _status, body = self.wait_for_body(lambda s, b: s == 200)
        return int(body.rpartition("pid=")[2])


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Project]:
    project = Project(tmp_path)
    yield project
    if project.server is not None:
        project.server.stop()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(f"--- supervisor log ---\n{project.server.log}")


def _gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _needs(backend: str) -> None:
    if backend not in available_watchers():
        pytest.skip(f"{backend} is not installed (pip install 'wsgidev[watch]')")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_edit_is_served_by_new_code(project: Project, backend: str) -> None:
    _needs(backend)
    server = project.start(reloader_type=backend)
    first = project.child_pid()
    project.write("views.py", "VERSION = 2\n")
    _, body = project.wait_for_body(lambda s, b: b.startswith("2 "))
    assert int(body.rpartition("pid=")[2]) != first
    server.wait_for(rf" \* Detected change in '{project.root / 'views.py'}', reloading")
    assert server.log.count(f" * Restarting with {backend}") >= 2
    assert server.log.count(" * Running on") == 1  # the supervisor announces once


def test_same_size_edits_in_quick_succession_are_never_served_stale(project: Project) -> None:
    project.start(reloader_type="watchfiles" if "watchfiles" in available_watchers() else "stat")
    project.child_pid()
    for version in range(31, 36):  # same length each time, several saves within a second
        project.write("views.py", f"VERSION = {version}\n")
        project.wait_for_body(lambda s, b, v=version: b.startswith(f"{v} "))  # type: ignore[misc]


def test_the_environment_variable_chooses_the_watcher(project: Project) -> None:
    server = project.start(reloader_type="auto", env={"WSGIDEV_RELOADER_TYPE": "stat"})
    server.wait_for(r" \* Restarting with stat")


def test_a_syntax_error_is_served_until_the_fix(project: Project) -> None:
    server = project.start()
    first = project.child_pid()
    project.write("views.py", "VERSION = (\n")
    _status, body = project.wait_for_body(lambda s, b: s == 500)
    assert "Internal Server Error" in body
    assert "SyntaxError" in body
    assert "views.py" in body
    assert _gone(first)
    project.write("views.py", "VERSION = 3\n")
    project.wait_for_body(lambda s, b: s == 200 and b.startswith("3 "))
    # The terminal showed the error once, however many requests saw it.
    assert server.log.count("SyntaxError") == 1


def test_an_import_error_shows_in_the_debugger_page(project: Project) -> None:
    project.start(use_debugger=True)
    project.child_pid()
    project.write("views.py", "import no_such_module_for_reload_test\nVERSION = 4\n")
    project.wait_for_body(lambda s, b: s == 500)
    status, body = project.get(accept="text/html")
    assert status == 500
    assert "no_such_module_for_reload_test" in body
    assert "<html" in body.lower()
    project.write("views.py", "VERSION = 5\n")
    project.wait_for_body(lambda s, b: s == 200 and b.startswith("5 "))


def test_with_the_debugger_an_import_error_is_in_the_terminal_once(project: Project) -> None:
    server = project.start(use_debugger=True)
    project.child_pid()
    project.write("views.py", "import no_such_module_for_reload_test\nVERSION = 4\n")
    project.wait_for_body(lambda s, b: s == 500)
    for _ in range(3):
        assert project.get(accept="text/html")[0] == 500
    server.wait_for(r"The same error as logged above")
    assert server.log.count("Traceback (most recent call last)") == 1, server.log
    assert server.log.count("\nModuleNotFoundError") == 1, server.log


HTTPS_RELOAD_LOSS = (
    "known defect, rarer now: under CPU load (three busy processes on two cores) one run in "
    "about 80 still loses one request over HTTPS during a reload (RemoteDisconnected on a fresh "
    "connection); the cause found so far (one-shot readiness dropped when the loop stops) is fixed"
)


@pytest.mark.parametrize(
    "scheme",
    [
        "http",
        pytest.param("https", marks=pytest.mark.xfail(reason=HTTPS_RELOAD_LOSS, strict=False)),
    ],
)
def test_requests_during_reloads_never_fail(project: Project, scheme: str) -> None:
    # Over HTTPS a client the retiring child accepted may still be in its TLS handshake while
    # the next child starts and takes the CPU: it must be answered, not dropped.
    if scheme == "https":
        pytest.importorskip("cryptography")
        project.start(threaded=True, ssl_context="adhoc")
    else:
        project.start(threaded=True)
    project.child_pid()
    failures: list[str] = []
    answers: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and len(answers) < 5000:
            try:
                status, body = project.get()
            except OSError as exc:
                failures.append(repr(exc))
                continue
            if status != 200:
                failures.append(f"{status} {body[:200]}")
            answers.append(body)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for version in range(10, 14):
            project.write("views.py", f"VERSION = {version}\n")
            project.wait_for_body(lambda s, b, v=version: b.startswith(f"{v} "))  # type: ignore[misc]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    pids = {body.rpartition("pid=")[2] for body in answers}
    assert len(pids) >= 4, "the requests spanned every restart"


def test_extra_files_reload_and_excluded_files_do_not(project: Project) -> None:
    project.write("templates/page.html", "<p>1</p>")
    project.write("scratch.py", "X = 1\n")
    project.write("views.py", "import scratch\nVERSION = 1\n")
    server = project.start(
        extra_files=[str(project.root / "templates")],
        exclude_patterns=["*/scratch.py"],
    )
    first = project.child_pid()
    project.write("scratch.py", "X = 2\n")
    time.sleep(1.0)  # ten stat ticks: enough to have noticed it
    assert project.child_pid() == first
    project.write("templates/page.html", "<p>2</p>")
    server.wait_for(r"Detected change in '.*page\.html'")
    project.wait_for_body(lambda s, b: s == 200 and int(b.rpartition("pid=")[2]) != first)


@pytest.mark.parametrize("backend", ["watchfiles", "watchdog"])
def test_a_burst_of_saves_restarts_once(project: Project, backend: str) -> None:
    _needs(backend)
    server = project.start(reloader_type=backend)
    project.child_pid()
    for version in range(20, 25):
        project.write("views.py", f"VERSION = {version}\n")
        time.sleep(0.005)
    project.wait_for_body(lambda s, b: b.startswith("24 "))
    time.sleep(1.0)
    assert server.log.count("Detected change in") == 1, server.log


def test_sighup_reloads(project: Project) -> None:
    server = project.start()
    first = project.child_pid()
    server.signal(signal.SIGHUP)
    project.wait_for_body(lambda s, b: s == 200 and int(b.rpartition("pid=")[2]) != first)
    assert _gone(first)


def test_enter_in_the_terminal_reloads(project: Project) -> None:
    try:
        terminal, tty = pty.openpty()
    except OSError as exc:  # a container without /dev/ptmx
        pytest.skip(f"no pseudo-terminal here: {exc}")
    try:
        project.start(stdin=tty)
        first = project.child_pid()
        os.write(terminal, b"\n")
        project.wait_for_body(lambda s, b: s == 200 and int(b.rpartition("pid=")[2]) != first)
    finally:
        os.close(terminal)
        os.close(tty)


def test_ctrl_c_stops_supervisor_and_child(project: Project) -> None:
    server = project.start()
    child = project.child_pid()
    assert server.stop() == 0
    assert _gone(child)
    assert "Traceback" not in server.log


def _spares(pid: int) -> list[int]:
    """The PIDs of ``pid``'s children started as warm spares (Linux's /proc)."""
    from wsgidev._reload.protocol import STANDBY_ENV

    spares = []
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                if any(item.startswith(f"{STANDBY_ENV}=".encode()) for item in environ):
                    spares.append(int(child))
    return spares


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2])
def test_ctrl_c_while_a_spare_child_starts_prints_nothing(project: Project, delay: float) -> None:
    """The terminal's Ctrl+C goes to the whole foreground process group. A spare child is
    still starting Python when it lands (an uncatchable crash at that point), so the spare lives
    in a session of its own and only the supervisor decides when it stops."""
    server = project.start()
    project.child_pid()  # serving
    supervisor = server.proc.pid
    deadline = time.monotonic() + 15
    spares: list[int] = []
    while not spares and time.monotonic() < deadline:
        spares = _spares(supervisor)
        if not spares:
            time.sleep(0.005)  # poll: the spare is started STANDBY_DELAY after the child serves
    assert spares, "no spare child was started"
    time.sleep(delay)  # Ctrl+C at a varying point of the spare's start-up
    assert os.getsid(spares[0]) != os.getsid(supervisor)
    assert server.stop() == 0
    assert "Traceback" not in server.log and "Fatal Python error" not in server.log, server.log


def test_sigterm_to_the_supervisor_alone_stops_both(project: Project) -> None:
    server = project.start()
    child = project.child_pid()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0
    assert _gone(child)
    assert "Traceback" not in server.log


def _crashed_answer(project: Project, cause: str) -> str:
    """The 500 served after the child died: prompt, and naming how it died and what to do."""
    _status, body = project.wait_for_body(lambda s, b: s == 500, timeout=5)
    assert cause in body
    assert "save" in body.lower() and "SIGHUP" in body
    return body


def test_a_crashed_child_is_reported_and_served_until_a_change(project: Project) -> None:
    server = project.start()
    child = project.child_pid()
    with pytest.raises((http.client.HTTPException, OSError)):
        project.get("/crash")
    server.wait_for(r"server process exited with status 7; restarting after the next change")
    assert _gone(child)
    _crashed_answer(project, "exited with status 7")
    time.sleep(0.5)
    for _ in range(3):  # every later request is answered at once, not left in the backlog
        assert project.get()[0] == 500
    assert server.log.count(" * Restarting with") == 1, "not restarted in a loop"
    assert server.log.count("exited with status 7") == 1
    project.write("views.py", "VERSION = 8\n")
    project.wait_for_body(lambda s, b: s == 200 and b.startswith("8 "))


@pytest.mark.xfail(
    strict=False,
    reason="intermittent in full-suite CI runs: after the crash, the process that reports it "
    "sometimes never noticed the save of the module outside the project; never reproduced "
    "alone. Suspected cause, now fixed: a save landing after the start-up check but before "
    "the event watcher listened was lost (a catch-up comparison of modification times now "
    "runs once the watcher listens); kept xfail until full runs confirm it",
)
def test_after_a_crash_modules_outside_the_project_are_still_watched(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "helper.py").write_text("WORD = 'one'\n")
    project.write("views.py", "import helper\nVERSION = helper.WORD\n")
    server = project.start(env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(outside)])})
    project.child_pid()
    with pytest.raises((http.client.HTTPException, OSError)):
        project.get("/crash")
    _crashed_answer(project, "exited with status 7")
    (outside / "helper.py").write_text("WORD = 'two'\n")
    server.wait_for(r"Detected change in '.*helper\.py'")
    project.wait_for_body(lambda s, b: s == 200 and b.startswith("two "))


def test_a_killed_child_is_reported_and_restarted_after_a_change(project: Project) -> None:
    server = project.start()
    child = project.child_pid()
    os.kill(child, signal.SIGKILL)
    server.wait_for(r"server process was killed by signal 9 \(SIGKILL\)")
    _crashed_answer(project, "killed by signal 9 (SIGKILL)")
    time.sleep(0.5)
    assert server.log.count(" * Restarting with") == 1, "not restarted in a loop"
    project.write("views.py", "VERSION = 6\n")
    project.wait_for_body(lambda s, b: s == 200 and b.startswith("6 "))


def test_sighup_restarts_a_crashed_child(project: Project) -> None:
    server = project.start()
    child = project.child_pid()
    os.kill(child, signal.SIGKILL)
    _crashed_answer(project, "killed by signal 9")
    server.signal(signal.SIGHUP)
    assert project.child_pid() != child


def test_cli_reload_serves_an_app_that_fails_to_import_at_start(project: Project) -> None:
    project.write("views.py", "VERSION = (\n")
    project.write("web.py", "from views import VERSION\n\n" + APP.split("if __name__")[0])
    server = project.start_cli()
    _status, body = project.wait_for_body(lambda s, b: s == 500)
    assert "SyntaxError" in body
    project.write("views.py", "VERSION = 7\n")
    project.wait_for_body(lambda s, b: s == 200 and b.startswith("7 "))
    assert server.log.count(" * Running on") == 1


def _first_frame(traceback_text: str) -> str:
    """The first ``File ...`` line after the last "Traceback (most recent call last):"."""
    after = traceback_text.rpartition("Traceback (most recent call last):")[2]
    return next(line.strip() for line in after.splitlines() if line.strip().startswith("File "))


@pytest.mark.parametrize("debugger", [False, True], ids=["plain", "debugger"])
def test_an_import_error_under_the_cli_starts_at_the_users_frame(
    project: Project, debugger: bool
) -> None:
    project.write("views.py", "import no_such_module_for_reload_test\nVERSION = 9\n")
    project.write("web.py", "from views import VERSION\n\n" + APP.split("if __name__")[0])
    launcher = Path(sys.executable).with_name("wsgidev")
    if not launcher.is_file():
        pytest.skip("the wsgidev console script is not installed beside this interpreter")
    server = project.start_cli(*(["--debug"] if debugger else []), launcher=[str(launcher)])
    _status, plain = project.wait_for_body(lambda s, b: s == 500)
    _status, page = project.get(accept="text/html")
    # As Python prints it for the user's module: no launcher, CLI or reloader frames first.
    expected = f'File "{project.root / "web.py"}", line 1, in <module>'
    assert _first_frame(server.log) == expected, server.log
    for shown in (server.log, plain, page):
        assert "cli.py" not in shown
        assert f"_reload{os.sep}child.py" not in shown
        assert f'"{launcher}"' not in shown and f"{launcher}</" not in shown
    if not debugger:
        assert _first_frame(plain) == expected


@pytest.mark.parametrize("tls", ["adhoc", "cert"])
def test_cli_reload_over_https_serves_an_import_error(project: Project, tls: str) -> None:
    pytest.importorskip("cryptography")

    from wsgidev._tls import make_ssl_devcert

    project.write("views.py", "VERSION = (\n")
    project.write("web.py", "from views import VERSION\n\n" + APP.split("if __name__")[0])
    if tls == "adhoc":
        flags = ["--adhoc"]
    else:
        cert, key = make_ssl_devcert(str(project.root / "dev"))
        flags = ["--cert", cert, "--key", key]
    server = project.start_cli(*flags)
    assert server.url.startswith("https://")
    status, body = project.get()
    assert status == 500 and "SyntaxError" in body, server.log
    project.write("views.py", "VERSION = 10\n")
    # Ask once the error server has handed over: this test is about what is served, not about
    # connections caught in the hand-over itself.
    server.wait_for(r"Detected change in '.*views\.py'")
    deadline = time.monotonic() + 10
    while server.log.count(" * Restarting with") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    status, body = project.get()
    assert (status, body[:3]) == (200, "10 "), server.log


def test_a_crash_with_an_ssl_context_object_waits_for_a_change(project: Project) -> None:
    """An SSLContext cannot reach a new process: no 500 over TLS then, but one clear report."""
    pytest.importorskip("cryptography")
    import ssl

    from wsgidev._tls import make_ssl_devcert

    cert, key = make_ssl_devcert(str(project.root / "dev"))
    context_made_here = f"ssl_context=load_ssl_context({cert!r}, {key!r}), **options"
    tls_app = APP.replace("**options", context_made_here)
    project.write("tls_app.py", "from wsgidev._tls import load_ssl_context\n" + tls_app)
    server = project.start(sys.executable, "tls_app.py")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def get(path: str = "/") -> tuple[int, str]:
        conn = http.client.HTTPSConnection(server.host, server.port, timeout=10, context=context)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    assert get()[0] == 200
    with pytest.raises((http.client.HTTPException, OSError)):
        get("/crash")
    server.wait_for(r"server process exited with status 7")
    time.sleep(1.0)
    assert server.log.count("exited with status") == 1, server.log
    project.write("views.py", "VERSION = 11\n")
    server.wait_for(r"Detected change in '.*views\.py'")
    status, body = get()
    assert (status, body[:3]) == (200, "11 "), server.log
