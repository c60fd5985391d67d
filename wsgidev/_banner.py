"""The startup banner: every URL the bound socket answers on, the warning, how to stop.

run_simple logs it once per bind (not again in a reloaded child); the server logs requests.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._log import logger

_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}
_SIOCGIFADDR = 0x8915  # Linux ioctl: the IPv4 address of one interface
_IF_INET6 = Path("/proc/net/if_inet6")  # Linux: one IPv6 address per line, hex


@dataclass(frozen=True, slots=True)
class BoundAddress:
    """What the banner needs to know about a listening socket."""

    hostname: str  # as the user gave it (``unix://PATH`` for a Unix socket)
    port: int  # the real port, also when 0 was asked for
    https: bool
    ipv6: bool = False  # the socket is AF_INET6 (what a wildcard like "" resolved to)
    dual_stack: bool = False  # an IPv6 wildcard socket that also accepts IPv4


def _use_colour() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


def _style(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if _use_colour() else text


def _ipv4_addresses() -> Iterator[str]:
    """IPv4 addresses of this machine's interfaces (Linux ioctl; elsewhere the host name)."""
    names: list[str] = []
    if sys.platform.startswith("linux"):  # the ioctl number below is Linux's
        with contextlib.suppress(ImportError, OSError):
            import fcntl

            names = [name for _, name in socket.if_nameindex()]
    found = False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:  # interface without an IPv4 address, or not Linux
                continue
            found = True
            yield socket.inet_ntoa(reply[20:24])
    if not found:
        yield from _resolved_addresses(socket.AF_INET)


def _ipv6_addresses() -> Iterator[str]:
    """Routable IPv6 addresses (link-local ones need a zone id no browser takes)."""
    try:
        lines = _IF_INET6.read_text().splitlines()
    except OSError:
        yield from _resolved_addresses(socket.AF_INET6)
        return
    for line in lines:
        raw = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            address = ipaddress.IPv6Address(bytes.fromhex(raw))
            if not address.is_link_local:
                yield str(address)


def _resolved_addresses(family: socket.AddressFamily) -> Iterator[str]:
    loopback = "127.0.0.1" if family == socket.AF_INET else "::1"
    yield loopback
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM):
            yield str(info[4][0])


def _sort_key(address: str) -> tuple[int, int, str]:
    ip = ipaddress.ip_address(address)
    # Loopback first: it is the address a developer on this machine opens.
    return (0 if ip.is_loopback else 1, ip.version, address)


def _url_host(host: str) -> str:
    host = host.strip("[]")
    if ":" in host:
        return f"[{host}]"
    return host


def urls(bound: BoundAddress) -> list[str]:
    """The URLs to print: one per interface address for a wildcard bind, else the one asked."""
    if bound.hostname.startswith("unix://"):
        return [bound.hostname]
    scheme = "https" if bound.https else "http"
    if bound.hostname not in _WILDCARDS:
        return [f"{scheme}://{_url_host(bound.hostname)}:{bound.port}"]
    ipv6 = bound.ipv6 or bound.hostname.strip("[]") == "::"
    addresses: list[str] = []
    if ipv6:
        addresses += _ipv6_addresses()
    if not ipv6 or bound.dual_stack:
        addresses += _ipv4_addresses()
    unique = sorted(dict.fromkeys(addresses), key=_sort_key)
    return [f"{scheme}://{_url_host(address)}:{bound.port}" for address in unique]


def log_startup(bound: BoundAddress) -> None:
    """Log the banner lines through the ``wsgidev`` logger (INFO, warning as WARNING)."""
    logger.warning(
        _style(
            "WARNING: this is a development server. It is not hardened for production use; "
            "deploy with a production WSGI server instead.",
            "1;31",
        )
    )
    if bound.hostname in _WILDCARDS:
        shown = bound.hostname.strip("[]") or ("::" if bound.ipv6 else "0.0.0.0")
        logger.info(" * Running on all addresses (%s)", shown)
    for url in urls(bound):
        logger.info(" * Running on %s", _style(url, "1"))
    logger.info(_style("Press CTRL+C to quit", "33"))


def is_dual_stack(sock: socket.socket) -> bool:
    """Whether an IPv6 socket also accepts IPv4 connections (IPV6_V6ONLY off)."""
    if sock.family != socket.AF_INET6:
        return False
    try:
        return not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    except OSError:
        return False
