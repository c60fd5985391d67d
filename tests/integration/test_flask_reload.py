"""The everyday loop on a Flask project: ``wsgidev run app.py --debug --reload``, edit, refresh."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import LiveServer
from tests.integration._pages import BROWSER_HEADERS

pytestmark = [pytest.mark.live, pytest.mark.slow]

FLASK_APP = """
from flask import Flask

app = Flask(__name__)
app.config["PROPAGATE_EXCEPTIONS"] = True


@app.get("/")
def index():
    return "{greeting}"
"""


def save(path: Path, text: str) -> None:
    """Save as an editor does; a new size too, so even a coarse mtime clock cannot hide it."""
    path.write_text(text)


def wait_for_answer(
    session: requests.Session,
    url: str,
    predicate: Callable[[requests.Response], bool],
    timeout: float = 20,
) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: requests.Response | str = "no answer yet"
    while time.monotonic() < deadline:
        try:
            last = session.get(url, headers=BROWSER_HEADERS, timeout=5)
            if predicate(last):
                return last
        except requests.ConnectionError as exc:
            last = f"connection error: {exc}"
        time.sleep(0.2)
    detail = last if isinstance(last, str) else f"{last.status_code} {last.text[:500]}"
    raise AssertionError(f"no matching answer from {url} within {timeout}s; last: {detail}")


def test_edit_break_and_fix_a_flask_app(
    tmp_path: Path, external_server: Callable[..., LiveServer], session: requests.Session
) -> None:
    app_file = tmp_path / "app.py"
    save(app_file, FLASK_APP.format(greeting="first version"))
    server = external_server(
        [
            sys.executable,
            "-m",
            "wsgidev",
            "run",
            str(app_file),
            "--debug",
            "--reload",
            "--port",
            "0",
        ],
        r" \* Running on (?P<url>http://127\.0\.0\.1:\d+)",
        cwd=tmp_path,
    )
    assert (
        wait_for_answer(session, server.url + "/", lambda r: r.status_code == 200).text
        == "first version"
    )

    save(app_file, FLASK_APP.format(greeting="second version"))
    server.wait_for(r"Detected change in '.*app\.py'", timeout=10)
    wait_for_answer(session, server.url + "/", lambda r: r.text == "second version")

    # A syntax error must leave a server that explains it, not a dead one.
    save(
        app_file,
        FLASK_APP.format(greeting="unterminated").replace(
            'return "unterminated"', 'return "unterminated'
        ),
    )
    broken = wait_for_answer(session, server.url + "/", lambda r: r.status_code == 500)
    assert "SyntaxError" in broken.text

    save(app_file, FLASK_APP.format(greeting="fixed"))
    wait_for_answer(session, server.url + "/", lambda r: r.text == "fixed")
