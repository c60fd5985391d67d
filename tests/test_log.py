"""wsgidev's own log handler: lines are printed once, whoever configures logging and when."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import checkout_env

SCRIPT = """
import logging
from wsgidev._log import ensure_handler, logger

ensure_handler()  # the app's middleware, built at import
logger.warning("first line")
logging.basicConfig(format="root: %(message)s")  # then the server configures logging
logger.warning("second line")
"""


def test_a_line_is_printed_once_when_the_server_configures_logging_after_the_app() -> None:
    """waitress-serve configures the root logger after importing the app."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["first line", "root: second line"]
