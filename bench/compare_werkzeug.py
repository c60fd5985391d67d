"""The README's "What behaves better" list, measured against the Werkzeug installed here.

    python bench/compare_werkzeug.py

Each scenario runs one small program twice, once importing Werkzeug and once importing wsgidev
(only the imports differ), on 127.0.0.1 or ::1, and prints what each did as a Markdown table.
The test suite checks wsgidev's side of each line (tests/integration/test_what_behaves_better.py);
Werkzeug's side is what this script reports for the version installed, since a later Werkzeug
may change it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
PIN = "246-801-357"
BROWSER = {"Accept": "text/html"}

SERVED = """
import sys

from werkzeug.debug import DebuggedApplication
from werkzeug.serving import run_simple


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/partial":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            yield b"first part\\n"
            raise RuntimeError("the database went away mid-response")

        return body()
    if path == "/boom":
        order_id = 42
        raise LookupError(f"order {order_id} is gone")
    data = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


host = sys.argv[2]
run_simple(host, 0, DebuggedApplication(app, evalex=True), threaded=sys.argv[1] == "threaded")
"""


class Server:
    """One program under one package; its output is collected as it runs."""

    def __init__(self, folder: Path, package: str, mode: str, host: str = "127.0.0.1") -> None:
        program = folder / f"{package}_{mode}_{host.replace(':', '_')}.py"
        program.write_text(SERVED.replace("werkzeug", package))
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT),
            "WERKZEUG_DEBUG_PIN": PIN,
            "WSGIDEV_DEBUG_PIN": PIN,
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(program), mode, host],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(20):
            self.stop()
            raise SystemExit(f"{package} did not start:\n{self.log}")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            found = re.search(r"Running on (http://\S+)", line)
            if found and not self.url:
                self.url = found.group(1).rstrip("/")
                self._ready.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or 0

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@contextlib.contextmanager
def serving(folder: Path, package: str, mode: str, host: str = "127.0.0.1") -> Iterator[Server]:
    server = Server(folder, package, mode, host)
    try:
        yield server
    finally:
        server.stop()


def read_response(sock: socket.socket) -> bool:
    """Read one response with a Content-Length body; False when the server closed instead."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(65536)
        if not block:
            return False
        data += block
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        block = sock.recv(65536)
        if not block:
            return False
        body += block
    return True


def keeps_connections_alive(server: Server) -> str:
    with socket.create_connection(server.address, timeout=2) as sock:
        answers = 0
        for _ in range(2):
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if not read_response(sock):
                    break
            except OSError:
                break
            answers += 1
    return "yes" if answers == 2 else "no: one request per connection"


def cut_response(server: Server) -> str:
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(b"GET /partial HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (block := sock.recv(65536)):
            data += block
    if data.endswith(b"0\r\n\r\n"):
        return "no: the stream ends with its last chunk, as if complete"
    return "yes: no last chunk, the client sees a truncation"


def secret_of(page: str) -> str:
    found = re.search(r'SECRET = "(\w+)"', page) or re.search(r'data-secret="(\w+)"', page)
    return found.group(1) if found else ""


def auth_ok(response: requests.Response) -> bool:
    try:
        return response.status_code == 200 and response.json().get("auth") is True
    except ValueError:
        return False


def console_on_ipv6(server: Server) -> str:
    with requests.Session() as session:
        page = session.get(server.url + "/boom", headers=BROWSER, timeout=10).text
        fields = {"__debugger__": "yes", "cmd": "pinauth", "pin": PIN, "s": secret_of(page)}
        by_get = session.get(server.url + "/", params=fields, timeout=10)
        by_post = session.post(
            server.url + "/?__debugger__=yes",
            data={k: v for k, v in fields.items() if k != "__debugger__"},
            headers={"Origin": server.url},
            timeout=10,
        )
    accepted = auth_ok(by_get) or auth_ok(by_post)
    return "yes" if accepted else f"no: the PIN check answers {by_get.status_code}"


def pin_printed(server: Server) -> str:
    requests.get(server.url + "/", timeout=10)
    time.sleep(0.2)
    return "yes" if "Debugger PIN" in server.log else "no: only in a reloader's child"


def code_in_url(server: Server, probe: Path) -> str:
    code = f"open({str(probe)!r}, 'w').close()"
    with requests.Session() as session:
        page = session.get(server.url + "/boom", headers=BROWSER, timeout=10).text
        frames = re.findall(r'id="frame-(\d+)"', page) or re.findall(r'data-frame-id="(\d+)"', page)
        debugger = {"__debugger__": "yes", "s": secret_of(page)}
        auth = session.get(
            server.url + "/", params={**debugger, "cmd": "pinauth", "pin": PIN}, timeout=10
        )
        token = auth.json().get("token", "") if auth_ok(auth) else ""
        session.get(
            server.url + "/",
            params={**debugger, "cmd": code, "frm": frames[-1] if frames else "0", "token": token},
            headers={"Origin": server.url},
            timeout=10,
        )
    time.sleep(0.2)
    ran = probe.exists()
    logged = "open(" in server.log
    with contextlib.suppress(FileNotFoundError):
        probe.unlink()
    if ran:
        return "no: runs it" + (", and the access log keeps it" if logged else "")
    return "yes: refused (405), never logged" if not logged else "refused, but logged"


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def main() -> None:
    rows: list[tuple[str, Callable[[Path, str], str]]] = []

    def on(
        mode: str, check: Callable[[Server], str], host: str = "127.0.0.1"
    ) -> Callable[[Path, str], str]:
        def run(folder: Path, package: str) -> str:
            with serving(folder, package, mode, host) as server:
                return check(server)

        return run

    rows.append(
        ("one-at-a-time server keeps a connection alive", on("single", keeps_connections_alive))
    )
    rows.append(
        (
            "an error after the first byte leaves the response visibly cut",
            on("threaded", cut_response),
        )
    )
    if has_ipv6_loopback():
        rows.append(
            (
                "the console accepts its PIN on the IPv6 loopback",
                on("threaded", console_on_ipv6, "::1"),
            )
        )
    rows.append(("the PIN is printed without the reloader", on("threaded", pin_printed)))

    def url_code(folder: Path, package: str) -> str:
        with serving(folder, package, "threaded") as server:
            return code_in_url(server, folder / f"ran-{package}")

    rows.append(("console code sent in a URL is refused", url_code))
    import werkzeug

    version = getattr(werkzeug, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("werkzeug")
    print(f"| | Werkzeug {version} | wsgidev |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for title, run in rows:
            print(f"| {title} | {run(folder, 'werkzeug')} | {run(folder, 'wsgidev')} |", flush=True)


if __name__ == "__main__":
    main()
