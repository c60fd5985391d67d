"""Let the live-reload script through an app's Content-Security-Policy, and nothing else.

For each policy the script's effective directive (``script-src-elem``, ``script-src``, then
``default-src``) gets our nonce when the app already relies on nonces, hashes or
``'strict-dynamic'``, otherwise the script's exact URL; a nonce added beside ``'unsafe-inline'``
would switch the app's own inline scripts off. ``connect-src`` gets the live-reload path prefix
unless it already allows the origin. A directive only found in ``default-src`` is copied into a
new directive of its own, so every other kind of resource keeps the app's rule. A policy whose
directive is ``'none'`` cannot be widened without overriding the app's intent: the caller then
leaves the response as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ._live_inject import Headers

_SCRIPT_DIRECTIVES = ("script-src-elem", "script-src", "default-src")
_CONNECT_DIRECTIVES = ("connect-src", "default-src")


class CannotAllow(Exception):
    """The app's policy forbids what the script needs; the message says which directive."""


@dataclass(frozen=True, slots=True)
class LiveSources:
    """What the script needs: its nonce, its absolute URL, the prefix of the URLs it fetches,
    and the page's origin (``'self'``)."""

    nonce: str
    script_url: str
    connect_prefix: str
    origin: str


def amend_headers(headers: Headers, sources: LiveSources) -> Headers:
    """``headers`` with every Content-Security-Policy amended; raises CannotAllow."""
    amended: Headers = []
    for name, value in headers:
        lower = name.lower()
        if lower == "content-security-policy":
            value = ", ".join(amend_policy(policy, sources) for policy in _policies(value))
        elif lower == "content-security-policy-report-only":
            # Amended too, so its reports do not flag the script; it blocks nothing, so a
            # policy that cannot be amended is simply left as it is.
            with contextlib.suppress(CannotAllow):
                value = ", ".join(amend_policy(policy, sources) for policy in _policies(value))
        amended.append((name, value))
    return amended


def _policies(value: str) -> list[str]:
    # A header may carry several policies separated by commas; each is enforced on its own.
    return [policy for policy in value.split(",") if policy.strip()]


def amend_policy(policy: str, sources: LiveSources) -> str:
    directives = [part.strip() for part in policy.split(";") if part.strip()]
    parsed: dict[str, int] = {}
    for index, directive in enumerate(directives):
        name = directive.split(None, 1)[0].lower()
        parsed.setdefault(name, index)  # the first of a repeated directive is the one enforced
    script = _effective(directives, parsed, _SCRIPT_DIRECTIVES)
    if script is not None:
        name, values = script
        _refuse_none(name, values)
        lowered = [value.lower() for value in values]
        if any(v == "'strict-dynamic'" or v.startswith(("'nonce-", "'sha")) for v in lowered):
            _add(directives, parsed, name, "script-src-elem", f"'nonce-{sources.nonce}'", values)
        elif not _allows_url(lowered, sources.origin):
            _add(directives, parsed, name, "script-src-elem", sources.script_url, values)
    connect = _effective(directives, parsed, _CONNECT_DIRECTIVES)
    if connect is not None:
        name, values = connect
        _refuse_none(name, values)
        if not _allows_url([value.lower() for value in values], sources.origin):
            _add(directives, parsed, name, "connect-src", sources.connect_prefix, values)
    return "; ".join(directives)


def _effective(
    directives: list[str], parsed: dict[str, int], names: tuple[str, ...]
) -> tuple[str, list[str]] | None:
    for name in names:
        if name in parsed:
            return name, directives[parsed[name]].split()[1:]
    return None


def _refuse_none(name: str, values: list[str]) -> None:
    if not values or [value.lower() for value in values] == ["'none'"]:
        raise CannotAllow(f"its Content-Security-Policy has {name} 'none'")


def _allows_url(lowered: list[str], origin: str) -> bool:
    """Whether a source list already matches same-origin URLs (no change needed)."""
    return "'self'" in lowered or "*" in lowered or origin.lower() in lowered


def _add(
    directives: list[str],
    parsed: dict[str, int],
    found: str,
    own: str,
    source: str,
    values: list[str],
) -> None:
    """Add ``source`` to directive ``found``; one inherited from default-src becomes ``own``."""
    if found == "default-src":
        directives.append(" ".join([own, *values, source]))
        parsed[own] = len(directives) - 1
    else:
        directives[parsed[found]] += f" {source}"
