"""The crash app behind a debugger that only takes console commands from 10.0.0.0/8."""

from __future__ import annotations

from tests.apps.crash import app as crash_app
from wsgidev.debug import DebuggedApplication

app = DebuggedApplication(crash_app, evalex=True, trusted_clients=["10.0.0.0/8"])
