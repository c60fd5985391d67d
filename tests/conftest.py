"""Shared fixtures: ``call_app`` runs a WSGI callable in process, ``live_server`` starts a real one.

``live_server("crash", "--debugger")`` runs ``python -m tests.apps crash --debugger`` on port 0,
reads the URL from the ` * Running on` line, and stops the process at teardown. Its log is printed
when the test fails.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Started in the background by a non-interactive shell (a CI runner), this process gets SIGINT
# ignored, and every server it starts would inherit that: a server that relies on
# KeyboardInterrupt (waitress-serve, Werkzeug) would then never stop on the tests' Ctrl+C.
# A process with a handler passes the default disposition to its children, as a terminal does.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
RUNNING_ON = re.compile(r" \* Running on (?P<url>(?:https?://\S+|unix://\S+))")


@dataclass
class Response:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def call_app(
    app: Callable[..., Any],
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    **environ: Any,
) -> Response:
    """Call ``app`` once as a WSGI server would and return what it answered, body consumed."""
    path, _, query = path.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.errors": sys.stderr,
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
        else:
            env["HTTP_" + key] = value
    env.update(environ)
    setup_testing_defaults(env)
    captured: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and captured.get("sent"):
            raise exc_info[1].with_traceback(exc_info[2])
        captured["status"] = status
        captured["headers"] = response_headers
        return lambda data: chunks.append(data)

    chunks: list[bytes] = []
    iterable = app(env, start_response)
    try:
        for chunk in iterable:
            captured["sent"] = True
            chunks.append(chunk)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return Response(captured["status"], list(captured["headers"]), b"".join(chunks))


@dataclass
class LiveServer:
    """A ``python -m tests.apps`` process and what it printed."""

    proc: subprocess.Popen[bytes]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 15.0, start: int = 0) -> re.Match[str]:
        """Wait until a line printed after line ``start`` matches ``pattern``; fail after ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reading()):
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout}s; log:\n{''.join(self.lines)}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def _reading(self) -> bool:
        return any(
            t.name == f"live-server-{self.proc.pid}" and t.is_alive() for t in threading.enumerate()
        )

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        """Ctrl+C the server (SIGINT to its process group), then kill it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._close_output()
        return self.proc.returncode

    def _close_output(self) -> None:
        # An unclosed pipe is a ResourceWarning, which filterwarnings=error turns into a failure.
        for thread in threading.enumerate():
            if thread.name == f"live-server-{self.proc.pid}":
                thread.join(5)
        if self.proc.stdout is not None and not self._reading():
            self.proc.stdout.close()


def finish_process(proc: subprocess.Popen[Any], timeout: float, interrupt: bool = False) -> Any:
    """Wait for ``proc`` (Ctrl+C its process group first when ``interrupt``) and return its output.

    A process still running after ``timeout`` seconds is killed by PID with its whole group, so
    it never outlives the test, and the test fails with what it printed.
    """
    if interrupt:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)[0] or ""
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0] or ""
        raise AssertionError(f"still running after {timeout}s; killed. Output:\n{output}") from None


def checkout_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with unbuffered, colourless output and the checkout importable,
    then ``env`` on top."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    full_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), full_env.get("PYTHONPATH", "")])
    )
    full_env.update(env or {})
    return full_env


def start_server_process(
    command: list[str], ready: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 20.0
) -> LiveServer:
    """Run ``command`` in ``cwd`` with exactly ``env`` (in its own process group, so ``stop`` can
    Ctrl+C it) and wait for a line whose group ``url`` says where it listens; if none comes within
    ``timeout`` seconds the process is stopped and the wait's error raised."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    server = LiveServer(proc)
    threading.Thread(target=server._pump, name=f"live-server-{proc.pid}", daemon=True).start()
    try:
        server.url = server.wait_for(ready, timeout)["url"]
    except BaseException:
        server.stop()
        raise
    return server


def start_live_server(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 20.0
) -> LiveServer:
    """Start ``python -m tests.apps *args`` and wait for its ` * Running on` line."""
    command = [sys.executable, "-m", "tests.apps", *args]
    return start_server_process(
        command, RUNNING_ON.pattern, checkout_env(env), cwd or ROOT, timeout
    )


def gunicorn_command(target: str) -> list[str]:
    """gunicorn with gthread workers on a free port of 127.0.0.1; never touches the home folder."""
    import gunicorn.config

    command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--threads", "4"]
    command += ["--workers", "1", "--bind", "127.0.0.1:0", "--graceful-timeout", "2"]
    if any(setting.name == "control_socket_disable" for setting in gunicorn.config.KNOWN_SETTINGS):
        command.append("--no-control-socket")  # newer gunicorn would open one in the home folder
    return [*command, target]


def waitress_command(target: str) -> list[str]:
    """waitress with 4 threads on a free port of 127.0.0.1."""
    return [sys.executable, "-m", "waitress", "--listen=127.0.0.1:0", "--threads=4", target]


GUNICORN_READY = r"Listening at: (?P<url>http://127\.0\.0\.1:\d+)"
WAITRESS_READY = r"Serving on (?P<url>http://127\.0\.0\.1:\d+)"


def print_logs_if_failed(request: pytest.FixtureRequest, servers: list[LiveServer]) -> None:
    """After a failed test, print what each of ``servers`` logged."""
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for server in servers:
            print(f"--- log of {' '.join(map(str, server.proc.args))} ---\n{server.log}")


@contextlib.contextmanager
def stopped_after(
    request: pytest.FixtureRequest, start: Callable[..., LiveServer]
) -> Iterator[Callable[..., LiveServer]]:
    """``start``, keeping every server it starts: on exit they are stopped, and their logs
    printed if the test failed."""
    started: list[LiveServer] = []

    def tracked(*args: Any, **kwargs: Any) -> LiveServer:
        server = start(*args, **kwargs)
        started.append(server)
        return server

    try:
        yield tracked
    finally:
        for server in started:
            server.stop()
        print_logs_if_failed(request, started)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True, scope="session")
def private_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Debugger PIN files (and anything else cached) go to a throwaway folder, not the user's."""
    cache = tmp_path_factory.mktemp("cache-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(cache))
    yield cache
    patch.undo()


@pytest.fixture
def live_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``live_server("hello", "--threaded")`` -> a running :class:`LiveServer`."""
    with stopped_after(request, start_live_server) as start:
        yield start


# -- the wsgidev command, as a user runs it ------------------------------------------------------


def cli_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    # wsgidev itself must import; the project under test is found through the current directory.
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cli(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a ``python -m wsgidev`` command that is expected to end by itself."""
    return subprocess.run(
        [sys.executable, "-m", "wsgidev", *args],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def serve_cli() -> Iterator[Callable[..., LiveServer]]:
    """Factory: start ``python -m wsgidev ARGS --port 0`` in ``cwd`` and wait for its URL."""
    started: list[LiveServer] = []

    def start(
        *args: str,
        cwd: Path,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> LiveServer:
        proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "wsgidev"]), *args, "--port", "0"],
            cwd=cwd,
            env={**cli_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = LiveServer(proc)
        started.append(server)
        name = f"live-server-{proc.pid}"
        threading.Thread(target=server._pump, name=name, daemon=True).start()
        server.url = server.wait_for(RUNNING_ON.pattern, timeout=20)["url"]
        return server

    yield start
    for server in started:
        server.stop()
        if server.proc.stdout is not None:
            server.proc.stdout.close()


def get(
    server: LiveServer,
    path: str = "/",
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
