"""The debugger refuses every request it should, and nothing runs when it does.

Each refusal test sends code that would create a file (the probe) and checks that it did not;
a control test shows the same request, done right, does create it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.conftest import Response, call_app
from wsgidev.debug import DebuggedApplication, security
from wsgidev.debug.commands import console_page, dispatch_command
from wsgidev.debug.security import (
    DebuggerSecurity,
    client_is_trusted,
    get_pin_and_cookie_name,
    host_is_trusted,
    parse_networks,
    prepare_for_serving,
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("WSGIDEV_DEBUG_PIN", raising=False)
    monkeypatch.delenv("WERKZEUG_DEBUG_PIN", raising=False)
    return cache


def sample_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


@dataclass
class FakeFrame:
    globals: dict[str, Any]
    locals: dict[str, Any]
    environ: dict[str, Any]


@dataclass
class FakeDebugger:
    """Stands in for DebuggedApplication: the attributes the commands read."""

    security: DebuggerSecurity
    evalex: bool = True
    console_init_func: Callable[[], dict[str, Any]] | None = None
    frames: dict[int, FakeFrame] = field(default_factory=dict)

    @property
    def secret(self) -> str:
        return self.security.secret

    @property
    def trusted_hosts(self) -> list[str]:
        return self.security.trusted_hosts

    def find_frame(self, frame_id: int) -> FakeFrame | None:
        return self.frames.get(frame_id)

    __hash__ = object.__hash__


def make_debugger(**options: Any) -> FakeDebugger:
    evalex = options.pop("evalex", True)
    options.setdefault("pin_logging", False)
    debugger = FakeDebugger(DebuggerSecurity(sample_app, **options), evalex)
    debugger.frames[7] = FakeFrame({"__name__": "app"}, {"x": 41}, {"PATH_INFO": "/boom"})
    return debugger


def send(
    debugger: FakeDebugger,
    fields: dict[str, str],
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    in_query: bool = False,
    token: str | None = None,
    **environ: Any,
) -> tuple[Response, dict[str, Any]]:
    if token is not None:
        fields = {**fields, "token": token}
    encoded = urlencode(fields)
    path = "/boom?__debugger__=yes" + ("&" + encoded if in_query else "")
    all_headers = {"Host": "127.0.0.1:5000", "Content-Type": "application/x-www-form-urlencoded"}
    all_headers.update(headers or {})
    environ.setdefault("REMOTE_ADDR", "127.0.0.1")
    response = call_app(
        lambda env, sr: dispatch_command(debugger, env)(env, sr),  # type: ignore[arg-type]
        path,
        method=method,
        headers={k: v for k, v in all_headers.items() if v is not None},
        body=b"" if in_query else encoded.encode(),
        **environ,
    )
    return response, json.loads(response.body)


def login(debugger: FakeDebugger) -> str:
    """Type the right PIN; return the token the page sends back with every command."""
    response, data = send(
        debugger, {"cmd": "pinauth", "pin": debugger.security.pin or "", "s": debugger.secret}
    )
    assert data["auth"] is True
    assert response.header("Set-Cookie") is None  # the proof is never a cookie
    return str(data["token"])


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    return tmp_path / "probe-created"


def probe_code(probe: Path) -> str:
    return f"open({str(probe)!r}, 'w').close()"


def run_probe(
    debugger: FakeDebugger, probe: Path, token: str | None, *, frame: str = "7", **kwargs: Any
) -> tuple[Response, dict[str, Any]]:
    fields = {"cmd": probe_code(probe), "frm": frame, "s": kwargs.pop("secret", debugger.secret)}
    fields.update(kwargs.pop("fields", {}))
    return send(debugger, fields, token=token, **kwargs)


# -- the control: done right, the probe runs -------------------------------------------------


def test_control_the_probe_runs_when_everything_is_right(probe: Path) -> None:
    debugger = make_debugger()
    response, data = run_probe(debugger, probe, login(debugger))
    assert response.code == 200, data
    assert probe.exists()
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Cross-Origin-Resource-Policy") == "same-origin"


def test_a_frame_console_evaluates_in_the_frame_and_keeps_its_names() -> None:
    debugger = make_debugger()
    token = login(debugger)
    fields = {"frm": "7", "s": debugger.secret}
    _, data = send(debugger, {**fields, "cmd": "y = x + 1"}, token=token)
    _, data = send(debugger, {**fields, "cmd": "y, environ['PATH_INFO']"}, token=token)
    assert "42" in data["html"] and "/boom" in data["html"]
    assert data["more"] is False and data["prompt"] == ">>> "
    _, data = send(debugger, {**fields, "cmd": "def f():"}, token=token)
    assert data["more"] is True and data["prompt"] == "... "


# -- every refusal, with the probe ------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "wrong", "x" * 40])
def test_missing_or_wrong_secret_is_403(probe: Path, secret: str | None) -> None:
    debugger = make_debugger()
    token = login(debugger)
    fields = {"cmd": probe_code(probe), "frm": "7"}
    if secret is not None:
        fields["s"] = secret
    response, data = send(debugger, fields, token=token)
    assert response.code == 403 and data["reason"] == "secret"
    assert not probe.exists()


def test_a_secret_from_before_a_restart_says_so(probe: Path) -> None:
    old = make_debugger()
    debugger = make_debugger()  # the same app started again: new secret, same PIN file
    response, data = run_probe(debugger, probe, login(debugger), secret=old.secret)
    assert response.code == 403 and data["reason"] == "restarted"
    assert "restarted" in data["error"] and "reload the page" in data["error"]
    assert not probe.exists()


def test_the_same_command_by_get_is_refused(probe: Path) -> None:
    debugger = make_debugger()
    token = login(debugger)
    fields = {"cmd": probe_code(probe), "frm": "7", "s": debugger.secret}
    response, data = send(debugger, fields, method="GET", in_query=True, token=token)
    assert response.code == 405 and response.header("Allow") == "POST"
    assert data["reason"] == "method"
    assert not probe.exists()


def test_fields_in_the_query_string_of_a_post_are_ignored(probe: Path) -> None:
    debugger = make_debugger()
    token = login(debugger)
    fields = {"cmd": probe_code(probe), "frm": "7", "s": debugger.secret}
    response, data = send(debugger, fields, in_query=True, token=token)
    assert response.code == 403 and data["reason"] == "secret"
    assert not probe.exists()


def test_no_pin_token_is_401(probe: Path) -> None:
    debugger = make_debugger()
    response, data = run_probe(debugger, probe, None)
    assert response.code == 401 and data["reason"] == "pin"
    assert not probe.exists()


def test_the_browsers_cookies_and_the_secret_without_a_token_run_nothing(probe: Path) -> None:
    """The attack: after the PIN was typed, a page on another port of this host gets every
    cookie the browser holds for the host and fetches the secret from /console. None of that
    may authorise a command; only the token, kept per origin by the page, does."""
    debugger = make_debugger()
    token = login(debugger)
    name = debugger.security.pin_cookie_name
    stolen = f"{name}={token}; {name}={token.replace('.', '|')}; session=abc"
    response, data = run_probe(debugger, probe, None, headers={"Cookie": stolen})
    assert response.code == 401 and data["reason"] == "pin"
    assert not probe.exists()
    # The control: the same request with the token in its body runs.
    response, data = run_probe(debugger, probe, token, headers={"Cookie": stolen})
    assert response.code == 200, data
    assert probe.exists()


def test_pinauth_without_a_pin_reports_whether_the_token_is_still_good() -> None:
    debugger = make_debugger()
    fields = {"cmd": "pinauth", "s": debugger.secret}
    _, data = send(debugger, fields)
    assert data["auth"] is False and "token" not in data
    _, data = send(debugger, fields, token=login(debugger))
    assert data["auth"] is True and "token" not in data


@pytest.mark.parametrize(
    "token",
    ["garbage", "123.abc", f"{int(time.time())}.{'0' * 64}", ".", "", "1.2.3", "١٢٣.abc"],
)
def test_a_forged_pin_token_is_401(probe: Path, token: str) -> None:
    debugger = make_debugger()
    response, data = run_probe(debugger, probe, token)
    assert response.code == 401 and data["reason"] == "pin"
    assert not probe.exists()


def test_an_expired_pin_token_is_401(probe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    debugger = make_debugger()
    issued = time.time() - security.PIN_TOKEN_MAX_AGE - 10
    monkeypatch.setattr(security.time, "time", lambda: issued)
    old = login(debugger)
    monkeypatch.undo()
    response, _data = run_probe(debugger, probe, old)
    assert response.code == 401
    assert not probe.exists()
    response, _data = run_probe(debugger, probe, login(debugger))  # the control: a fresh one runs
    assert response.code == 200 and probe.exists()


def test_a_token_survives_a_restart_as_the_pin_does(probe: Path) -> None:
    token = login(make_debugger())
    restarted = make_debugger()  # a new process: same PIN and key from the private file
    response, data = run_probe(restarted, probe, token)
    assert response.code == 200, data
    assert probe.exists()


def test_a_token_for_another_pin_is_401(probe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "111-111-111")
    first = make_debugger()
    token = login(first)
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "222-222-222")
    second = make_debugger()
    response, _ = run_probe(second, probe, token)
    assert response.code == 401
    assert not probe.exists()


def test_wrong_pins_lock_the_debugger_until_restart(probe: Path) -> None:
    debugger = make_debugger()
    token = login(debugger)
    for attempt in range(1, security.MAX_PIN_FAILURES + 1):
        response, data = send(
            debugger, {"cmd": "pinauth", "pin": "000-000-000", "s": debugger.secret}
        )
        assert data["auth"] is False
        if attempt < security.MAX_PIN_FAILURES:
            assert data["failures_left"] == security.MAX_PIN_FAILURES - attempt
    assert response.code == 403 and data["locked"] is True
    assert "Restart the server" in data["error"]
    # Even the right PIN is refused now, and so is a token that was valid before.
    response, data = send(
        debugger, {"cmd": "pinauth", "pin": debugger.security.pin or "", "s": debugger.secret}
    )
    assert data["auth"] is False and data["locked"] is True
    assert response.header("Set-Cookie") is None
    response, data = run_probe(debugger, probe, token)
    assert response.code == 403 and data["reason"] == "locked"
    assert not probe.exists()
    # A restart (a new instance) unlocks it.
    assert make_debugger().security.try_pin(debugger.security.pin or "") == "ok"


def test_wrong_pins_from_many_threads_at_once_lock_after_exactly_the_limit() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    sec = make_debugger().security
    barrier = threading.Barrier(8, timeout=10)

    def guess(worker: int) -> list[str]:
        barrier.wait()  # all threads start guessing together
        return [sec.try_pin(f"{worker}{n:08d}") for n in range(5)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = [v for batch in pool.map(guess, range(8)) for v in batch]
    assert verdicts.count("wrong") == security.MAX_PIN_FAILURES - 1
    assert verdicts.count("locked") == 40 - (security.MAX_PIN_FAILURES - 1)
    assert sec.try_pin(sec.pin or "") == "locked" and sec.failures_left == 0


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:5000", "localhost.evil.example", "127.0.0.1.nip.io", None],
)
def test_an_untrusted_host_is_400_and_says_how_to_add_it(probe: Path, host: str | None) -> None:
    debugger = make_debugger()
    token = login(debugger)
    no_host = {"HTTP_HOST": ""} if host is None else {}
    response, data = run_probe(debugger, probe, token, headers={"Host": host}, **no_host)
    assert response.code == 400 and data["reason"] == "host"
    assert "trusted_hosts.append(" in data["error"]
    assert not probe.exists()


@pytest.mark.parametrize(
    "host", ["[::1]:5000", "[::1]", "localhost:8000", "api.localhost", "127.0.0.1"]
)
def test_loopback_hosts_are_accepted(probe: Path, host: str) -> None:
    debugger = make_debugger()
    token = login(debugger)
    response, data = run_probe(debugger, probe, token, headers={"Host": host})
    assert response.code == 200, data
    assert probe.exists()


def test_a_host_added_to_trusted_hosts_is_accepted(probe: Path) -> None:
    debugger = make_debugger()
    debugger.security.trusted_hosts.append(".dev.example")
    token = login(debugger)
    response, _ = run_probe(debugger, probe, token, headers={"Host": "api.dev.example:8000"})
    assert response.code == 200 and probe.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:5001"},
        {"Origin": "https://127.0.0.1:5000"},
        {"Origin": "null"},
    ],
)
def test_cross_site_requests_are_refused(probe: Path, headers: dict[str, str]) -> None:
    debugger = make_debugger()
    token = login(debugger)
    response, data = run_probe(debugger, probe, token, headers=headers)
    assert response.code == 403 and data["reason"] == "cross-site"
    assert not probe.exists()


def test_a_same_origin_request_is_accepted(probe: Path) -> None:
    debugger = make_debugger()
    token = login(debugger)
    headers = {"Origin": "http://127.0.0.1:5000", "Sec-Fetch-Site": "same-origin"}
    response, _ = run_probe(debugger, probe, token, headers=headers)
    assert response.code == 200 and probe.exists()


def test_an_untrusted_client_is_refused_whatever_the_pin(probe: Path) -> None:
    debugger = make_debugger(trusted_clients=["10.0.0.0/8", "::1"])
    token = login_from(debugger, "10.1.2.3")
    response, data = run_probe(debugger, probe, token, REMOTE_ADDR="127.0.0.1")
    assert response.code == 403 and data["reason"] == "client"
    assert not probe.exists()
    response, _ = run_probe(debugger, probe, token, REMOTE_ADDR="10.1.2.3")
    assert response.code == 200 and probe.exists()


def login_from(debugger: FakeDebugger, address: str) -> str:
    fields = {"cmd": "pinauth", "pin": debugger.security.pin or "", "s": debugger.secret}
    _response, data = send(debugger, fields, REMOTE_ADDR=address)
    assert data["auth"] is True
    return str(data["token"])


def test_an_expired_frame_says_reload(probe: Path) -> None:
    debugger = make_debugger()
    token = login(debugger)
    response, data = run_probe(debugger, probe, token, frame="12345")
    assert response.code == 410 and data["reason"] == "expired"
    assert "this traceback has expired" in data["error"].lower()
    assert "reload the page" in data["error"]
    assert not probe.exists()


def test_an_evicted_frame_forgets_its_console(probe: Path) -> None:
    debugger = make_debugger()
    token = login(debugger)
    send(debugger, {"cmd": "kept = 1", "frm": "7", "s": debugger.secret}, token=token)
    del debugger.frames[7]
    response, _data = run_probe(debugger, probe, token)
    assert response.code == 410 and not probe.exists()


def test_a_multiprocess_server_explains_the_console_is_unavailable(probe: Path) -> None:
    debugger = make_debugger()
    token = login(debugger)
    response, data = run_probe(debugger, probe, token, **{"wsgi.multiprocess": True})
    assert response.code == 409 and data["reason"] == "multiprocess"
    assert "another process" in data["error"]
    assert not probe.exists()


def test_under_several_processes_another_workers_secret_gets_the_real_reason(
    probe: Path,
) -> None:
    # Each worker made its own secret; "the server restarted" would send the user reloading
    # in vain, so a secret of this app from another process gets the multi-process answer.
    page_worker, other_worker = make_debugger(), make_debugger()
    multi = {"wsgi.multiprocess": True}
    for cmd in (probe_code(probe), "printpin"):
        response, data = run_probe(
            other_worker, probe, None, secret=page_worker.secret, **multi, fields={"cmd": cmd}
        )
        assert response.code == 409 and data["reason"] == "multiprocess"
    # A secret that is not this app's is still just wrong.
    response, data = run_probe(other_worker, probe, None, secret="0" * 40, **multi)
    assert response.code == 403 and data["reason"] == "secret"
    assert not probe.exists()


def test_evalex_off_refuses_code(probe: Path) -> None:
    debugger = make_debugger(evalex=False)
    token = login(debugger)
    response, data = run_probe(debugger, probe, token)
    assert response.code == 403 and data["reason"] == "evalex"
    assert not probe.exists()


@pytest.mark.parametrize(
    ("content_type", "status"), [("text/plain", 415), ("multipart/form-data; boundary=x", 415)]
)
def test_a_body_that_is_not_a_form_is_refused(probe: Path, content_type: str, status: int) -> None:
    debugger = make_debugger()
    token = login(debugger)
    response, _ = run_probe(debugger, probe, token, headers={"Content-Type": content_type})
    assert response.code == status and not probe.exists()


def test_a_body_with_too_many_fields_says_so(probe: Path) -> None:
    debugger = make_debugger()
    fields = {f"f{n}": "1" for n in range(40)}
    fields.update(cmd=probe_code(probe), frm="7", s=debugger.secret)
    response, data = send(debugger, fields, token=login(debugger))
    assert response.code == 400 and "at most 16 form fields" in data["error"]
    assert not probe.exists()


def test_an_oversized_body_is_413() -> None:
    debugger = make_debugger()
    response, data = send(debugger, {"cmd": "x" * (2 * 1024 * 1024), "s": debugger.secret})
    assert response.code == 413 and data["reason"] == "body"


# -- the PIN ------------------------------------------------------------------------------


def test_pin_is_random_formatted_and_kept_in_a_private_file(private_cache: Path) -> None:
    pin, cookie_name = get_pin_and_cookie_name(sample_app)
    assert pin is not None and len(pin) == 11 and pin[3] == pin[7] == "-"
    assert pin.replace("-", "").isdigit()
    files = list((private_cache / "wsgidev" / "pins").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    assert get_pin_and_cookie_name(sample_app) == (pin, cookie_name)  # survives a restart
    assert cookie_name.startswith("__wsgidev_pin_")


def test_pin_cannot_be_computed_from_facts_about_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pins = set()
    for n in range(3):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / f"home{n}"))
        pins.add(get_pin_and_cookie_name(sample_app)[0])
    assert len(pins) == 3  # same app, same machine, same user: only the private file decides


def test_a_pin_file_others_can_read_is_not_trusted(private_cache: Path) -> None:
    _pin, _ = get_pin_and_cookie_name(sample_app)
    (path,) = (private_cache / "wsgidev" / "pins").iterdir()
    path.chmod(0o644)
    new_pin, _ = get_pin_and_cookie_name(sample_app)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert new_pin is not None and json.loads(path.read_text())["pin"] == new_pin


def test_the_pin_belongs_to_the_program_not_to_the_wrapped_app(private_cache: Path) -> None:
    # Under the reloader an app that fails to import is replaced by an error app: the PIN
    # printed then must be the one the real app had before and gets again after the fix.
    def error_app(environ: Any, start_response: Any) -> list[bytes]:
        raise RuntimeError("the application failed to start")

    real = DebuggedApplication(sample_app, evalex=True, pin_logging=False)
    failing = DebuggedApplication(error_app, evalex=True, pin_logging=False)
    assert real.pin is not None and failing.pin == real.pin
    assert failing.pin_cookie_name == real.pin_cookie_name
    assert get_pin_and_cookie_name(error_app) == get_pin_and_cookie_name(sample_app)
    assert len(list((private_cache / "wsgidev" / "pins").iterdir())) == 1


def test_another_program_or_folder_gets_its_own_pin(
    private_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin, _ = get_pin_and_cookie_name(sample_app)
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "other_project.py")])
    other_program, _ = get_pin_and_cookie_name(sample_app)
    monkeypatch.chdir(tmp_path)
    other_folder, _ = get_pin_and_cookie_name(sample_app)
    assert len({pin, other_program, other_folder}) == 3
    assert len(list((private_cache / "wsgidev" / "pins").iterdir())) == 3


def test_the_environment_variable_sets_or_disables_the_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "424-242-424")
    assert get_pin_and_cookie_name(sample_app)[0] == "424-242-424"
    assert DebuggerSecurity(sample_app).try_pin("424242424") == "ok"  # dashes are optional
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "off")
    assert get_pin_and_cookie_name(sample_app) == (None, None)  # Werkzeug's shape


def test_werkzeugs_pin_variable_is_honoured_unless_ours_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WERKZEUG_DEBUG_PIN", "999-888-777")
    assert get_pin_and_cookie_name(sample_app)[0] == "999-888-777"
    monkeypatch.setenv("WERKZEUG_DEBUG_PIN", "off")
    assert get_pin_and_cookie_name(sample_app) == (None, None)
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "111-222-333")
    assert get_pin_and_cookie_name(sample_app)[0] == "111-222-333"


def test_pin_off_lets_commands_run_without_a_cookie(
    probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "off")
    response, _ = run_probe(make_debugger(), probe, None)
    assert response.code == 200 and probe.exists()


def test_pin_security_false_lets_commands_run_without_a_cookie(
    probe: Path, private_cache: Path
) -> None:
    response, _ = run_probe(make_debugger(pin_security=False), probe, None)
    assert response.code == 200 and probe.exists()
    assert not (private_cache / "wsgidev").exists()  # no PIN file is made when none is used


def test_the_pin_answers_a_token_for_8_hours_and_no_cookie(monkeypatch: pytest.MonkeyPatch) -> None:
    debugger = make_debugger()
    response, data = send(
        debugger, {"cmd": "pinauth", "pin": debugger.security.pin or "", "s": debugger.secret}
    )
    token = data.pop("token")
    assert data == {"pin_required": True, "locked": False, "auth": True, "failures_left": 10}
    assert response.header("Set-Cookie") is None
    assert security.PIN_TOKEN_MAX_AGE == 8 * 60 * 60
    now = time.time()
    monkeypatch.setattr(security.time, "time", lambda: now + security.PIN_TOKEN_MAX_AGE - 5)
    assert debugger.security.token_is_valid(token)
    monkeypatch.setattr(security.time, "time", lambda: now + security.PIN_TOKEN_MAX_AGE + 5)
    assert not debugger.security.token_is_valid(token)


def test_pinauth_without_a_pin_reports_the_state_without_counting() -> None:
    debugger = make_debugger()
    for _ in range(security.MAX_PIN_FAILURES + 2):
        _, data = send(debugger, {"cmd": "pinauth", "s": debugger.secret})
    assert data == {"pin_required": True, "locked": False, "auth": False, "failures_left": 10}
    _, data = send(debugger, {"cmd": "pinauth", "s": debugger.secret}, token=login(debugger))
    assert data["auth"] is True


def test_pinauth_needs_the_secret() -> None:
    debugger = make_debugger()
    response, _data = send(debugger, {"cmd": "pinauth", "pin": debugger.security.pin or ""})
    assert response.code == 403 and response.header("Set-Cookie") is None


def test_printpin_prints_the_pin_again(caplog: pytest.LogCaptureFixture) -> None:
    debugger = make_debugger(pin_logging=True)
    with caplog.at_level(logging.INFO, logger="wsgidev"):
        response, data = send(debugger, {"cmd": "printpin", "s": debugger.secret})
    assert response.code == 200 and data == {"printed": True}
    assert f" * Debugger PIN: {debugger.security.pin}" in caplog.text


def test_printpin_prints_nothing_when_pin_logging_is_off(caplog: pytest.LogCaptureFixture) -> None:
    # pin_logging=False means the PIN never goes to the log, whoever asks (as in Werkzeug).
    debugger = make_debugger(pin_logging=False)
    with caplog.at_level(logging.INFO, logger="wsgidev"):
        response, data = send(debugger, {"cmd": "printpin", "s": debugger.secret})
    assert response.code == 403 and data["reason"] == "pin-logging"
    assert "pin_logging" in data["error"]
    assert str(debugger.security.pin) not in caplog.text


def test_printpin_by_get_or_without_the_secret_prints_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    debugger = make_debugger()
    with caplog.at_level(logging.INFO, logger="wsgidev"):
        send(debugger, {"cmd": "printpin", "s": debugger.secret}, method="GET", in_query=True)
        send(debugger, {"cmd": "printpin"})
        send(debugger, {"cmd": "printpin", "s": debugger.secret}, headers={"Host": "evil.example"})
    assert "Debugger PIN" not in caplog.text


def test_startup_logging_prints_the_pin(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="wsgidev"):
        sec = DebuggerSecurity(sample_app)
        sec.log_startup()
    assert f" * Debugger PIN: {sec.pin}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wsgidev"):
        DebuggerSecurity(sample_app, pin_logging=False).log_startup()
    assert "PIN" not in caplog.text


# -- completion goes through the same gate ----------------------------------------------------


def test_complete_needs_the_pin_and_completes_frame_names() -> None:
    debugger = make_debugger()
    fields = {"cmd": "complete", "text": "print(x.re", "frm": "7", "s": debugger.secret}
    response, data = send(debugger, fields)
    assert response.code == 401
    response, data = send(debugger, fields, token=login(debugger))
    assert data == {"start": 6, "matches": ["x.real"]}


# -- the standalone console ------------------------------------------------------------------


def test_the_console_page_carries_the_secret_and_a_strict_csp() -> None:
    debugger = make_debugger()
    response = call_app(lambda env, sr: console_page(debugger, env)(env, sr), "/console")  # type: ignore[arg-type]
    assert response.code == 200
    page = response.body.decode()
    assert f'data-secret="{debugger.secret}"' in page
    assert 'data-evalex="true"' in page and 'data-pin-required="true"' in page
    assert "<script>" not in page and "<style>" not in page
    # Scripts and styles only from this response's nonce: not any script of the app's origin.
    csp = response.header("Content-Security-Policy") or ""
    nonce = re.search(r"script-src 'nonce-([\w-]+)';", csp)[1]  # type: ignore[index]
    assert f"style-src 'nonce-{nonce}';" in csp and "'self'" not in csp.split("img-src")[0]
    assert page.count(f'nonce="{nonce}"') == 2 and "frame-ancestors 'none'" in csp
    assert response.header("X-Frame-Options") == "DENY"
    assert response.header("Cross-Origin-Resource-Policy") == "same-origin"
    assert response.header("Cross-Origin-Opener-Policy") == "same-origin"
    second = call_app(lambda env, sr: console_page(debugger, env)(env, sr), "/console")  # type: ignore[arg-type]
    assert nonce not in (second.header("Content-Security-Policy") or "")


def test_the_console_page_refuses_an_untrusted_host() -> None:
    debugger = make_debugger()
    response = call_app(
        lambda env, sr: console_page(debugger, env)(env, sr),  # type: ignore[arg-type]
        "/console",
        headers={"Host": "evil.example"},
    )
    assert response.code == 400
    assert debugger.secret not in response.body.decode()
    assert "trusted_hosts" in response.body.decode()


def test_the_standalone_console_runs_in_the_init_namespace() -> None:
    debugger = make_debugger()
    debugger.console_init_func = lambda: {"answer": 42}
    token = login(debugger)
    _, data = send(debugger, {"cmd": "answer + 1", "s": debugger.secret}, token=token)
    assert ">43<" in data["html"]
    fields = {"cmd": "answer + 2", "frm": "0", "s": debugger.secret}  # Werkzeug's frame 0
    _, data = send(debugger, fields, token=token)
    assert ">44<" in data["html"]


# -- the pure checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("localhost", True),
        ("LOCALHOST:5000", True),
        ("app.localhost:8000", True),
        ("127.0.0.1:80", True),
        ("[::1]:5000", True),
        ("[::1]", True),
        ("localhost.", True),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("evillocalhost", False),
        ("127.0.0.2", False),
        ("[::2]:5000", False),
        ("", False),
        (None, False),
    ],
)
def test_default_trusted_hosts(host: str | None, trusted: bool) -> None:
    assert host_is_trusted(host, security.DEFAULT_TRUSTED_HOSTS) is trusted


@pytest.mark.parametrize(
    ("entry", "host", "trusted"),
    [
        (".example.com", "example.com", True),
        (".example.com", "a.b.example.com:443", True),
        ("*.example.com", "a.example.com", True),
        (".example.com", "badexample.com", False),
        ("example.com", "a.example.com", False),
        ("::1", "[::1]:80", True),
        ("Dev.Box", "dev.box:5000", True),
    ],
)
def test_trusted_host_entries(entry: str, host: str, trusted: bool) -> None:
    assert host_is_trusted(host, [entry]) is trusted


def test_trusted_clients() -> None:
    networks = parse_networks(["192.168.1.0/24", "::1"])
    assert client_is_trusted("192.168.1.20", networks)
    assert client_is_trusted("::ffff:192.168.1.20", networks)
    assert client_is_trusted("::1", networks)
    assert not client_is_trusted("192.168.2.1", networks)
    assert not client_is_trusted("", networks)
    assert client_is_trusted("anything", ())
    with pytest.raises(ValueError, match="trusted_clients"):
        parse_networks(["not-a-network"])


def test_prepare_for_serving_trusts_the_start_name_and_warns_off_loopback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    debugger = make_debugger()
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        prepare_for_serving(debugger, "127.0.0.1")
        prepare_for_serving(debugger, "devbox.lan")
        prepare_for_serving(debugger, "0.0.0.0")
        prepare_for_serving(debugger, "::")
    assert "devbox.lan" in debugger.security.trusted_hosts
    assert "0.0.0.0" not in debugger.security.trusted_hosts
    assert "[::]" not in debugger.security.trusted_hosts
    assert debugger.security.trusted_hosts.count("127.0.0.1") == 1
    warnings = [r.getMessage() for r in caplog.records if "not loopback" in r.getMessage()]
    assert len(warnings) == 3  # devbox.lan, 0.0.0.0 and ::
    assert "Anyone who can reach this port and knows the PIN can run code" in warnings[0]


def test_no_warning_on_loopback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        for host in ("127.0.0.1", "localhost", "::1", "[::1]", "unix:///tmp/s.sock"):
            prepare_for_serving(make_debugger(), host)
    assert "not loopback" not in caplog.text


def test_secret_pin_and_token_comparisons_are_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whatever decides must be hmac.compare_digest: a spy records what it compared.
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    sec = DebuggerSecurity(sample_app, pin_logging=False)
    last = "1" if sec.secret[-1] != "1" else "2"
    assert sec.check_secret(sec.secret[:-1] + last) is not None
    assert sec.check_secret(sec.secret) is None
    assert sec.try_pin("000-000-000") == "wrong" and sec.try_pin(sec.pin or "") == "ok"
    token = sec.make_token()
    assert sec.token_is_valid(token)
    assert sec.token_is_valid(token[:-1] + ("x" if token[-1] != "x" else "y")) is False
    secret, pin = sec.secret.encode(), (sec.pin or "").replace("-", "").encode()
    assert sum(secret in pair for pair in compared) == 2
    assert sum(pin in pair for pair in compared) == 2
    assert len(compared) == 6  # secret twice, PIN twice, token signature twice


# -- through the real DebuggedApplication ----------------------------------------------------


def crashing_app(environ: Any, start_response: Any) -> list[bytes]:
    token = "s3cr3t"  # noqa: F841 - a local the console can read
    raise RuntimeError("boom")


def debugged(**options: Any) -> Any:
    from wsgidev.debug import DebuggedApplication

    options.setdefault("pin_logging", False)
    return DebuggedApplication(crashing_app, evalex=True, **options)


def page_of(app: Any) -> tuple[str, str]:
    page = call_app(app, "/x", headers={"Accept": "text/html"}).body.decode()
    secret = re.search(r'data-secret="([^"]+)"', page)[1]  # type: ignore[index]
    return secret, re.findall(r'data-frame-id="(\d+)"', page)[-1]


def command(app: Any, fields: dict[str, str], token: str = "", method: str = "POST") -> Response:
    headers = {"Host": "localhost:5000", "Content-Type": "application/x-www-form-urlencoded"}
    if token:
        fields = {**fields, "token": token}
    return call_app(
        app,
        "/x?__debugger__=yes",
        method=method,
        headers=headers,
        body=urlencode(fields).encode(),
        REMOTE_ADDR="127.0.0.1",
    )


def test_debugged_application_runs_code_only_with_secret_and_pin(probe: Path) -> None:
    app = debugged()
    secret, frame = page_of(app)
    code = probe_code(probe)
    assert command(app, {"cmd": code, "frm": frame}).code == 403
    assert command(app, {"cmd": code, "frm": frame, "s": secret}).code == 401
    assert not probe.exists()
    login_response = command(app, {"cmd": "pinauth", "pin": app.pin, "s": secret})
    token = json.loads(login_response.body)["token"]
    shown = json.loads(command(app, {"cmd": "token", "frm": frame, "s": secret}, token).body)
    assert "s3cr3t" in shown["html"]
    assert command(app, {"cmd": code, "frm": frame, "s": secret}, token).code == 200
    assert probe.exists()


def test_debugged_application_contract_attributes() -> None:
    app = debugged()
    pin, cookie_name = get_pin_and_cookie_name(crashing_app)
    assert app.pin == pin and app.pin_cookie_name == cookie_name
    app.trusted_hosts.append("dev.example")
    assert "dev.example" in app.security.trusted_hosts
    with pytest.raises(AttributeError):
        app.pin = "1"


def test_a_restarted_debugged_application_tells_the_old_page(probe: Path) -> None:
    old_secret, frame = page_of(debugged())
    response = command(debugged(), {"cmd": probe_code(probe), "frm": frame, "s": old_secret})
    assert response.code == 403 and json.loads(response.body)["reason"] == "restarted"
    assert not probe.exists()


@pytest.mark.parametrize(
    "name",
    [
        "../wsgidev/__init__.py",
        "..%2Fpyproject.toml",
        "/etc/passwd",
        "console.js/..",
        "nope.js",
        "",
    ],
)
def test_only_the_debuggers_own_assets_are_served(name: str) -> None:
    response = call_app(debugged(), f"/?__debugger__=yes&cmd=resource&f={name}")
    assert response.code == 404


def test_the_console_assets_are_served() -> None:
    for name in ("console.js", "console.css"):
        response = call_app(debugged(), f"/?__debugger__=yes&cmd=resource&f={name}")
        assert response.code == 200 and response.body


def test_get_pin_and_cookie_name_is_exported_where_werkzeug_has_it() -> None:
    from wsgidev.debug import get_pin_and_cookie_name as exported

    assert exported is get_pin_and_cookie_name


# -- run_simple(use_debugger=True) -------------------------------------------------------------


class _Built(Exception):
    def __init__(self, application: Any) -> None:
        self.application = application


def built_by_run_simple(monkeypatch: pytest.MonkeyPatch, hostname: str, **options: Any) -> Any:
    """The application run_simple would serve, captured just before it binds a socket."""
    from wsgidev import serving

    def capture(host: str, port: int, application: Any, **kwargs: Any) -> Any:
        raise _Built(application)

    monkeypatch.setattr(serving, "_make_server_or_exit", capture)
    with pytest.raises(_Built) as built:
        serving.run_simple(hostname, 0, sample_app, use_debugger=True, **options)
    return built.value.application


def test_run_simple_trusts_the_name_it_was_started_with(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        app = built_by_run_simple(monkeypatch, "devbox.lan")
    assert "devbox.lan" in app.trusted_hosts
    assert "Anyone who can reach this port and knows the PIN can run code" in caplog.text


def test_run_simple_on_every_interface_adds_no_host_but_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        app = built_by_run_simple(monkeypatch, "0.0.0.0")
    assert app.trusted_hosts == list(security.DEFAULT_TRUSTED_HOSTS)
    assert "not loopback" in caplog.text


def test_run_simple_on_loopback_does_not_warn_nor_without_evalex(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        built_by_run_simple(monkeypatch, "127.0.0.1")
        built_by_run_simple(monkeypatch, "devbox.lan", use_evalex=False)
    assert "not loopback" not in caplog.text


def test_a_failing_console_init_func_is_reported_not_raised() -> None:
    debugger = make_debugger()

    def broken() -> dict[str, Any]:
        raise LookupError("no settings")

    debugger.console_init_func = broken
    token = login(debugger)
    response, data = send(debugger, {"cmd": "1", "s": debugger.secret}, token=token)
    assert response.code == 500 and data["reason"] == "init"
    assert "LookupError: no settings" in data["error"]


def test_interrupt_needs_the_same_checks_and_clears_the_block() -> None:
    debugger = make_debugger()
    fields = {"cmd": "", "interrupt": "1", "frm": "7", "s": debugger.secret}
    response, _ = send(debugger, fields)
    assert response.code == 401
    token = login(debugger)
    send(debugger, {"cmd": "if True:", "frm": "7", "s": debugger.secret}, token=token)
    _, data = send(debugger, fields, token=token)
    assert "KeyboardInterrupt" in data["html"] and data["prompt"] == ">>> "


# -- the page itself, for a host or client the console would refuse ---------------------------


def crash_page(app: Any, path: str = "/x", **environ: Any) -> Response:
    headers = {"Accept": "text/html", **environ.pop("headers", {})}
    return call_app(app, path, headers=headers, **environ)


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example:5000"])
def test_a_page_served_for_an_untrusted_host_carries_no_secret(host: str) -> None:
    # DNS rebinding: the attacker's page, now same-origin with the server, reads the error page.
    app = debugged()
    response = crash_page(app, headers={"Host": host})
    assert response.code == 500
    assert app.secret not in response.body.decode()
    assert 'data-secret=""' in response.body.decode()
    # The page's own URL, fetched again under that Host, does not have it either.
    retained = "/?" + (response.header("X-Wsgidev-Traceback") or "").split("?", 1)[1]
    again = crash_page(app, retained, headers={"Host": host})
    assert again.code == 200 and app.secret not in again.body.decode()
    # The same page for a trusted Host carries it, so the console works there.
    trusted = crash_page(app, retained, headers={"Host": "localhost:5000"})
    assert f'data-secret="{app.secret}"' in trusted.body.decode()


def test_a_page_for_a_client_outside_trusted_clients_carries_no_secret() -> None:
    app = debugged(trusted_clients=["10.0.0.0/8"])
    outside = crash_page(app, REMOTE_ADDR="192.0.2.7")
    assert app.secret not in outside.body.decode()
    inside = crash_page(app, REMOTE_ADDR="10.1.2.3")
    assert f'data-secret="{app.secret}"' in inside.body.decode()


# -- the Host header, read strictly --------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "[::1]evil.example",
        "[::1]:x",
        "localhost:abc",
        "localhost:5000:1",
        "127.0.0.1:5000/evil",
        "localhost:123456",
        "localhost,evil.example",
        "local host",
    ],
)
def test_a_malformed_host_header_is_not_trusted(probe: Path, host: str) -> None:
    assert not host_is_trusted(host, security.DEFAULT_TRUSTED_HOSTS)
    debugger = make_debugger()
    token = login(debugger)
    response, data = run_probe(debugger, probe, token, headers={"Host": host})
    assert response.code == 400 and data["reason"] == "host"
    assert not probe.exists()


@pytest.mark.parametrize("host", ["[0:0:0:0:0:0:0:1]:5000", "[0::1]", "LocalHost.:8000"])
def test_equivalent_spellings_of_a_trusted_host_are_trusted(host: str) -> None:
    assert host_is_trusted(host, security.DEFAULT_TRUSTED_HOSTS)


# -- the PIN file, where another local user may have been first ---------------------------------


def pins_dir(cache: Path) -> Path:
    return cache / "wsgidev" / "pins"


def test_a_pin_folder_others_can_write_to_is_not_used(
    private_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = pins_dir(private_cache)
    folder.mkdir(parents=True)
    folder.chmod(0o777)  # anyone could swap the PIN file in here
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        pin, _ = get_pin_and_cookie_name(sample_app)
    assert pin is not None and re.fullmatch(r"\d{3}-\d{3}-\d{3}", pin)
    assert list(folder.iterdir()) == []
    assert "writable by other users" in caplog.text


def test_a_symlink_in_place_of_the_pin_file_is_not_followed(
    private_cache: Path, tmp_path: Path
) -> None:
    from wsgidev.debug._pin import app_key

    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps({"pin": "000-000-000", "cookie_key": "00" * 32}))
    planted.chmod(0o600)
    folder = pins_dir(private_cache)
    folder.mkdir(parents=True, mode=0o700)
    (folder / f"{app_key(sample_app)}.json").symlink_to(planted)
    pin, _ = get_pin_and_cookie_name(sample_app)
    assert pin != "000-000-000"
    assert json.loads(planted.read_text())["pin"] == "000-000-000"  # not written through


def test_a_fifo_in_place_of_the_pin_file_does_not_hang_the_server(private_cache: Path) -> None:
    import threading

    from wsgidev.debug._pin import app_key

    folder = pins_dir(private_cache)
    folder.mkdir(parents=True, mode=0o700)
    os.mkfifo(folder / f"{app_key(sample_app)}.json", 0o600)
    found: list[object] = []
    worker = threading.Thread(target=lambda: found.append(get_pin_and_cookie_name(sample_app)))
    worker.daemon = True
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the thread ends, then fail
        with open(folder / f"{app_key(sample_app)}.json", "w"):
            pass
        worker.join(timeout=5)
        pytest.fail("reading the PIN file blocked on a FIFO")
    ((pin, _),) = found  # type: ignore[misc]
    assert isinstance(pin, str) and re.fullmatch(r"\d{3}-\d{3}-\d{3}", pin)


@pytest.mark.parametrize("value", ["-", " - - ", "--- ---"])
def test_a_pin_that_is_only_dashes_and_spaces_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    # Typing nothing would have matched it: such a PIN protects nothing.
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", value)
    with caplog.at_level(logging.WARNING, logger="wsgidev"):
        sec = DebuggerSecurity(sample_app, pin_logging=False)
        assert sec.try_pin("") == "wrong"
        assert sec.try_pin(value) == "wrong"
    assert sec.pin is not None and re.fullmatch(r"\d{3}-\d{3}-\d{3}", sec.pin)
    assert "WSGIDEV_DEBUG_PIN" in caplog.text


# -- the server's request log ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        (
            "/x?__debugger__=yes&s=SECRET&pin=123&cmd=code",
            "/x?__debugger__=yes&s=***&pin=***&cmd=***",
        ),
        # A parser decodes the names, so the log must too.
        ("/x?%73=SECRET&p%69n=123&c%6Dd=code", "/x?%73=***&p%69n=***&c%6Dd=***"),
        (
            "/x?__debugger__=yes&cmd=resource&f=console.js",
            "/x?__debugger__=yes&cmd=resource&f=console.js",
        ),
        ("/x?cmd=resourc%65x", "/x?cmd=***"),
        ("/x?sort=1&pins=2", "/x?sort=1&pins=2"),
    ],
)
def test_the_request_log_never_shows_the_debuggers_fields(target: str, logged: str) -> None:
    from wsgidev._http.log import redact_target

    assert redact_target(target) == logged


def test_the_terminal_links_the_page_only_through_a_trusted_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Anyone reaching the port picks the Host header: a link to their site in the developer's
    # terminal would lead to a look-alike page asking for the PIN.
    app = debugged()
    with caplog.at_level(logging.ERROR, logger="wsgidev"):
        crash_page(app, headers={"Host": "pin-check.evil.example"}, SERVER_NAME="127.0.0.1")
    (link,) = re.findall(r"[Dd]ebugger page: (\S+)", caplog.text)
    assert link.startswith("http://127.0.0.1/?__debugger__=yes&tb=")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="wsgidev"):
        crash_page(app, headers={"Host": "localhost:5000"})
    (link,) = re.findall(r"[Dd]ebugger page: (\S+)", caplog.text)
    assert link.startswith("http://localhost:5000/?__debugger__=yes&tb=")


def test_the_error_log_cannot_be_steered_by_the_request(caplog: pytest.LogCaptureFixture) -> None:
    # The path is the client's: escape sequences (a hidden link, a cleared screen) and line
    # breaks (a forged "Debugger page:" line) must reach the terminal as visible text.
    def crash(environ: Any, start_response: Any) -> list[bytes]:
        raise ValueError("bad input \x1b[2J")

    from wsgidev.debug import DebuggedApplication

    app = DebuggedApplication(crash, pin_logging=False)
    path = "/a\x1b]8;;http://evil.example/\x1b\\click\n * Debugger page: http://evil.example/"
    with caplog.at_level(logging.ERROR, logger="wsgidev"):
        call_app(app, path, headers={"Accept": "text/html"}, QUERY_STRING="q=\x1b[2J\r")
    (record,) = [r for r in caplog.records if "Debugger page" in r.getMessage()]
    message = record.getMessage()
    assert "\x1b" not in message and "\r" not in message
    assert re.findall(r"^ \* Debugger page: (\S+)", message, re.M) == [
        re.search(r"http://127\.0\.0\.1/\?__debugger__=yes&tb=\S+", message)[0]  # type: ignore[index]
    ]
    assert "\\x1b]8;;http://evil.example/" in message  # still there to read, as text


# -- the traceback page shows the app's text as text -------------------------------------------


class _MarkupError(Exception):
    def __str__(self) -> str:
        from markupsafe import Markup

        return Markup('<img src="x" id="injected">')  # str() may return a str subclass


@pytest.mark.parametrize(
    "where", ["message", "note", "syntax_text", "type_name", "local_name", "filename"]
)
def test_markup_in_an_exception_is_shown_as_text_on_the_page(where: str) -> None:
    # markupsafe trusts a value's __html__: the app's "safe" HTML must not become the page's.
    from markupsafe import Markup

    from wsgidev.debug import DebuggedApplication

    hostile = Markup('<img src="x" id="injected">')

    def crash(environ: Any, start_response: Any) -> list[bytes]:
        if where == "message":
            raise _MarkupError()
        if where == "syntax_text":
            raise SyntaxError("bad", ("app.py", 1, 2, hostile))
        if where == "type_name":
            kind = type("Oops", (Exception,), {})
            kind.__qualname__ = hostile
            raise kind("plain")
        if where == "local_name":
            namespace: dict[str, Any] = {}
            exec(compile("def f():\n    raise ValueError('plain')\n", "app.py", "exec"), namespace)
            frame_locals = {hostile: 1}
            exec("f()", namespace, frame_locals)
        if where == "filename":
            exec(compile("raise ValueError('plain')", hostile, "exec"), {})
        error = ValueError("plain")
        error.__notes__ = [hostile]  # what add_note() does on 3.11+; the page reads it on 3.10 too
        raise error

    page = crash_page(DebuggedApplication(crash, evalex=True, pin_logging=False)).body.decode()
    assert 'id="injected"' not in page
    assert "&lt;img src=&#34;x&#34; id=&#34;injected&#34;&gt;" in page


FORGED = "\n * Debugger PIN: 111-222-333\n * Debugger page: http://evil.example/"


def _lines_that_pass_for_ours(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"\s*\* Debugger (PIN|page)", line)]


def test_a_message_written_by_the_client_cannot_forge_wsgidevs_terminal_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client chose the message: its line breaks must not print a fake PIN or page link."""
    from urllib.parse import unquote

    from wsgidev.debug import DebuggedApplication

    def echo_error(environ: Any, start_response: Any) -> list[bytes]:
        raise ValueError(unquote(environ["QUERY_STRING"]))

    app = DebuggedApplication(echo_error, pin_logging=False)
    with caplog.at_level(logging.ERROR, logger="wsgidev"):
        call_app(app, "/", headers={"Accept": "text/html"}, QUERY_STRING=quote(FORGED))
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert _lines_that_pass_for_ours(text) == [" * Debugger page: " + text.rsplit(": ", 1)[1]]
    assert "  |  * Debugger PIN: 111-222-333" in text  # shown, but marked as the app's text


def test_a_traceback_logged_after_the_response_started_cannot_forge_lines_either(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wsgidev.debug import DebuggedApplication

    def late(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        raise ValueError("boom" + FORGED)

    app = DebuggedApplication(late, pin_logging=False)
    with caplog.at_level(logging.ERROR, logger="wsgidev"), pytest.raises(ValueError):
        call_app(app, "/")
    formatted = "\n".join(caplog.handler.format(record) for record in caplog.records)
    assert "Debugger PIN: 111-222-333" in formatted  # the control: the text is there
    assert not [line for line in _lines_that_pass_for_ours(formatted) if "evil" in line]
    assert not [line for line in _lines_that_pass_for_ours(formatted) if "111-222" in line]


REFRESH = '<meta http-equiv="refresh" content="0;url=http://evil.example/">'


class _MarkupRepr:
    def __repr__(self) -> str:
        from markupsafe import Markup

        return Markup(REFRESH)


class _HtmlStr(str):
    def __html__(self) -> str:
        return REFRESH


def test_a_repr_that_returns_markup_is_shown_as_text_on_the_page() -> None:
    """markupsafe trusts ``__html__``: a local whose repr is Markup must not become page HTML
    (under the page's CSP a meta refresh still navigates the developer's tab)."""
    from markupsafe import Markup

    from wsgidev.debug import DebuggedApplication

    def crash(environ: Any, start_response: Any) -> list[bytes]:
        shown = _MarkupRepr()  # noqa: F841
        html_key = {_HtmlStr("k"): _HtmlStr("v"), "nested": [_MarkupRepr()]}  # noqa: F841
        raise ValueError(Markup(REFRESH))

    page = crash_page(DebuggedApplication(crash, evalex=True, pin_logging=False)).body.decode()
    assert "http-equiv" in page  # the control: the text is on the page
    assert "<meta http-equiv" not in page
    assert "&lt;meta http-equiv" in page


def test_console_output_that_is_markup_is_shown_as_text() -> None:
    from markupsafe import Markup

    from wsgidev.debug.console import Console

    console = Console({"Markup": Markup, "shown": _MarkupRepr(), "REFRESH": REFRESH})
    for line in ["shown", "print(Markup(REFRESH))", "dump({Markup(REFRESH): 1})", "[shown]"]:
        html = str(console.run(line).html)
        text = unescape(re.sub(r"<[^>]+>", "", html))
        assert "<meta http-equiv" in text, line  # the control: the text came back, as text
        assert "<meta" not in html, line
