"""Where the debugger's templates/ and static/ live: inside the wheel, or beside the checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

_PACKAGE = Path(__file__).resolve().parent

AssetKind = Literal["templates", "static"]


@cache
def asset_dir(kind: AssetKind) -> Path:
    """Return the folder holding ``kind``: the installed wheel's copy first, then the checkout's."""
    for candidate in (_PACKAGE / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"wsgidev: no {kind}/ folder near {_PACKAGE}")
