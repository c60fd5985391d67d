"""TLS for the dev server: ssl contexts from files, ad-hoc certificates, and dev certificates.

Beside the request path: make_server turns its ``ssl_context`` argument into a context here;
the server does the handshakes. ``cryptography`` is only needed to *make* certificates.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.x509 import Certificate

StrPath = Union[str, "os.PathLike[str]"]
SSLContextArg = Union[ssl.SSLContext, tuple[StrPath, StrPath], "str", None]

# Browsers reject leaf certificates valid for more than 398 days.
_VALID_DAYS = 365
# Ad-hoc certificates live only as long as one server process.
_ADHOC_VALID_DAYS = 30
_TLS_EXTRA_HINT = "pip install 'wsgidev[tls]'"


@dataclass(frozen=True, slots=True)
class CertificatePair:
    """PEM bytes of a certificate and its unencrypted private key."""

    cert_pem: bytes
    key_pem: bytes


def _require_cryptography(purpose: str) -> None:
    """Import ``cryptography`` or explain, naming the extra that installs it."""
    try:
        import cryptography.x509  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{purpose} requires the 'cryptography' package, which is not installed: "
            f"{_TLS_EXTRA_HINT}",
            name="cryptography",
        ) from exc


def server_context(protocol: int | None = None) -> ssl.SSLContext:
    """A server-side context with modern defaults: TLS 1.2 or newer, ALPN ``http/1.1``."""
    if protocol == ssl.PROTOCOL_TLS_CLIENT:
        raise ValueError(
            "protocol: PROTOCOL_TLS_CLIENT makes client contexts; a server needs "
            "PROTOCOL_TLS_SERVER (the default)"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if protocol is None else protocol)
    if ctx.minimum_version < ssl.TLSVersion.TLSv1_2:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The server speaks HTTP/1.1 only; advertising it stops clients from trying h2.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def load_ssl_context(
    cert_file: StrPath, pkey_file: StrPath | None = None, protocol: int | None = None
) -> ssl.SSLContext:
    """Load a server context from a PEM certificate (chain) and its private key.

    ``pkey_file`` may be omitted when ``cert_file`` holds the key too. ``protocol`` is an
    ``ssl.PROTOCOL_*`` constant (default ``PROTOCOL_TLS_SERVER``). Raises ``FileNotFoundError``
    naming the missing file and ``ValueError`` when the files are not a matching PEM pair.
    """
    for name, path in (("cert_file", cert_file), ("pkey_file", pkey_file)):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{name}: no such file: {os.fspath(path)!r}")
    ctx = server_context(protocol)
    try:
        ctx.load_cert_chain(cert_file, pkey_file)
    except ssl.SSLError as exc:
        files = f"{os.fspath(cert_file)!r}" + (
            f" and {os.fspath(pkey_file)!r}" if pkey_file else ""
        )
        raise ValueError(
            f"cert_file/pkey_file: {files} are not a PEM certificate and matching private key "
            f"({exc.reason or exc})"
        ) from exc
    return ctx


def generate_adhoc_ssl_pair(cn: str | None = None) -> tuple[Certificate, EllipticCurvePrivateKey]:
    """A fresh self-signed certificate and key, valid for ``cn`` plus localhost and loopback IPs."""
    _require_cryptography("Generating a TLS certificate")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    # P-256 keys take a millisecond to make, RSA-2048 a tenth of a second; every client has it.
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = cn or "localhost"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wsgidev development certificate"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    names: list[x509.GeneralName] = []
    for dns in dict.fromkeys([common_name, "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(dns)))
        except ValueError:
            names.append(x509.DNSName(dns))
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "::1")]
    now = datetime.datetime.now(datetime.timezone.utc)
    days = _ADHOC_VALID_DAYS if cn is None else _VALID_DAYS
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A day of slack so a client whose clock runs a little behind still accepts it.
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _pem_pair(cn: str | None) -> CertificatePair:
    _require_cryptography("Generating a TLS certificate")
    from cryptography.hazmat.primitives import serialization

    cert, key = generate_adhoc_ssl_pair(cn)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return CertificatePair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def generate_adhoc_ssl_context() -> ssl.SSLContext:
    """A server context with a throwaway self-signed certificate for localhost.

    Browsers warn about it; use :func:`make_ssl_devcert` once and load that to trust it.
    """
    pair = _pem_pair(None)
    ctx = server_context()
    # load_cert_chain only reads files; the key file exists for microseconds, owner-only.
    fd, path = tempfile.mkstemp(prefix="wsgidev-adhoc-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pair.key_pem + pair.cert_pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx


def make_ssl_devcert(
    base_path: StrPath, host: str | None = None, cn: str | None = None
) -> tuple[str, str]:
    """Write ``BASE.crt`` and ``BASE.key`` for development and return their paths.

    The certificate is valid for ``host`` (or ``cn``; default ``localhost``), localhost and the
    loopback addresses. Load it with ``ssl_context=(crt, key)`` so it survives restarts.
    """
    if host is not None and cn is not None and host != cn:
        raise ValueError(f"make_ssl_devcert: give host or cn, not both ({host!r} != {cn!r})")
    pair = _pem_pair(host or cn or "localhost")
    cert_file = f"{os.fspath(base_path)}.crt"
    pkey_file = f"{os.fspath(base_path)}.key"
    _replace_file(cert_file, pair.cert_pem, 0o644)
    _replace_file(pkey_file, pair.key_pem, 0o600)
    return cert_file, pkey_file


def _replace_file(path: str, data: bytes, mode: int) -> None:
    """Write ``path`` as a new file with ``mode``, swapped in atomically.

    The bytes go to a fresh private file beside it (``mkstemp``: created exclusively, mode
    0600, never through a symlink), which then replaces ``path`` by rename. So a key is never
    readable by others, even for a moment; an existing file's looser mode is not inherited;
    and a symlink planted at ``path`` is replaced itself, its target left untouched.
    """
    folder, name = os.path.split(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def as_ssl_context(value: object) -> ssl.SSLContext | None:
    """Turn make_server's ``ssl_context`` argument into a context (``None`` stays ``None``).

    Accepts an ``ssl.SSLContext``, a ``(cert_file, key_file)`` pair, or ``"adhoc"``.
    """
    if value is None or isinstance(value, ssl.SSLContext):
        return value
    if isinstance(value, str):
        if value == "adhoc":
            return generate_adhoc_ssl_context()
        raise ValueError(
            f"ssl_context: the only string accepted is 'adhoc', got {value!r}; "
            "pass a (cert_file, key_file) tuple for certificate files"
        )
    if isinstance(value, (tuple, list)) and len(value) == 2:
        cert, key = value
        if isinstance(cert, (str, os.PathLike)) and isinstance(key, (str, os.PathLike)):
            return load_ssl_context(cert, key)
    raise TypeError(
        "ssl_context must be an ssl.SSLContext, a (cert_file, key_file) tuple, 'adhoc' or None, "
        f"got {type(value).__name__}"
    )
