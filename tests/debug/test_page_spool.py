"""Kept pages on disk for multi-process servers: private, bounded, and read as data only."""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import call_app
from wsgidev.debug import TRACEBACK_HEADER, DebuggedApplication
from wsgidev.debug._page_spool import FORMS, SUMMARY, PageSpool

MULTI = {"wsgi.multiprocess": True}


def forms(text: str) -> dict[str, str]:
    return {**{form: f"{form}:{text}" for form in FORMS}, SUMMARY: json.dumps({"id": text})}


def crash(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise LookupError("no such thing")


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp folder of the test's own, as TMPDIR would give."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


def test_pages_round_trip_in_a_private_folder(temp: Path) -> None:
    spool = PageSpool(limit=4)
    assert spool.save("page0000token", forms("one"))
    assert spool.load("page0000token") == forms("one")
    folder = Path(spool.path)
    assert folder.parent == temp
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (page,) = folder.iterdir()
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    spool.remove()
    assert not folder.exists()


def test_only_the_newest_pages_are_kept(temp: Path) -> None:
    spool = PageSpool(limit=3)
    for index in range(10):
        assert spool.save(f"page{index:04d}token", forms(str(index)))
        os.utime(Path(spool.path) / f"page{index:04d}token.page", ns=(index, index * 10**9))
    kept = sorted(path.name for path in Path(spool.path).iterdir())
    assert kept == [f"page{index:04d}token.page" for index in (7, 8, 9)]
    assert spool.load("page0000token") is None and spool.load("page0009token") == forms("9")


def test_the_total_size_is_bounded_and_a_page_over_it_is_not_kept(temp: Path) -> None:
    spool = PageSpool(limit=100, max_bytes=4000)
    assert not spool.save("hugepagetoken", forms("x" * 5000))
    for index in range(10):
        assert spool.save(f"page{index:04d}token", forms("y" * 300))
    sizes = [path.stat().st_size for path in Path(spool.path).iterdir()]
    assert 1 <= len(sizes) < 10 and sum(sizes) <= 4000


@pytest.mark.parametrize("token", ["../../etc/passwd", "a/b", "", "x" * 200, "tok.en.page"])
def test_a_token_never_becomes_a_path(temp: Path, token: str) -> None:
    spool = PageSpool(limit=4)
    assert not spool.save(token, forms("one"))
    assert spool.load(token) is None


def test_a_page_file_that_is_not_ours_is_not_served(temp: Path) -> None:
    spool = PageSpool(limit=4)
    assert spool.save("page0000token", forms("one"))
    folder = Path(spool.path)
    (folder / "notjsontoken.page").write_text("{not json")
    (folder / "wrongshapetok.page").write_text(json.dumps({"html": 1}))
    outside = temp / "outside.page"
    outside.write_text(json.dumps(forms("planted")))
    (folder / "symlinktoken.page").symlink_to(outside)
    for token in ("notjsontoken", "wrongshapetok", "symlinktoken"):
        assert spool.load(token) is None


def test_a_folder_someone_else_could_write_is_not_used(temp: Path) -> None:
    spool = PageSpool(limit=4)
    os.mkdir(spool.path, 0o777)
    os.chmod(spool.path, 0o777)
    assert not spool.save("page0000token", forms("one"))
    assert spool.load("page0000token") is None


def test_without_a_shared_page_the_link_is_not_advertised(
    temp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    debugger = DebuggedApplication(crash)
    os.symlink(temp, debugger.shared_pages.path)  # not a private folder of ours
    with caplog.at_level(logging.INFO, logger="wsgidev"):
        response = call_app(debugger, headers={"Accept": "text/html"}, **MULTI)
    assert response.code == 500 and response.header(TRACEBACK_HEADER) is None
    assert (
        b"This page is not kept" in response.body
        and b"__debugger__=yes&amp;tb=" not in response.body
    )
    assert "Debugger page: not kept" in caplog.text and "tb=" not in caplog.text


def test_a_single_process_server_writes_nothing_to_disk(temp: Path) -> None:
    debugger = DebuggedApplication(crash)
    response = call_app(debugger)
    assert response.code == 500 and response.header(TRACEBACK_HEADER)
    assert list(temp.iterdir()) == []


def test_a_shared_page_has_no_secret_and_answers_with_a_fresh_nonce(temp: Path) -> None:
    debugger = DebuggedApplication(crash, evalex=True, pin_security=False)
    first = call_app(debugger, headers={"Accept": "text/html"}, **MULTI)
    assert debugger.secret.encode() in first.body
    token = first.header(TRACEBACK_HEADER).rsplit("=", 1)[1]  # type: ignore[union-attr]
    other = DebuggedApplication(crash, evalex=True, pin_security=False)
    other.shared_pages = debugger.shared_pages  # another process: its memory lacks the page
    nonces = set()
    for _ in range(2):
        page = call_app(other, f"/?__debugger__=yes&tb={token}", headers={"Accept": "text/html"})
        assert page.code == 200 and b"no such thing" in page.body
        assert debugger.secret.encode() not in page.body
        assert debugger.shared_pages.nonce_mark.encode() not in page.body
        nonces.add(page.header("Content-Security-Policy"))
    assert len(nonces) == 2
    python = call_app(other, f"/?__debugger__=yes&tb={token}&format=python")
    assert python.body.decode().startswith("Traceback (most recent call last):")


def test_summaries_list_the_stored_errors_newest_first(temp: Path) -> None:
    spool = PageSpool(limit=4)
    for index in range(3):
        assert spool.save(f"page{index:04d}token", forms(str(index)))
        os.utime(Path(spool.path) / f"page{index:04d}token.page", ns=(index, index * 10**9))
    assert [s["id"] for s in spool.summaries()] == ["2", "1", "0"]
