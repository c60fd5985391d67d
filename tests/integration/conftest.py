"""Fixtures for the integration tests: servers other than wsgidev's, and a folder of static files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import (
    ROOT,
    LiveServer,
    checkout_env,
    print_logs_if_failed,
    start_server_process,
    stopped_after,
)


@dataclass(frozen=True, slots=True)
class StaticTree:
    """A folder exported by the middleware, and the bytes each test expects back."""

    root: Path
    text: bytes
    blob: bytes


def make_static_tree(root: Path) -> StaticTree:
    """Write a small site: a UTF-8 text file, a 300 KiB binary file and a stylesheet in a subfolder."""
    (root / "css").mkdir(parents=True)
    text = "Hello from a static file.\nZweite Zeile: grüße.\n".encode()
    # 300 KiB of deterministic, incompressible-looking bytes: big enough for sendfile paths.
    blob = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(300 * 32))
    (root / "hello.txt").write_bytes(text)
    (root / "blob.bin").write_bytes(blob)
    (root / "css" / "site.css").write_text("body { color: #123456; }\n", encoding="utf-8")
    return StaticTree(root, text, blob)


@pytest.fixture
def static_tree(tmp_path: Path) -> StaticTree:
    return make_static_tree(tmp_path / "public")


# Servers shared by the tests of one module; their logs are printed when one of those tests fails.
_MODULE_SERVERS: list[LiveServer] = []


@contextmanager
def shared_server(server: LiveServer) -> Iterator[LiveServer]:
    """Keep ``server`` for a module-scoped fixture: its log is printed when a test using it fails."""
    _MODULE_SERVERS.append(server)
    try:
        yield server
    finally:
        server.stop()
        _MODULE_SERVERS.remove(server)


@pytest.fixture(autouse=True)
def _print_shared_server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    print_logs_if_failed(request, _MODULE_SERVERS)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def start_process(
    command: list[str],
    ready: str,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    cwd: Path = ROOT,
) -> LiveServer:
    """Run ``command`` in ``cwd`` (the checkout unless told) and wait for a line whose group ``url``
    says where it listens."""
    return start_server_process(command, ready, checkout_env(env), cwd, timeout)


@pytest.fixture
def external_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``external_server(command, ready_regex, env=..., cwd=...)``; stopped at teardown."""
    with stopped_after(request, start_process) as start:
        yield start
