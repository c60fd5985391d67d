"""Ctrl+C is never lost: the signal wakes the server's loop at the OS level."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, checkout_env

ROUNDS = 200


@pytest.mark.parametrize("mode", ["inline", "threaded", "forking"])
def test_two_hundred_starts_each_stopped_by_one_ctrl_c(mode: str) -> None:
    """Half the signals land on another thread than the loop's, where only the wake-up fd
    (not EINTR) can end the loop's poll; every round must stop by itself."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.ctrl_c_loop", mode, str(ROUNDS)],
        cwd=ROOT,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=ROUNDS * 2.5 + 30,  # subprocess.run kills the harness when it expires
    )
    summary = re.search(r"rounds=(\d+) hangs=(\d+)", result.stdout)
    assert summary is not None, result.stdout + result.stderr
    assert summary.groups() == (str(ROUNDS), "0"), result.stderr[-2000:]
