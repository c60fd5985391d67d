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
    url: str, predicate: Callable[[requests.Response], bool], timeout: float = 20
) -> requests.Response:
    """Ask until ``predicate`` holds, each time on a new connection, as a browser's reload does.

    A connection error fails at once: the supervisor keeps the socket through every restart,
    so a request sent while the app reloads waits for the new code instead of being refused.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = requests.get(url, headers={**BROWSER_HEADERS, "Connection": "close"}, timeout=10)
        if predicate(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no matching answer from {url} within {timeout}s; last: {last.status_code} {last.text[:500]}"
            )
        time.sleep(0.1)


def test_edit_break_and_fix_a_flask_app(
    tmp_path: Path, external_server: Callable[..., LiveServer]
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
    assert wait_for_answer(server.url + "/", lambda r: r.status_code == 200).text == "first version"

    save(app_file, FLASK_APP.format(greeting="second version"))
    server.wait_for(r"Detected change in '.*app\.py'", timeout=10)
    wait_for_answer(server.url + "/", lambda r: r.text == "second version")

    # A syntax error must leave a server that explains it, not a dead one.
    save(
        app_file,
        FLASK_APP.format(greeting="unterminated").replace(
            'return "unterminated"', 'return "unterminated'
        ),
    )
    broken = wait_for_answer(server.url + "/", lambda r: r.status_code == 500)
    assert "SyntaxError" in broken.text

    save(app_file, FLASK_APP.format(greeting="fixed"))
    wait_for_answer(server.url + "/", lambda r: r.text == "fixed")
