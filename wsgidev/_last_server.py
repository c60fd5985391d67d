"""Where the last debugging server started from a folder listens, so ``wsgidev errors`` run in
the same folder finds it without ``--url``. One small user-private file per folder in the
user's cache; losing it only means passing ``--url``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path


def _record_path(folder: Path) -> Path:
    from .debug._pin import user_cache_dir

    key = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    return user_cache_dir() / "servers" / f"{key[:24]}.json"


def record_server(url: str, folder: Path | None = None) -> None:
    """Remember ``url`` as the server started from ``folder`` (the current one by default)."""
    folder = folder or Path.cwd()
    path = _record_path(folder)
    data = json.dumps({"url": url, "folder": str(folder), "pid": os.getpid()})
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(data)
        os.replace(temp, path)


def last_server(folder: Path | None = None) -> str | None:
    """The URL recorded for ``folder``, or None."""
    try:
        data = json.loads(_record_path(folder or Path.cwd()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None
