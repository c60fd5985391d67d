"""Nothing outside an export is ever served, whatever the request path says.

PATH_INFO arrives percent-decoded (a server turns ``%2e%2e`` into ``..`` and ``%2f`` into
``/``), so these cases are the decoded forms; the raw forms go through real servers in
test_shared_data_live.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import call_app
from wsgidev.middleware.shared_data import SharedDataMiddleware

SECRET = b"TOP-SECRET-OUTSIDE"


def fallback(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"app"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """tmp/secret.txt, tmp/outside/secret.txt, and tmp/public/ with files and hostile symlinks."""
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "ok.txt").write_bytes(b"fine")
    (public / "sub" / "inner.txt").write_bytes(b"inner")
    (public / ".env").write_bytes(SECRET)
    (public / ".git").mkdir()
    (public / ".git" / "config").write_bytes(SECRET)
    (public / "%2e%2e").mkdir()  # a directory literally named like the encoded dots
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(SECRET)
    (tmp_path / "public-evil").mkdir()  # shares the export's name as a prefix
    (tmp_path / "public-evil" / "secret.txt").write_bytes(SECRET)
    if hasattr(os, "symlink"):
        (public / "escape.txt").symlink_to(tmp_path / "secret.txt")
        (public / "escape-dir").symlink_to(tmp_path / "outside", target_is_directory=True)
        (public / "relative-escape.txt").symlink_to(Path("..") / "secret.txt")
        (public / "evil-sibling").symlink_to(tmp_path / "public-evil", target_is_directory=True)
        (public / "alias.txt").symlink_to(public / "ok.txt")  # stays inside: fine
        (public / "ok.txt.gz").symlink_to(tmp_path / "secret.txt")  # a sibling that escapes
        (public / "null").symlink_to("/dev/null")
    return tmp_path


@pytest.fixture
def app(root: Path) -> SharedDataMiddleware:
    return SharedDataMiddleware(
        fallback, {"/static": str(root / "public"), "/one": str(root / "public" / "ok.txt")}
    )


def refused(app: Any, path: str, **kwargs: Any) -> bool:
    response = call_app(app, path, **kwargs)
    assert SECRET not in response.body, f"{path!r} served a file from outside the export"
    return response.body == b"app"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",  # ".." segments
        "/static/sub/../../secret.txt",
        "/static/..",
        "/static/../public-evil/secret.txt",
        "/static/./../secret.txt",
        "/static/..\\secret.txt",  # backslashes (Windows separators)
        "/static/sub\\..\\..\\secret.txt",
        "/static/\\..\\secret.txt",
        "/static//etc/passwd",  # absolute paths
        "/static/" + os.path.abspath("/etc/passwd"),
        "/static/C:/Windows/win.ini",  # drive letters
        "/static/c:secret.txt",
        "/static/ok.txt\x00.png",  # NUL bytes
        "/static/\x00",
        "/static/.env",  # hidden files
        "/static/.git/config",
        "/static/sub/.env",
        "/one/../secret.txt",
        "/one/x",
        "/static/%2e%2e/secret.txt",  # an undecoded "%2e%2e" is a plain name, never ".."
        "/static/..%2fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
    ],
)
def test_hostile_paths_fall_through(app: SharedDataMiddleware, path: str) -> None:
    assert refused(app, path)
    assert refused(app, path, method="HEAD")


@pytest.mark.parametrize("path", ["/static/..%2F..%2Fsecret.txt", "/static/%252e%252e/secret.txt"])
def test_no_second_round_of_percent_decoding(app: SharedDataMiddleware, path: str) -> None:
    assert refused(app, path)


def test_encoded_dots_are_refused_once_decoded(app: SharedDataMiddleware) -> None:
    # What gunicorn, waitress and wsgidev's server hand over for /static/%2e%2e/secret.txt.
    assert refused(app, "/static/../secret.txt")


needs_symlinks = pytest.mark.skipif(
    not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symlinks"
)


@needs_symlinks
@pytest.mark.parametrize(
    "path",
    [
        "/static/escape.txt",
        "/static/relative-escape.txt",
        "/static/escape-dir/secret.txt",
        "/static/evil-sibling/secret.txt",  # "public-evil" starts with "public": still outside
    ],
)
def test_symlinks_leaving_the_export_are_refused(app: SharedDataMiddleware, path: str) -> None:
    assert refused(app, path)


@needs_symlinks
def test_symlinks_inside_the_export_are_served(app: SharedDataMiddleware) -> None:
    assert call_app(app, "/static/alias.txt").body == b"fine"


@needs_symlinks
def test_a_precompressed_sibling_leaving_the_export_is_ignored(app: SharedDataMiddleware) -> None:
    response = call_app(app, "/static/ok.txt", headers={"Accept-Encoding": "gzip"})
    assert (response.body, response.header("Content-Encoding")) == (b"fine", None)


@needs_symlinks
def test_devices_are_never_served(root: Path) -> None:
    app = SharedDataMiddleware(fallback, {"/static": str(root / "public")}, follow_symlinks=True)
    assert refused(app, "/static/null")


@needs_symlinks
def test_follow_symlinks_opts_in(root: Path) -> None:
    app = SharedDataMiddleware(fallback, {"/static": str(root / "public")}, follow_symlinks=True)
    assert call_app(app, "/static/escape.txt").body == SECRET
    assert call_app(app, "/static/escape-dir/secret.txt").body == SECRET
    # Still no way out through the path itself.
    assert refused(app, "/static/../secret.txt")


def test_allow_hidden_still_refuses_dot_dot(root: Path) -> None:
    app = SharedDataMiddleware(fallback, {"/static": str(root / "public")}, allow_hidden=True)
    assert call_app(app, "/static/.env").body == SECRET  # asked for: served
    assert refused(app, "/static/../secret.txt")
    assert refused(app, "/static/.../secret.txt")


def test_an_exported_symlinked_directory_is_its_own_root(root: Path) -> None:
    if not hasattr(os, "symlink"):
        pytest.skip("needs symlinks")
    link = root / "linked-export"
    link.symlink_to(root / "public", target_is_directory=True)
    app = SharedDataMiddleware(fallback, {"/static": str(link)})
    assert call_app(app, "/static/ok.txt").body == b"fine"
    assert refused(app, "/static/escape.txt")


@needs_symlinks
def test_an_index_file_leaving_the_export_is_refused(root: Path) -> None:
    (root / "public" / "sub" / "index.html").symlink_to(root / "secret.txt")
    (root / "public" / "index.html").symlink_to(root / "secret.txt")
    app = SharedDataMiddleware(fallback, {"/static": str(root / "public")}, index="index.html")
    assert refused(app, "/static/sub/")
    assert refused(app, "/static/")


PATH_PIECES = [
    "..",
    ".",
    "/",
    "//",
    "\\",
    "secret.txt",
    "outside",
    "public",
    "public-evil",
    "sub",
    "C:",
    "\x00",
    "%2e",
    ".env",
    "escape-dir",
    "ok.txt",
]


@given(
    pieces=st.lists(st.sampled_from(PATH_PIECES), max_size=12),
    prefix=st.sampled_from(["/static/", "/static", "/one", "/"]),
)
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_combination_of_path_pieces_leaves_the_export(
    app: SharedDataMiddleware, pieces: list[str], prefix: str
) -> None:
    path = prefix + "".join(pieces)
    response = call_app(app, path)
    assert SECRET not in response.body, path


@pytest.mark.parametrize("suffix", ["", ".gz", ".br", ".zst", ".GZ"])
def test_a_disallowed_file_is_refused_compressed_too(tmp_path: Path, suffix: str) -> None:
    """``disallow="*.map"`` refuses the source map whether asked for plain or as its
    precompressed sibling."""
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "app.js").write_bytes(b"code")
    (assets / f"app.js.map{suffix}").write_bytes(SECRET)
    app = SharedDataMiddleware(fallback, {"/assets": str(assets)}, disallow="*.map")
    response = call_app(app, f"/assets/app.js.map{suffix}")
    assert response.body == b"app" and SECRET not in response.body
    assert call_app(app, "/assets/app.js").body == b"code"  # the control


def test_a_compressed_name_that_only_looks_disallowed_is_served(tmp_path: Path) -> None:
    (tmp_path / "notes.txt.gz").write_bytes(b"zipped notes")
    app = SharedDataMiddleware(fallback, {"/s": str(tmp_path)}, disallow="*.map")
    assert call_app(app, "/s/notes.txt.gz").body == b"zipped notes"


@pytest.mark.parametrize("path", ["//docs", "///docs", "/static//docs"])
def test_the_index_redirect_is_never_protocol_relative(tmp_path: Path, path: str) -> None:
    """``Location: //docs/`` would send the browser to the host "docs"."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_bytes(b"<p>docs")
    prefix = "/static" if path.startswith("/static") else "/"
    app = SharedDataMiddleware(fallback, {prefix: str(tmp_path)}, index="index.html")
    response = call_app(app, path)
    location = response.header("Location") or ""
    assert response.code == 301, response.body
    assert location.startswith("/") and not location.startswith("//"), location
    assert location.endswith("docs/")
    follow = call_app(app, location)  # the control: the redirect leads to the index
    assert follow.code == 200 and follow.body == b"<p>docs"
