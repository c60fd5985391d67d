"""``python -m wsgidev run TARGET``: the same command line as ``wsgidev``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m wsgidev"))
