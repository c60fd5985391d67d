"""HTTPS from "adhoc", from a (cert, key) pair and from make_ssl_devcert; helpful errors."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.conftest import ROOT
from wsgidev import serving
from wsgidev._tls import as_ssl_context, load_ssl_context, make_ssl_devcert


def https_get(port: int, context: ssl.SSLContext, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def unverified_client() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.mark.live
def test_adhoc_serves_https_with_modern_tls_and_https_url_scheme(live_server: Any) -> None:
    server = live_server("echo_environ", "--ssl", "adhoc")
    assert server.url == f"https://127.0.0.1:{server.port}"
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.port, timeout=5, context=unverified_client()
    )
    try:
        conn.connect()
        tls = conn.sock
        assert isinstance(tls, ssl.SSLSocket)
        conn.request("GET", "/")
        response = conn.getresponse()
        environ = json.loads(response.read())
        # The server speaks HTTP/1.1 only and says so, so clients never try h2 on it.
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        conn.close()
    assert response.status == 200
    assert environ["wsgi.url_scheme"] == "https"


@pytest.mark.live
def test_devcert_pair_verifies_for_loopback(live_server: Any, tmp_path: Path) -> None:
    cert, key = make_ssl_devcert(tmp_path / "dev", host="localhost")
    server = live_server("echo_environ", "--ssl", f"{cert},{key}")
    # Full verification against the dev certificate: it is valid for 127.0.0.1 too.
    client = ssl.create_default_context(cafile=cert)
    status, body = https_get(server.port, client)
    assert status == 200
    assert json.loads(body)["wsgi.url_scheme"] == "https"


def test_make_ssl_devcert_writes_a_pair_with_a_private_key(tmp_path: Path) -> None:
    cert_file, key_file = make_ssl_devcert(str(tmp_path / "site"), host="dev.example.test")
    assert (cert_file, key_file) == (str(tmp_path / "site.crt"), str(tmp_path / "site.key"))
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"dev.example.test", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert cert.not_valid_after_utc > cert.not_valid_before_utc
    context = load_ssl_context(cert_file, key_file)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_make_ssl_devcert_over_an_existing_readable_key_leaves_it_private(tmp_path: Path) -> None:
    (tmp_path / "site.key").write_bytes(b"old key")
    (tmp_path / "site.key").chmod(0o644)
    _, key_file = make_ssl_devcert(tmp_path / "site")
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in Path(key_file).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.crt", "site.key"]  # no leftovers


@pytest.mark.parametrize("which", ["key", "crt"])
def test_make_ssl_devcert_never_writes_through_a_symlink(tmp_path: Path, which: str) -> None:
    """A symlink planted at the key path must not make wsgidev overwrite its target."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    victim.chmod(0o644)
    (tmp_path / f"site.{which}").symlink_to(victim)
    cert_file, key_file = make_ssl_devcert(tmp_path / "site")
    assert victim.read_bytes() == b"precious"
    assert victim.stat().st_mode & 0o777 == 0o644
    written = Path(key_file if which == "key" else cert_file)
    assert not written.is_symlink()
    assert b"-----BEGIN" in written.read_bytes()  # the control: the file itself was written
    load_ssl_context(cert_file, key_file)


def test_make_ssl_devcert_refuses_two_different_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="host or cn"):
        make_ssl_devcert(tmp_path / "x", host="a.test", cn="b.test")


def test_load_ssl_context_names_what_is_wrong(tmp_path: Path) -> None:
    cert_a, _ = make_ssl_devcert(tmp_path / "a")
    _, key_b = make_ssl_devcert(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="cert_file: no such file"):
        load_ssl_context(tmp_path / "missing.crt", key_b)
    with pytest.raises(FileNotFoundError, match="pkey_file: no such file"):
        load_ssl_context(cert_a, tmp_path / "missing.key")
    with pytest.raises(ValueError, match="not a PEM certificate and matching private key"):
        load_ssl_context(cert_a, key_b)
    with pytest.raises(ValueError, match="protocol: PROTOCOL_TLS_CLIENT"):
        load_ssl_context(cert_a, protocol=ssl.PROTOCOL_TLS_CLIENT)


def test_as_ssl_context_accepts_the_documented_forms(tmp_path: Path) -> None:
    assert as_ssl_context(None) is None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert as_ssl_context(context) is context
    pair = make_ssl_devcert(tmp_path / "p")
    assert isinstance(as_ssl_context(pair), ssl.SSLContext)
    assert isinstance(as_ssl_context("adhoc"), ssl.SSLContext)
    with pytest.raises(TypeError, match="ssl_context must be"):
        as_ssl_context((1, 2))


def test_serving_reexports_the_tls_functions() -> None:
    assert serving.make_ssl_devcert is make_ssl_devcert
    assert serving.load_ssl_context is load_ssl_context


def without_cryptography(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import cryptography`` fails, as on a machine without it."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "cryptography.py").write_text(
        "raise ImportError('simulated: cryptography is not installed')\n"
    )
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)]),
        "NO_COLOR": "1",
    }


def test_missing_cryptography_names_the_tls_extra(tmp_path: Path) -> None:
    code = (
        "from wsgidev.serving import generate_adhoc_ssl_context\n"
        "try:\n"
        "    generate_adhoc_ssl_context()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=without_cryptography(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "requires the 'cryptography' package" in result.stdout
    assert "pip install 'wsgidev[tls]'" in result.stdout


def test_cli_adhoc_without_cryptography_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsgidev", "run", "tests.apps.hello:app", "--adhoc", "--port", "0"],
        cwd=ROOT,
        env=without_cryptography(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "wsgidev[tls]" in result.stderr
    assert "Traceback" not in result.stderr
