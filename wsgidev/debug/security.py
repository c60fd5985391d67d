"""Who may run code through the debugger: secret, PIN, signed cookie, lockout, Host/Origin/client checks.

Pure decisions on an environ; commands.py turns a refusal into a response. Nothing here runs code.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from wsgidev._log import ensure_handler, logger
from wsgidev._types import WSGIEnvironment

PIN_ENV_VAR = "WSGIDEV_DEBUG_PIN"
# A correct PIN is remembered for a working day, not a week (Werkzeug keeps it 7 days).
PIN_COOKIE_MAX_AGE = 8 * 60 * 60
# Wrong PINs tolerated within PIN_COOKIE_MAX_AGE before the debugger locks until restart.
MAX_PIN_FAILURES = 10
DEFAULT_TRUSTED_HOSTS = ("localhost", ".localhost", "127.0.0.1", "[::1]")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RefusalReason = Literal[
    "method", "host", "cross-site", "client", "secret", "restarted", "pin", "locked"
]
SecretVerdict = Literal["ok", "restarted", "wrong"]
PinVerdict = Literal["ok", "wrong", "locked", "disabled"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a debugger request is refused, with the status it implies and a message for the page."""

    status: int
    reason: RefusalReason
    message: str


# -- the PIN and its cookie key, kept per app in the user's cache ----------------------------


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
        owned = not hasattr(os, "getuid") or info.st_uid == os.getuid()
        if not owned or info.st_mode & 0o077:
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


def get_pin_and_cookie_name(app: object) -> tuple[str | None, str]:
    """Return ``(pin, cookie_name)`` for ``app``; ``pin`` is None when ``WSGIDEV_DEBUG_PIN=off``.

    ``WSGIDEV_DEBUG_PIN`` sets the PIN; otherwise it is random and kept in a private file under
    the user's cache folder, so it survives reloader restarts but cannot be derived from facts
    about the machine.
    """
    cookie_name = f"__wsgidev_pin_{app_key(app)[:12]}"
    override = os.environ.get(PIN_ENV_VAR, "").strip()
    if override.lower() == "off":
        return None, cookie_name
    if override:
        return override, cookie_name
    return load_pin_record(app).pin, cookie_name


def normalize_pin(value: str) -> str:
    """Compare PINs without the grouping dashes or spaces a person may type or leave out."""
    return "".join(ch for ch in value if ch not in "- \t")


# -- per-instance secret: the page proves it came from this server ---------------------------


def make_secret(app: object) -> str:
    """A fresh random secret whose first part names the app, so a stale page can be told apart.

    The prefix is not secret: it only lets a page from an older run of the same app get "the server
    restarted" instead of "wrong secret". Both are refusals.
    """
    return f"{app_key(app)[:8]}{secrets.token_hex(16)}"


def check_secret(given: str | None, current: str) -> SecretVerdict:
    """Constant-time comparison of the page's ``s=`` with this instance's secret."""
    if given is None:
        return "wrong"
    if hmac.compare_digest(given.encode("utf-8", "replace"), current.encode("utf-8")):
        return "ok"
    if len(given) == len(current) and given[:8] == current[:8]:
        return "restarted"
    return "wrong"


# -- Host, Origin, Sec-Fetch-Site, client address --------------------------------------------


def _split_host(value: str) -> tuple[str, str]:
    """``[::1]:5000`` -> (``[::1]``, ``5000``); ``Example.COM.`` -> (``example.com``, ``""``)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value, ""
        host, rest = value[: end + 1], value[end + 1 :]
        return host, rest[1:] if rest.startswith(":") else ""
    if value.count(":") > 1:  # a bare IPv6 literal
        return f"[{value}]", ""
    host, _, port = value.partition(":")
    return host.rstrip("."), port


def normalize_trusted_host(entry: str) -> str:
    """``*.example.com`` -> ``.example.com``; ``::1`` -> ``[::1]``; lowercase, no port."""
    entry = entry.strip().lower()
    if entry.startswith("*."):
        entry = entry[1:]
    if entry.startswith("."):
        return "." + _split_host(entry[1:])[0]
    return _split_host(entry)[0]


def host_is_trusted(host_header: str | None, trusted: Iterable[str]) -> bool:
    """Whether the ``Host`` header names a trusted host; ``.example.com`` also matches subdomains."""
    if not host_header:
        return False
    host, _ = _split_host(host_header)
    for entry in trusted:
        allowed = normalize_trusted_host(entry)
        if allowed.startswith("."):
            if host == allowed[1:] or host.endswith(allowed):
                return True
        elif host == allowed:
            return True
    return False


def _origin_matches_host(origin: str, host_header: str, scheme: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    default = {"http": "80", "https": "443"}
    origin_host, origin_port = _split_host(parts.netloc)
    host, port = _split_host(host_header)
    return (
        parts.scheme == scheme
        and origin_host == host
        and (origin_port or default[parts.scheme]) == (port or default.get(scheme, ""))
    )


def parse_networks(values: Iterable[str | Network] | None) -> tuple[Network, ...]:
    """Parse ``trusted_clients=``: addresses or networks; raises ValueError naming the argument."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValueError(f"trusted_clients: {value!r} is not an address or network") from exc
    return tuple(networks)


def client_is_trusted(remote_addr: str | None, networks: tuple[Network, ...]) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


# -- the policy one DebuggedApplication holds -------------------------------------------------


class DebuggerSecurity:
    """The PIN, cookie, lockout and request checks of one ``DebuggedApplication``.

    ``trusted_hosts`` is the same list object the debugger exposes, so appending to it works.
    """

    def __init__(
        self,
        app: object,
        *,
        pin_security: bool = True,
        pin_logging: bool = True,
        trusted_hosts: list[str] | None = None,
        trusted_clients: Iterable[str | Network] | None = None,
    ) -> None:
        self.app = app
        self.pin_security = pin_security
        self.pin_logging = pin_logging
        self.trusted_hosts: list[str] = (
            list(DEFAULT_TRUSTED_HOSTS) if trusted_hosts is None else trusted_hosts
        )
        self.trusted_clients = parse_networks(trusted_clients)
        self.secret = make_secret(app)
        self._lock = threading.Lock()
        self._failures: list[float] = []
        self._locked = False
        self._loaded = False
        self._pin: str | None = None
        self._cookie_name = ""
        self._cookie_key = b""

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            if self.pin_security:
                self._pin, self._cookie_name = get_pin_and_cookie_name(self.app)
            else:
                self._cookie_name = f"__wsgidev_pin_{app_key(self.app)[:12]}"
            # The cookie key lives beside the PIN; without a PIN no cookie is ever needed.
            self._cookie_key = load_pin_record(self.app).cookie_key if self._pin else b""
            self._loaded = True

    @property
    def pin(self) -> str | None:
        """The PIN, or None when PIN security is off (``pin_security=False`` or ``...=off``)."""
        self._load()
        return self._pin

    @property
    def pin_cookie_name(self) -> str:
        self._load()
        return self._cookie_name

    @property
    def is_locked(self) -> bool:
        with self._lock:
            return self._locked

    @property
    def failures_left(self) -> int:
        with self._lock:
            return 0 if self._locked else MAX_PIN_FAILURES - len(self._failures)

    def log_startup(self) -> None:
        """Print `` * Debugger PIN: ...`` (or that the PIN is off) when ``pin_logging`` is on."""
        if not self.pin_logging:
            return
        ensure_handler()
        logger.warning(" * Debugger is active!")
        if self.pin is None:
            logger.warning(" * Debugger PIN disabled. DEBUGGER UNSECURED!")
        else:
            logger.info(" * Debugger PIN: %s", self.pin)

    def log_pin(self) -> None:
        """``cmd=printpin``: print the PIN again where the developer started the server."""
        ensure_handler()
        if self.pin is None:
            logger.info(" * Debugger PIN disabled.")
        else:
            logger.info(" * Debugger PIN: %s", self.pin)

    # -- request checks, in the order commands.py applies them

    def check_origin(self, environ: WSGIEnvironment) -> Refusal | None:
        """Host (DNS rebinding), cross-site requests, and ``trusted_clients``."""
        host = environ.get("HTTP_HOST")
        if not host_is_trusted(host, self.trusted_hosts):
            shown = host or "(no Host header)"
            return Refusal(
                400,
                "host",
                f"The debugger does not answer requests for host {shown!r}. To allow it, add it "
                f"to the debugger's trusted hosts: app.trusted_hosts.append({_split_host(host or '')[0]!r}).",
            )
        if environ.get("HTTP_SEC_FETCH_SITE", "").lower() in ("cross-site", "same-site"):
            return Refusal(403, "cross-site", "The debugger refuses requests sent by another site.")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not _origin_matches_host(
            origin, host or "", environ.get("wsgi.url_scheme", "http")
        ):
            return Refusal(
                403, "cross-site", f"The debugger refuses requests from origin {origin!r}."
            )
        if not client_is_trusted(environ.get("REMOTE_ADDR"), self.trusted_clients):
            return Refusal(
                403,
                "client",
                f"The debugger does not accept commands from {environ.get('REMOTE_ADDR')!r}: "
                "it is not among the trusted clients.",
            )
        return None

    def check_secret(self, given: str | None) -> Refusal | None:
        verdict = check_secret(given, self.secret)
        if verdict == "ok":
            return None
        if verdict == "restarted":
            return Refusal(
                403, "restarted", "The server restarted since this page was made; reload the page."
            )
        return Refusal(403, "secret", "The debugger's secret is missing or wrong; reload the page.")

    def check_pin_cookie(self, environ: WSGIEnvironment) -> Refusal | None:
        """Whether the request carries a valid PIN cookie (always true when the PIN is off)."""
        if self.pin is None:
            return None
        if self.is_locked:
            return Refusal(403, "locked", LOCKED_MESSAGE)
        if self.is_authenticated(environ):
            return None
        return Refusal(401, "pin", "Enter the debugger PIN printed where the server was started.")

    def is_authenticated(self, environ: WSGIEnvironment) -> bool:
        if self.pin is None:
            return True
        if self.is_locked:
            return False
        value = _read_cookie(environ.get("HTTP_COOKIE", ""), self.pin_cookie_name)
        if value is None or "|" not in value:
            return False
        stamp, _, signature = value.partition("|")
        if not stamp.isdigit() or not hmac.compare_digest(
            signature.encode("ascii", "replace"), self._sign(stamp).encode("ascii")
        ):
            return False
        age = time.time() - int(stamp)
        return -60 <= age < PIN_COOKIE_MAX_AGE

    def try_pin(self, given: str) -> PinVerdict:
        """Check a typed PIN; every wrong one counts toward the lockout."""
        pin = self.pin
        if pin is None:
            return "disabled"
        with self._lock:
            if self._locked:
                return "locked"
            if hmac.compare_digest(
                normalize_pin(given).encode("utf-8", "replace"), normalize_pin(pin).encode("utf-8")
            ):
                return "ok"
            now = time.monotonic()
            self._failures = [t for t in self._failures if now - t < PIN_COOKIE_MAX_AGE]
            self._failures.append(now)
            if len(self._failures) >= MAX_PIN_FAILURES:
                self._locked = True
                logger.warning(
                    " * Debugger locked after %d wrong PINs; restart the server to unlock it.",
                    MAX_PIN_FAILURES,
                )
                return "locked"
            return "wrong"

    def pin_cookie(self, environ: WSGIEnvironment) -> tuple[str, str]:
        """The ``Set-Cookie`` header remembering a correct PIN for ``PIN_COOKIE_MAX_AGE``."""
        stamp = str(int(time.time()))
        value = f"{stamp}|{self._sign(stamp)}"
        secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
        return (
            "Set-Cookie",
            f"{self.pin_cookie_name}={value}; Max-Age={PIN_COOKIE_MAX_AGE}; Path=/; "
            f"HttpOnly; SameSite=Strict{secure}",
        )

    def _sign(self, stamp: str) -> str:
        # Signing the PIN in too makes a changed WSGIDEV_DEBUG_PIN invalidate old cookies.
        message = f"{stamp}|{self.pin}".encode()
        return hmac.new(self._cookie_key, message, hashlib.sha256).hexdigest()


LOCKED_MESSAGE = (
    f"The debugger is locked after {MAX_PIN_FAILURES} wrong PINs. Restart the server to unlock it."
)


def _read_cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def is_loopback_host(hostname: str) -> bool:
    """Whether ``run_simple``'s host only accepts connections from this machine."""
    if hostname.startswith("unix://"):
        return True
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def prepare_for_serving(debugger: object, hostname: str) -> None:
    """``run_simple`` hook: trust the host the server was started with, warn when it is public.

    ``0.0.0.0`` and ``::`` are not names a browser sends, so they are not added.
    """
    trusted = getattr(debugger, "trusted_hosts", None)
    name = hostname.strip()
    if (
        isinstance(trusted, list)
        and name
        and not name.startswith("unix://")
        and name.strip("[]") not in ("0.0.0.0", "::", "")
    ):
        entry = normalize_trusted_host(name)
        if entry not in (normalize_trusted_host(t) for t in trusted):
            trusted.append(entry)
    if getattr(debugger, "evalex", False) and not is_loopback_host(hostname):
        ensure_handler()
        logger.warning(
            " * WARNING: the interactive debugger is listening on %s, which is not loopback.\n"
            " * Anyone who can reach this port and knows the PIN can run code on this machine.\n"
            " * Serve on 127.0.0.1, or restrict it with DebuggedApplication(..., trusted_clients=[...]).",
            hostname,
        )
