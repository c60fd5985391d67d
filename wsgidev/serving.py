"""run_simple and make_server: assemble the middleware stack and serve it (being built)."""

from __future__ import annotations

from typing import Any


def run_simple(*args: Any, **kwargs: Any) -> None:
    raise NotImplementedError("wsgidev.serving.run_simple is being built")


def make_server(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("wsgidev.serving.make_server is being built")
