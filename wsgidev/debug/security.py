"""Who may run code through the debugger: secret, PIN, signed PIN token, lockout, Host/Origin/client checks.

Pure decisions on an environ; commands.py turns a refusal into a response. Nothing here runs code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from wsgidev._log import ensure_handler, logger
from wsgidev._types import WSGIEnvironment
from wsgidev.debug._pin import (
    PIN_ENV_VAR,
    PinRecord,
    app_key,
    configured_pin,
    get_pin_and_cookie_name,
    load_pin_record,
    normalize_pin,
    pin_cookie_name,
)
from wsgidev.debug._trust import (
    DEFAULT_TRUSTED_HOSTS,
    Network,
    client_is_trusted,
    host_is_trusted,
    is_loopback_host,
    normalize_trusted_host,
    origin_matches_host,
    parse_networks,
    split_host,
)

__all__ = [
    "DEFAULT_TRUSTED_HOSTS",
    "MAX_PIN_FAILURES",
    "PIN_ENV_VAR",
    "PIN_TOKEN_MAX_AGE",
    "DebuggerSecurity",
    "Refusal",
    "client_is_trusted",
    "get_pin_and_cookie_name",
    "host_is_trusted",
    "is_loopback_host",
    "parse_networks",
    "prepare_for_serving",
]

# A correct PIN is remembered for a working day, not a week (Werkzeug keeps it 7 days).
PIN_TOKEN_MAX_AGE = 8 * 60 * 60
# Wrong PINs tolerated within PIN_TOKEN_MAX_AGE before the debugger locks until restart.
MAX_PIN_FAILURES = 10

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


# -- the policy one DebuggedApplication holds -------------------------------------------------


class DebuggerSecurity:
    """The PIN, token, lockout and request checks of one ``DebuggedApplication``.

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
            records: list[PinRecord] = []

            def stored() -> PinRecord:  # read (or create) the file once, and only if needed
                if not records:
                    records.append(load_pin_record(self.app))
                return records[0]

            self._pin = configured_pin(self.app, stored) if self.pin_security else None
            self._cookie_name = pin_cookie_name(self.app)
            # The signing key lives beside the PIN; without a PIN no token is ever needed.
            self._cookie_key = stored().cookie_key if self._pin else b""
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

    def log_pin(self) -> bool:
        """``cmd=printpin``: print the PIN again where the developer started the server.

        False, printing nothing, when ``pin_logging`` is off: then the PIN never reaches a log.
        """
        if not self.pin_logging:
            return False
        ensure_handler()
        if self.pin is None:
            logger.info(" * Debugger PIN disabled.")
        else:
            logger.info(" * Debugger PIN: %s", self.pin)
        return True

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
                f"to the debugger's trusted hosts: app.trusted_hosts.append({split_host(host or '')[0]!r}).",
            )
        if environ.get("HTTP_SEC_FETCH_SITE", "").lower() in ("cross-site", "same-site"):
            return Refusal(403, "cross-site", "The debugger refuses requests sent by another site.")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not origin_matches_host(
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

    def may_see_secret(self, environ: WSGIEnvironment) -> bool:
        """Whether a page answering this request may carry the secret: the Host and the client
        are ones the console accepts.

        Under DNS rebinding the attacker's script is same-origin with the server and can read
        any page it fetches; a page for its Host must not hand it the secret.
        """
        return host_is_trusted(environ.get("HTTP_HOST"), self.trusted_hosts) and (
            client_is_trusted(environ.get("REMOTE_ADDR"), self.trusted_clients)
        )

    def check_secret(self, given: str | None) -> Refusal | None:
        verdict = check_secret(given, self.secret)
        if verdict == "ok":
            return None
        if verdict == "restarted":
            return Refusal(
                403, "restarted", "The server restarted since this page was made; reload the page."
            )
        return Refusal(403, "secret", "The debugger's secret is missing or wrong; reload the page.")

    def check_token(self, token: str | None) -> Refusal | None:
        """Whether a command carries a valid PIN token (always true when the PIN is off).

        The proof of the PIN is a ``token`` field in the POST body, never a cookie: cookies are
        scoped by host, not port, so any page on another port of this host would receive one.
        """
        if self.pin is None:
            return None
        if self.is_locked:
            return Refusal(403, "locked", LOCKED_MESSAGE)
        if self.token_is_valid(token):
            return None
        return Refusal(401, "pin", "Enter the debugger PIN printed where the server was started.")

    def token_is_valid(self, token: str | None) -> bool:
        """A token from ``make_token`` that is unexpired, for this app's PIN and key."""
        if self.pin is None:
            return True
        if self.is_locked or not token or token.count(".") != 1:
            return False
        stamp, _, signature = token.partition(".")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return False
        if not hmac.compare_digest(
            signature.encode("ascii", "replace"), self._sign(stamp).encode("ascii")
        ):
            return False
        age = time.time() - int(stamp)
        return -60 <= age < PIN_TOKEN_MAX_AGE

    def make_token(self) -> str:
        """The proof of a right PIN, valid for ``PIN_TOKEN_MAX_AGE``; the page keeps it per origin.

        Signed with the key kept beside the PIN, so it survives reloader restarts as the PIN does.
        """
        stamp = str(int(time.time()))
        return f"{stamp}.{self._sign(stamp)}"

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
            self._failures = [t for t in self._failures if now - t < PIN_TOKEN_MAX_AGE]
            self._failures.append(now)
            if len(self._failures) >= MAX_PIN_FAILURES:
                self._locked = True
                logger.warning(
                    " * Debugger locked after %d wrong PINs; restart the server to unlock it.",
                    MAX_PIN_FAILURES,
                )
                return "locked"
            return "wrong"

    def _sign(self, stamp: str) -> str:
        # Signing the PIN in too makes a changed WSGIDEV_DEBUG_PIN invalidate old tokens; the
        # "token" label keeps these signatures apart from anything else signed with the key.
        message = f"token|{stamp}|{self.pin}".encode()
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
