"""The console and its security through a real server over real sockets on 127.0.0.1.

Every refused request carries code that would create a file; the file must not exist afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import LiveServer, start_server_process

pytestmark = pytest.mark.live

PIN_LINE = r" \* Debugger PIN: (\d{3}-\d{3}-\d{3})"
CRASH_HTML = {"Accept": "text/html"}


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """Keep PIN files in a throwaway cache folder, and let no PIN from the caller leak in."""
    return {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "WSGIDEV_DEBUG_PIN": "",
        "WERKZEUG_DEBUG_PIN": "",
    }


def fetch(
    server: LiveServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        all_headers = {"Host": f"127.0.0.1:{server.port}", **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


class Session:
    """A browser's view of one traceback page: its secret, frame ids and PIN token."""

    def __init__(self, server: LiveServer, path: str = "/boom") -> None:
        self.server = server
        status, _, body = fetch(server, "GET", path, headers=CRASH_HTML)
        assert status == 500
        page = body.decode()
        # Empty when the page was served for a Host or client the console refuses.
        self.secret = re.search(r'data-secret="([^"]*)"', page)[1]  # type: ignore[index]
        self.frame_ids = re.findall(r'data-frame-id="(\d+)"', page)
        self.token = ""

    def command(
        self, fields: dict[str, str], headers: dict[str, str] | None = None, **kw: Any
    ) -> tuple[int, dict[str, Any], http.client.HTTPMessage]:
        proof = {"token": self.token} if self.token else {}
        body = urlencode({"s": self.secret, **proof, **fields}).encode()
        all_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        all_headers.update(headers or {})
        status, response_headers, raw = fetch(
            self.server, "POST", "/boom?__debugger__=yes", body, all_headers
        )
        return status, json.loads(raw), response_headers

    def login(self, pin: str) -> None:
        status, data, headers = self.command({"cmd": "pinauth", "pin": pin})
        assert status == 200 and data["auth"] is True, data
        assert "Set-Cookie" not in headers
        self.token = data["token"]

    def run(self, code: str, frame: str | None = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        status, data, _ = self.command({"cmd": code, "frm": frame or self.frame_ids[-1]}, **kw)
        return status, data


def start_crash(
    live_server: Callable[..., LiveServer], env: dict[str, str], *args: str
) -> tuple[LiveServer, str]:
    server = live_server("crash", "--debugger", *args, env=env)
    return server, server.wait_for(PIN_LINE)[1]


def text_of(html: str) -> str:
    return (
        re.sub(r"<[^>]+>", "", html)
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def test_ctrl_c_stops_a_runaway_command_and_the_console_keeps_working(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str]
) -> None:
    """``while True: pass`` would spin a server thread forever; the page's Ctrl+C stops it."""
    server, pin = start_crash(live_server, cache_env, "--threaded")
    session = Session(server)
    session.login(pin)
    answers: list[tuple[int, dict[str, Any]]] = []
    runaway = threading.Thread(
        target=lambda: answers.append(session.run("spins = 0\nwhile True:\n    spins += 1\n"))
    )
    runaway.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the command is seen running
            status, data = session.run("1 + 1")
            if "still running" in text_of(data["html"]):
                break
        assert "Press Ctrl+C to stop it" in text_of(data["html"])
        frame = session.frame_ids[-1]
        status, data, _ = session.command({"cmd": "", "interrupt": "1", "frm": frame})
        assert status == 200 and "stopping the running command" in text_of(data["html"])
        runaway.join(10)
        assert not runaway.is_alive(), "Ctrl+C did not stop the command"
    finally:
        if runaway.is_alive():  # never leave the server spinning: stop it for the next test
            server.stop()
            runaway.join(10)
    ((status, data),) = answers
    assert status == 200 and "KeyboardInterrupt" in text_of(data["html"])
    # The control: the console works on, and the command really ran until it was stopped.
    assert int(text_of(session.run("spins")[1]["html"])) > 0
    assert text_of(session.run("user_id + 1")[1]["html"]) == "43"


def test_the_console_runs_code_in_the_frame_that_raised(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str]
) -> None:
    server, pin = start_crash(live_server, cache_env)
    session = Session(server)
    session.login(pin)
    status, data = session.run("user_id + 1")
    assert status == 200 and text_of(data["html"]) == "43"
    assert text_of(session.run("environ['PATH_INFO']")[1]["html"]) == "'/boom'"
    assert session.run("def double(n):")[1]["more"] is True
    session.run("    return n * user_id")
    session.run("")
    assert text_of(session.run("double(2)")[1]["html"]) == "84"


def test_every_refusal_over_the_wire_runs_nothing(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    server, pin = start_crash(live_server, cache_env)
    session = Session(server)
    probe = tmp_path / "probe"
    code = f"open({str(probe)!r}, 'w').close()"

    # No PIN token yet.
    assert session.run(code)[0] == 401
    session.login(pin)
    frame = session.frame_ids[-1]
    # The same command by GET, fields in the URL (what Werkzeug's page sends).
    query = urlencode(
        {
            "__debugger__": "yes",
            "cmd": code,
            "frm": frame,
            "s": session.secret,
            "token": session.token,
        }
    )
    status, _, _ = fetch(server, "GET", f"/boom?{query}")
    assert status == 405
    # Missing and wrong secret.
    assert session.command({"cmd": code, "frm": frame, "s": ""})[0] == 403
    assert session.command({"cmd": code, "frm": frame, "s": "0" * len(session.secret)})[0] == 403
    # DNS rebinding: a foreign Host.
    status, data = session.run(code, headers={"Host": f"attacker.example:{server.port}"})
    assert status == 400 and "trusted_hosts" in data["error"]
    # Cross-site.
    assert session.run(code, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert session.run(code, headers={"Origin": "http://attacker.example"})[0] == 403
    # A frame that does not exist.
    assert session.run(code, frame="999999")[0] == 410
    assert not probe.exists()

    # The control: IPv6 loopback as Host, everything else right, and the probe runs.
    status, data = session.run(code, headers={"Host": f"[::1]:{server.port}"})
    assert status == 200, data
    assert probe.exists()


def test_wrong_pins_lock_the_debugger_and_the_page_is_told(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    server, pin = start_crash(live_server, cache_env)
    session = Session(server)
    for _ in range(10):
        status, data, _ = session.command({"cmd": "pinauth", "pin": "000-000-000"})
    assert status == 403 and data["locked"] is True
    status, data, headers = session.command({"cmd": "pinauth", "pin": pin})
    assert data["auth"] is False and "Set-Cookie" not in headers
    probe = tmp_path / "probe"
    status, data = session.run(f"open({str(probe)!r}, 'w').close()")
    assert status == 403 and data["reason"] == "locked"
    assert "Restart the server" in data["error"]
    assert not probe.exists()
    server.wait_for("locked after 10 wrong PINs")
    # The page's first question (PIN state) already tells it the debugger is locked.
    status, data, _ = session.command({"cmd": "pinauth"})
    assert status == 200 and data["locked"] is True


def test_the_pin_is_printed_at_startup_and_again_on_request(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    server, pin = start_crash(live_server, cache_env)
    session = Session(server)
    lines_before = len(server.lines)
    status, data, _ = session.command({"cmd": "printpin"})
    assert status == 200 and data == {"printed": True}
    assert server.wait_for(PIN_LINE, start=lines_before)[1] == pin
    (pin_file,) = (tmp_path / "cache" / "wsgidev" / "pins").iterdir()
    assert stat.S_IMODE(pin_file.stat().st_mode) == 0o600


def test_the_pin_survives_a_restart_and_an_old_page_is_told_to_reload(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str]
) -> None:
    first, pin = start_crash(live_server, cache_env)
    old_page = Session(first)
    first.stop()
    second, second_pin = start_crash(live_server, cache_env)
    assert second_pin == pin
    old_page.server = second
    status, data, _ = old_page.command({"cmd": "pinauth", "pin": pin})
    assert status == 403 and data["reason"] == "restarted"
    assert "restarted" in data["error"] and "reload the page" in data["error"]


def test_the_pin_environment_variable(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str]
) -> None:
    server, pin = start_crash(live_server, {**cache_env, "WSGIDEV_DEBUG_PIN": "135-792-468"})
    assert pin == "135-792-468"
    session = Session(server)
    session.login("135792468")
    assert session.run("user_id")[0] == 200


def test_pin_off_runs_without_asking(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str]
) -> None:
    server = live_server("crash", "--debugger", env={**cache_env, "WSGIDEV_DEBUG_PIN": "off"})
    server.wait_for("Debugger PIN disabled")
    session = Session(server)
    status, data = session.run("user_id")
    assert status == 200 and text_of(data["html"]) == "42"


def test_an_evicted_traceback_says_it_expired(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str]
) -> None:
    server, pin = start_crash(live_server, cache_env)
    first = Session(server)
    first.login(pin)
    assert first.run("user_id")[0] == 200
    for _ in range(33):  # one more than the default max_tracebacks
        assert fetch(server, "GET", "/boom", headers=CRASH_HTML)[0] == 500
    status, data = first.run("user_id")
    assert status == 410
    assert (
        "this traceback has expired" in data["error"].lower() and "reload the page" in data["error"]
    )


def test_the_standalone_console(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str]
) -> None:
    server, pin = start_crash(live_server, cache_env)
    status, headers, body = fetch(server, "GET", "/console")
    assert status == 200
    assert "script-src 'nonce-" in headers["Content-Security-Policy"]
    session = Session(server)
    session.secret = re.search(r'data-secret="([^"]+)"', body.decode())[1]  # type: ignore[index]
    session.login(pin)
    status, data, _ = session.command({"cmd": "21 * 2"})
    assert status == 200 and text_of(data["html"]) == "42"


def test_no_console_without_evalex(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    server = live_server("crash", "--debugger", "--no-evalex", env=cache_env)
    # /console is the app's own URL then (this app raises on every path).
    status, _, body = fetch(server, "GET", "/console", headers=CRASH_HTML)
    assert status == 500 and b"Interactive console" not in body
    session = Session(server)
    probe = tmp_path / "probe"
    status, _, _ = session.command({"cmd": f"open({str(probe)!r}, 'w').close()", "frm": "1"})
    assert status in (401, 403)
    assert not probe.exists()


def test_a_multiprocess_server_renders_the_page_and_explains_the_console_is_unavailable(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    server, pin = start_crash(live_server, cache_env, "--processes", "2")
    status, _, body = fetch(server, "GET", "/boom", headers=CRASH_HTML)
    assert status == 500 and b'data-multiprocess="true"' in body
    session = Session(server)
    probe = tmp_path / "probe"
    status, data = session.run(f"open({str(probe)!r}, 'w').close()")
    assert status == 409 and data["reason"] == "multiprocess"
    assert "another process" in data["error"]
    status, data, _ = session.command({"cmd": "pinauth", "pin": pin})
    assert status == 409
    assert not probe.exists()


@pytest.mark.slow
def test_under_the_reloader_the_pin_is_printed_and_kept_across_restarts(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    trigger = tmp_path / "settings.txt"
    trigger.write_text("one")
    server = live_server(
        "crash",
        "--debugger",
        "--reload",
        "--reloader-type",
        "stat",
        "--reloader-interval",
        "0.2",
        "--extra-file",
        str(trigger),
        env=cache_env,
    )
    pin = server.wait_for(PIN_LINE)[1]
    session = Session(server)
    session.login(pin)
    restarted_at = len(server.lines)
    time.sleep(0.3)  # let the watcher take its first look before the change
    trigger.write_text("two")
    server.wait_for("Detected change", start=restarted_at)
    assert server.wait_for(PIN_LINE, start=restarted_at, timeout=20)[1] == pin
    # The token still holds after the restart; the page's secret does not, and it says so.
    status, data, _ = session.command({"cmd": "pinauth"})
    assert status == 403 and data["reason"] == "restarted"
    fresh = Session(server)
    fresh.token = session.token
    assert fresh.command({"cmd": "pinauth"})[1]["auth"] is True


GOOD_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"{text}"]
"""


def start_cli(project: Path, env: dict[str, str], *args: str) -> LiveServer:
    """``python -m wsgidev run ...`` in ``project``, read like the live_server fixture's servers."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **env}
    command = [sys.executable, "-m", "wsgidev", "run", *args]
    return start_server_process(command, r"Running on (?P<url>http://\S+)", full_env, project)


@pytest.mark.slow
def test_the_pin_stays_the_same_while_the_app_fails_to_import_under_the_reloader(
    cache_env: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    module = project / "site_app.py"
    module.write_text(GOOD_APP.format(text="one"))
    args = ("site_app:app", "--reload", "--debug", "--port", "0", "--reloader-type", "stat")
    server = start_cli(project, cache_env, *args)
    try:
        pin = server.wait_for(PIN_LINE)[1]
        broken_at = len(server.lines)
        time.sleep(0.5)  # let the watcher take its first look before the change
        module.write_text("def app(:\n")
        server.wait_for("failed to start", start=broken_at, timeout=20)
        assert server.wait_for(PIN_LINE, start=broken_at, timeout=20)[1] == pin
        for _ in range(3):  # every request answers with the error; the terminal is not flooded
            assert fetch(server, "GET", "/", headers=CRASH_HTML)[0] == 500
        server.wait_for("same error as logged above", start=broken_at)
        fixed_at = len(server.lines)
        module.write_text(GOOD_APP.format(text="two"))
        assert server.wait_for(PIN_LINE, start=fixed_at, timeout=20)[1] == pin
    finally:
        server.stop()
    if server.proc.returncode not in (0, -2):
        pytest.fail(f"the server exited with {server.proc.returncode}:\n{server.log}")


def test_a_client_outside_trusted_clients_is_refused_whatever_the_pin(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    server = live_server("console_guarded", env={**cache_env, "WSGIDEV_DEBUG_PIN": "123-123-123"})
    session = Session(server)
    assert session.secret == ""  # the page does not hand the secret to such a client
    probe = tmp_path / "probe"
    status, data, headers = session.command({"cmd": "pinauth", "pin": "123-123-123"})
    assert status == 403 and data["reason"] == "client" and "Set-Cookie" not in headers
    status, data = session.run(f"open({str(probe)!r}, 'w').close()")
    assert status == 403 and data["reason"] == "client"
    assert not probe.exists()


def test_a_page_fetched_under_a_foreign_host_has_no_secret_and_its_console_says_why(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    # DNS rebinding: attacker.example now resolves to 127.0.0.1, and its script reads the page.
    server, _pin = start_crash(live_server, cache_env)
    foreign = {"Host": f"attacker.example:{server.port}"}
    status, headers, body = fetch(server, "GET", "/boom", headers={**CRASH_HTML, **foreign})
    assert status == 500 and 'data-secret=""' in body.decode()
    retained = headers["X-Wsgidev-Traceback"].split("/", 3)[3]
    status, _, body = fetch(server, "GET", "/" + retained, headers={**CRASH_HTML, **foreign})
    assert status == 200 and 'data-secret=""' in body.decode()
    # What the page's console sends first gets the explanation, and how to trust the host.
    probe = tmp_path / "probe"
    form = urlencode({"cmd": f"open({str(probe)!r}, 'w').close()", "s": ""}).encode()
    status, _, raw = fetch(
        server,
        "POST",
        "/boom?__debugger__=yes",
        form,
        {**foreign, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400 and "trusted_hosts.append('attacker.example')" in json.loads(raw)["error"]
    assert not probe.exists()
    # The same server still gives its own host the secret.
    assert Session(server).secret


def test_a_multiprocess_server_answers_every_page_link_from_any_process(
    live_server: Callable[..., LiveServer], cache_env: dict[str, str], tmp_path: Path
) -> None:
    """Each request runs in its own forked child: the page's link must not depend on which."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    server, _ = start_crash(live_server, {**cache_env, "TMPDIR": str(temp)}, "--processes", "2")
    status, headers, body = fetch(server, "GET", "/boom", headers=CRASH_HTML)
    assert status == 500
    url = headers["X-Wsgidev-Traceback"]
    assert f'<a href="{url.replace("&", "&amp;")}">' in body.decode()
    assert server.wait_for(r"\* Debugger page: (\S+)")[1] == url
    path = url.split(str(server.port), 1)[1]
    for _ in range(3):  # a fresh child answers each time
        status, page_headers, page = fetch(server, "GET", path, headers=CRASH_HTML)
        assert status == 200 and b"KeyError" in page
        nonce = re.search(r"'nonce-([^']+)'", page_headers["Content-Security-Policy"])[1]  # type: ignore[index]
        assert f'nonce="{nonce}"'.encode() in page
        assert b'data-secret=""' in page and b'data-multiprocess="true"' in page
    status, _, text = fetch(server, "GET", path + "&format=text")
    assert status == 200 and text.startswith(b"Traceback") and url.encode() in text
    status, _, data = fetch(server, "GET", path + "&format=json")
    assert status == 200 and json.loads(data)["traceback_url"] == url
    status, _, _ = fetch(server, "GET", path[:-4] + "xxxx")
    assert status == 404
    # The error list and MCP see it from any process too.
    status, _, listed = fetch(
        server, "GET", "/?__debugger__=yes&cmd=errors", headers={"Accept": "application/json"}
    )
    (entry,) = json.loads(listed)["errors"]
    assert entry["page_url"] == url and entry["console_available"] is False
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_error", "arguments": {"id": entry["id"]}},
    }
    status, _, answer = fetch(
        server,
        "POST",
        "/__wsgidev__/mcp",
        json.dumps(call).encode(),
        {"Content-Type": "application/json"},
    )
    assert json.loads(answer)["result"]["content"][0]["text"].startswith("# `KeyError`")
    # The pages live in one private folder, which goes when the server does.
    (folder,) = temp.iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(page.stat().st_mode) == 0o600 for page in folder.iterdir())
    assert server.stop() == 0 or not folder.exists()
    assert not folder.exists()
