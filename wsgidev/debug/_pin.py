"""The debugger PIN: random, kept per app in a private file under the user's cache folder.

It survives reloader restarts (the file) but cannot be derived from facts about the machine.
security.py decides what a PIN unlocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
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
    """A stable, non-secret name for ``app`` in this project: the same in every reloaded child.

    The program and working directory are part of it, so two projects that both serve a
    ``flask.Flask`` instance get different PINs.
    """
    module = getattr(app, "__module__", None) or type(app).__module__
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    module_file = getattr(sys.modules.get(module), "__file__", None) or ""
    program = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    facts = "\0".join([module, name, module_file, program, os.getcwd()])
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


def _read_private_record(path: Path) -> PinRecord | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        # Only a file that is ours and unreadable by others may hold the PIN.
        # Windows has no owner ids nor group/other mode bits; the profile folder is private there.
        posix = hasattr(os, "getuid")
        if posix and (info.st_uid != os.getuid() or info.st_mode & 0o077):
            return None
        try:
            data = json.loads(file.read(4096))
            return PinRecord(str(data["pin"]), bytes.fromhex(data["cookie_key"]))
        except (ValueError, KeyError, TypeError):
            return None


def _write_private_record(path: Path, record: PinRecord) -> PinRecord:
    """Create ``path`` (mode 0600) unless another process won the race; return the stored record."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    payload = json.dumps({"pin": record.pin, "cookie_key": record.cookie_key.hex()})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(payload)
        try:
            os.link(tmp, path)  # atomic, and never replaces a file a sibling process just wrote
        except FileExistsError:
            existing = _read_private_record(path)
            if existing is not None:
                return existing
            os.replace(tmp, path)  # the old file was unsafe: take its place
    finally:
        tmp.unlink(missing_ok=True)
    return record


def load_pin_record(app: object) -> PinRecord:
    """The app's PIN and cookie key: read from the private cache file, created on first use.

    Falls back to a PIN kept in memory (a new one each start) when the cache is not writable.
    """
    path = user_cache_dir() / "pins" / f"{app_key(app)}.json"
    record = _read_private_record(path)
    if record is not None:
        return record
    fresh = PinRecord(generate_pin(), secrets.token_bytes(32))
    try:
        return _write_private_record(path, fresh)
    except OSError as exc:
        logger.warning(
            " * Cannot keep the debugger PIN in %s (%s); it changes at each start.", path, exc
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


def configured_pin(app: object) -> str | None:
    """The PIN from ``WSGIDEV_DEBUG_PIN`` (None for ``off``), else the app's stored one.

    ``WERKZEUG_DEBUG_PIN`` is honoured when ours is unset, so a project that switches its import
    keeps the PIN its environment sets.
    """
    override = (
        os.environ.get(PIN_ENV_VAR, "").strip() or os.environ.get(WERKZEUG_PIN_ENV_VAR, "").strip()
    )
    if override.lower() == "off":
        return None
    if override:
        return override
    return load_pin_record(app).pin


def normalize_pin(value: str) -> str:
    """Compare PINs without the grouping dashes or spaces a person may type or leave out."""
    return "".join(ch for ch in value if ch not in "- \t")
