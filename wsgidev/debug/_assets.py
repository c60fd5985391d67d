"""``?__debugger__=yes&cmd=resource&f=NAME``: the debugger's own CSS, JS and icons, and nothing else.

Only the names present in static/ when the debugger starts are served; anything else is 404.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from wsgidev._types import StartResponse, WSGIApplication, WSGIEnvironment

# Asset URLs carry the content hash (``v=``), so a matching one may be cached for good.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    etag: str


class AssetSet:
    """The files of one static/ folder, listed once at startup and read on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with os.scandir(folder) as entries:
            self.names = frozenset(
                entry.name
                for entry in entries
                if entry.is_file() and not entry.name.startswith(".")
            )
        self._loaded: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Asset | None:
        if name not in self.names:  # the only check needed: names are plain file names
            return None
        asset = self._loaded.get(name)
        if asset is None:
            body = (self.folder / name).read_bytes()
            content_type = _TYPES.get(Path(name).suffix) or (
                mimetypes.guess_type(name)[0] or "application/octet-stream"
            )
            asset = Asset(name, body, content_type, hashlib.sha256(body).hexdigest()[:16])
            with self._lock:
                self._loaded[name] = asset
        return asset

    def url(self, name: str) -> str:
        """A URL relative to the current page; raises KeyError for a name static/ lacks."""
        asset = self.get(name)
        if asset is None:
            raise KeyError(name)
        return f"?__debugger__=yes&cmd=resource&f={quote(name)}&v={asset.etag}"

    def respond(self, name: str, version: str | None) -> WSGIApplication:
        asset = self.get(name)
        if asset is None:
            return _not_found(name)
        found = asset

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
            method = environ.get("REQUEST_METHOD", "GET")
            if method not in ("GET", "HEAD"):
                start_response(
                    "405 METHOD NOT ALLOWED", [("Allow", "GET, HEAD"), ("Content-Length", "0")]
                )
                return []
            etag = f'"{found.etag}"'
            headers = [
                ("ETag", etag),
                ("Cache-Control", IMMUTABLE if version == found.etag else REVALIDATE),
                ("X-Content-Type-Options", "nosniff"),
            ]
            if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
                start_response("304 NOT MODIFIED", headers)
                return []
            headers += [
                ("Content-Type", found.content_type),
                ("Content-Length", str(len(found.body))),
            ]
            start_response("200 OK", headers)
            return [] if method == "HEAD" else [found.body]

        return app


def _not_found(name: str) -> WSGIApplication:
    return not_found(f"The debugger has no resource named {name!r}.\n")


def not_found(message: str) -> WSGIApplication:
    """A plain-text 404 saying ``message``."""
    body = message.encode("utf-8", "replace")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(
            "404 NOT FOUND",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [body]

    return app
