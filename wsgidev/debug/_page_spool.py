"""Kept error pages on disk, so a multi-process server answers a page's URL from any process.

A forking server serves each request in a child that exits afterwards, so the in-memory
store (``_store.py``) dies with it. Here the page's rendered forms (HTML without the secret,
plaintext, JSON, Markdown, Python's text) go to a private folder: 0700, named with random bytes drawn
before the fork, one file per page written atomically, at most ``limit`` pages and
``max_bytes`` in all (oldest removed first), deleted when the process that created the
debugger exits. Files are read as JSON, never unpickled: reading a page runs no code.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile

from wsgidev._log import logger

# All kept pages together stay below this many bytes.
DEFAULT_SPOOL_BYTES = 64 * 1024 * 1024
FORMS = ("html", "text", "json", "python", "markdown")
# Beside the forms, each file holds the error's line in the error list (JSON text).
SUMMARY = "summary"
# The page tokens of _store.py; anything else never becomes a file name.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SUFFIX = ".page"


class PageSpool:
    """A bounded folder of rendered pages shared by the processes forked from its creator."""

    def __init__(self, limit: int, max_bytes: int = DEFAULT_SPOOL_BYTES) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        # Chosen now, in the process that forks later: every child names the same folder,
        # and nobody else can guess it to create it first.
        uid = os.getuid() if hasattr(os, "getuid") else 0
        self.path = os.path.join(tempfile.gettempdir(), f"wsgidev-{uid}-{secrets.token_hex(8)}")
        # Stands for the per-response CSP nonce in a stored page; replaced when it is served.
        self.nonce_mark = secrets.token_hex(16)
        self._creator = os.getpid()
        self._usable: bool | None = None
        atexit.register(self.remove)

    def save(self, token: str, forms: dict[str, str]) -> bool:
        """Store ``forms`` under ``token``; False (the link is then not worth printing) when
        the folder is unusable or the page alone is over the budget."""
        if not _TOKEN.fullmatch(token) or not self._ready():
            return False
        data = json.dumps({form: forms[form] for form in (*FORMS, SUMMARY)}).encode()
        if len(data) > self.max_bytes:
            return False
        try:
            fd, temp = tempfile.mkstemp(dir=self.path, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(temp, os.path.join(self.path, token + _SUFFIX))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            logger.warning(" * Could not keep an error page on disk: %s", exc)
            return False
        self._trim()
        return True

    def load(self, token: str) -> dict[str, str] | None:
        """The forms stored under ``token``, or None when there are none (or they are not
        what this module wrote)."""
        if not _TOKEN.fullmatch(token) or self._usable is False:
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(os.path.join(self.path, token + _SUFFIX), flags)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            if os.fstat(file.fileno()).st_size > self.max_bytes:
                return None
            try:
                forms = json.loads(file.read())
            except ValueError:
                return None
        if not isinstance(forms, dict) or not all(
            isinstance(forms.get(form), str) for form in (*FORMS, SUMMARY)
        ):
            return None
        return {form: forms[form] for form in (*FORMS, SUMMARY)}

    def summaries(self) -> list[dict[str, object]]:
        """The error-list lines of the stored pages, newest first (what every process sees)."""
        if self._usable is False:
            return []
        found: list[tuple[int, dict[str, object]]] = []
        with contextlib.suppress(OSError), os.scandir(self.path) as entries:
            for entry in entries:
                token = entry.name.removesuffix(_SUFFIX)
                if token == entry.name:
                    continue
                with contextlib.suppress(OSError, ValueError):
                    mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                    forms = self.load(token)
                    summary = json.loads(forms[SUMMARY]) if forms else None
                    if isinstance(summary, dict):
                        found.append((mtime, summary))
        found.sort(key=lambda item: item[0], reverse=True)
        return [summary for _, summary in found]

    def remove(self) -> None:
        """Delete the folder: only the process that created the debugger does, at its exit."""
        if os.getpid() == self._creator:
            shutil.rmtree(self.path, ignore_errors=True)

    def _ready(self) -> bool:
        if self._usable is None:
            self._usable = self._make_folder()
        return self._usable

    def _make_folder(self) -> bool:
        """Create the folder, or accept it when another process did: a real folder of ours
        that nobody else can read or write."""
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            logger.warning(" * Could not create a folder for error pages: %s", exc)
            return False
        try:
            info = os.lstat(self.path)
        except OSError:
            return False
        private = stat.S_ISDIR(info.st_mode) and not info.st_mode & 0o077
        if hasattr(os, "getuid"):
            private = private and info.st_uid == os.getuid()
        if not private:
            logger.warning(
                " * Not keeping error pages in %s: it is not a private folder", self.path
            )
        return private

    def _trim(self) -> None:
        """Remove the oldest pages until at most ``limit`` pages and ``max_bytes`` remain.
        Other processes trim too: a page already gone is fine."""
        pages: list[tuple[int, int, str]] = []
        with contextlib.suppress(OSError), os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.endswith(_SUFFIX):
                    with contextlib.suppress(OSError):
                        info = entry.stat(follow_symlinks=False)
                        pages.append((info.st_mtime_ns, info.st_size, entry.path))
        pages.sort()
        count, total = len(pages), sum(size for _, size, _ in pages)
        for _, size, path in pages:
            if count <= self.limit and total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
            count, total = count - 1, total - size
