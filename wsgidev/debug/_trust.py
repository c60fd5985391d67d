"""Where a debugger request may come from: the Host it names, its Origin, and the client address.

Pure functions on header values; security.py applies them to a request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_TRUSTED_HOSTS = ("localhost", ".localhost", "127.0.0.1", "[::1]")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# A host name as browsers send it (IDNs arrive as punycode): labels of letters, digits, - and _.
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.*")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_host(value: str) -> tuple[str, str] | None:
    """``[::1]:5000`` -> (``[::1]``, ``5000``); ``Example.COM.`` -> (``example.com``, ``""``).

    IPv6 literals come back in their short form (``[0:0::1]`` -> ``[::1]``). Anything that is not
    a name or address with an optional numeric port -> None: the debugger trusts no odd spelling.
    """
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        host, rest = _ipv6(value[1:end]) if end != -1 else None, value[end + 1 :]
    elif value.count(":") > 1:  # a bare IPv6 literal
        host, rest = _ipv6(value), ""
    else:
        name, sep, port = value.partition(":")
        host = name.rstrip(".") if _NAME.fullmatch(name) else None
        rest = sep + port
    if host is None:
        return None
    if not rest:
        return host, ""
    port = rest[1:]
    if rest[0] != ":" or not (port == "" or (_PORT.fullmatch(port) and int(port) <= 65535)):
        return None
    return host, port


def _ipv6(literal: str) -> str | None:
    try:
        return f"[{ipaddress.IPv6Address(literal).compressed}]"
    except ValueError:
        return None


def split_host(value: str) -> tuple[str, str]:
    """:func:`parse_host`, with a malformed value kept (lowercased) for messages."""
    return parse_host(value) or (value.strip().lower(), "")


def normalize_trusted_host(entry: str) -> str:
    """``*.example.com`` -> ``.example.com``; ``::1`` -> ``[::1]``; lowercase, no port."""
    entry = entry.strip().lower()
    if entry.startswith("*."):
        entry = entry[1:]
    if entry.startswith("."):
        return "." + split_host(entry[1:])[0]
    return split_host(entry)[0]


def host_is_trusted(host_header: str | None, trusted: Iterable[str]) -> bool:
    """Whether the ``Host`` header names a trusted host; ``.example.com`` also matches subdomains."""
    parsed = parse_host(host_header) if host_header else None
    if parsed is None:
        return False
    host = parsed[0]
    for entry in trusted:
        allowed = normalize_trusted_host(entry)
        if allowed.startswith("."):
            if host == allowed[1:] or host.endswith(allowed):
                return True
        elif host == allowed:
            return True
    return False


def origin_matches_host(origin: str, host_header: str, scheme: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    default = {"http": "80", "https": "443"}
    origin_parts, host_parts = parse_host(parts.netloc), parse_host(host_header)
    if origin_parts is None or host_parts is None:
        return False
    (origin_host, origin_port), (host, port) = origin_parts, host_parts
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
