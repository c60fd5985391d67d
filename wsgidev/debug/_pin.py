"""The debugger PIN: random, kept per program in a private file under the user's cache folder.

It survives reloader restarts (the file) but cannot be derived from facts about the machine.
security.py decides what a PIN unlocks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wsgidev._log import logger

PIN_ENV_VAR = "WSGIDEV_DEBUG_PIN"
WERKZEUG_PIN_ENV_VAR = "WERKZEUG_DEBUG_PIN"


def user_cache_dir() -> Path:
    """The per-user cache folder (XDG on Unix, Library/Caches on macOS, LOCALAPPDATA on Windows)."""
    if sys.platform == "win32":  # pragma: no cover - not tested on this platform
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":  # pragma: no cover
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wsgidev"


def app_key(app: object) -> str:
    """A stable, non-secret name for the program serving ``app``: the same in every reloaded child.

    It is made of the command line (the program's absolute path and its arguments, which the
    reloader hands unchanged to each child) and the working directory, not of ``app`` itself:
    while the app fails to import, the reloader serves an error app in its place, and that
    server must print the PIN the real app had and gets back after the fix. Two projects, or
    two commands in one project, get different PINs. Only the file name comes from these
    facts; the PIN in it stays random.
    """
    del app  # kept for the callers' shape (Werkzeug keys by app); see above
    argv = list(sys.argv) or [""]
    program = os.path.abspath(argv[0]) if argv[0] and argv[0] != "-c" else argv[0]
    facts = "\0".join([program, *argv[1:], "\0cwd", os.getcwd()])
    return hashlib.sha256(facts.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def generate_pin() -> str:
    """Nine random digits grouped as ``123-456-789``, from the OS's CSPRNG."""
    digits = f"{secrets.randbelow(10**9):09d}"
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


@dataclass(frozen=True, slots=True)
class PinRecord:
    """What the private per-app file holds: the PIN and the key that signs its cookie."""

    pin: str
    cookie_key: bytes


_POSIX = hasattr(os, "getuid")
# openat() and friends: names are resolved inside the folder already checked, so swapping a
# path component afterwards changes nothing. Windows has none; its profile folder is private.
_AT = os.open in os.supports_dir_fd and os.link in os.supports_dir_fd


class _PrivateFolder:
    """The pins folder, opened once and checked: ours, and no one else may write into it."""

    def __init__(self, path: Path) -> None:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self.fd: int | None = None
        if not _AT:  # pragma: no cover - Windows
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        info = os.fstat(fd)
        problem = ""
        if not stat.S_ISDIR(info.st_mode):
            problem = "the folder is not a directory"
        elif _POSIX and info.st_uid != os.getuid():
            problem = "the folder belongs to another user"
        elif info.st_mode & 0o022:
            problem = "the folder is writable by other users"
        if problem:
            os.close(fd)
            raise PermissionError(problem)
        self.fd = fd

    def name(self, name: str) -> str:
        return name if self.fd is not None else str(self.path / name)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _read_private_record(folder: _PrivateFolder, name: str) -> PinRecord | None:
    # O_NONBLOCK: a FIFO planted here must not hang startup; it is refused below.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(folder.name(name), flags, dir_fd=folder.fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        # Only a regular file that is ours and unreadable by others may hold the PIN.
        if not stat.S_ISREG(info.st_mode):
            return None
        if _POSIX and (info.st_uid != os.getuid() or info.st_mode & 0o077):
            return None
        try:
            data = json.loads(file.read(4096))
            record = PinRecord(str(data["pin"]), bytes.fromhex(data["cookie_key"]))
        except (ValueError, KeyError, TypeError):
            return None
    if not normalize_pin(record.pin) or len(record.cookie_key) < 16:
        return None
    return record


def _write_private_record(folder: _PrivateFolder, name: str, record: PinRecord) -> PinRecord:
    """Create ``name`` (mode 0600) unless another process won the race; return the stored record."""
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    payload = json.dumps({"pin": record.pin, "cookie_key": record.cookie_key.hex()})
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(folder.name(tmp), flags, 0o600, dir_fd=folder.fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(payload)
        try:
            # Atomic, and never replaces a file a sibling process just wrote.
            os.link(folder.name(tmp), folder.name(name), src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        except FileExistsError:
            existing = _read_private_record(folder, name)
            if existing is not None:
                return existing
            # The old entry was unsafe (a symlink, a FIFO, others could read it): take its place.
            os.replace(
                folder.name(tmp), folder.name(name), src_dir_fd=folder.fd, dst_dir_fd=folder.fd
            )
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder.name(tmp), dir_fd=folder.fd)
    return record


def load_pin_record(app: object) -> PinRecord:
    """The app's PIN and cookie key: read from the private cache file, created on first use.

    Falls back to a PIN kept in memory (a new one each start) when the cache is not writable or
    not private.
    """
    folder_path = user_cache_dir() / "pins"
    name = f"{app_key(app)}.json"
    fresh = PinRecord(generate_pin(), secrets.token_bytes(32))
    try:
        folder = _PrivateFolder(folder_path)
        try:
            return _read_private_record(folder, name) or _write_private_record(folder, name, fresh)
        finally:
            folder.close()
    except OSError as exc:
        logger.warning(
            " * Cannot keep the debugger PIN in %s (%s); it changes at each start.",
            folder_path / name,
            exc,
        )
        return fresh


def pin_cookie_name(app: object) -> str:
    """The cookie that remembers a correct PIN; named per app so two apps do not collide."""
    return f"__wsgidev_pin_{app_key(app)[:12]}"


def get_pin_and_cookie_name(app: object) -> tuple[str, str] | tuple[None, None]:
    """Return ``(pin, cookie_name)`` for ``app``, or ``(None, None)`` when ``WSGIDEV_DEBUG_PIN=off``
    (Werkzeug's shape).

    ``WSGIDEV_DEBUG_PIN`` sets the PIN; otherwise it is random and kept in a private file under
    the user's cache folder, so it survives reloader restarts but cannot be derived from facts
    about the machine.
    """
    pin = configured_pin(app)
    if pin is None:
        return None, None
    return pin, pin_cookie_name(app)


def configured_pin(app: object, stored: Callable[[], PinRecord] | None = None) -> str | None:
    """The PIN from ``WSGIDEV_DEBUG_PIN`` (None for ``off``), else the app's stored one.

    ``WERKZEUG_DEBUG_PIN`` is honoured when ours is unset, so a project that switches its import
    keeps the PIN its environment sets.
    """
    variable = PIN_ENV_VAR if os.environ.get(PIN_ENV_VAR, "").strip() else WERKZEUG_PIN_ENV_VAR
    override = os.environ.get(variable, "").strip()
    if override.lower() == "off":
        return None
    if override and not normalize_pin(override):
        # Dashes and spaces are ignored when typed, so this PIN would match an empty one.
        logger.warning(
            " * %s=%r has no digits or letters; using the stored random PIN instead.",
            variable,
            override,
        )
    elif override:
        return override
    return (stored or (lambda: load_pin_record(app)))().pin


def normalize_pin(value: str) -> str:
    """Compare PINs without the grouping dashes or spaces a person may type or leave out."""
    return "".join(ch for ch in value if ch not in "- \t")
