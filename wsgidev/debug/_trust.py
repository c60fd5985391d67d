"""Where a debugger request may come from: the Host it names, its Origin, and the client address.

Pure functions on header values; security.py applies them to a request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_TRUSTED_HOSTS = ("localhost", ".localhost", "127.0.0.1", "[::1]")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def split_host(value: str) -> tuple[str, str]:
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
        return "." + split_host(entry[1:])[0]
    return split_host(entry)[0]


def host_is_trusted(host_header: str | None, trusted: Iterable[str]) -> bool:
    """Whether the ``Host`` header names a trusted host; ``.example.com`` also matches subdomains."""
    if not host_header:
        return False
    host, _ = split_host(host_header)
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
    origin_host, origin_port = split_host(parts.netloc)
    host, port = split_host(host_header)
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
