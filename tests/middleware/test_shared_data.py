"""SharedDataMiddleware in process: what a client sees for each kind of request."""

from __future__ import annotations

import email.parser
import gzip
import importlib
import io
import os
import sys
import threading
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

import pytest

import wsgidev
import wsgidev.middleware.shared_data as shared_data_module
from tests.conftest import Response, call_app
from wsgidev.middleware.shared_data import SharedDataMiddleware

HELLO = b"hello world\n"
DATA = bytes(range(256)) * 400  # 102400 bytes: two 64 KiB blocks
JS = b"console.log('plain');\n" * 20


def fallback(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = b"app: " + environ["PATH_INFO"].encode("latin-1")
    start_response(
        "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


def is_fallback(response: Response) -> bool:
    return response.code == 404 and response.body.startswith(b"app: ")


@dataclass
class Tree:
    root: Path
    public: Path

    def touch_later(self, path: Path, seconds: float) -> None:
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + int(seconds * 1e9)))


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    public = tmp_path / "public"
    (public / "dir").mkdir(parents=True)
    (public / "private").mkdir()
    (public / ".git").mkdir()
    (public / "hello.txt").write_bytes(HELLO)
    (public / "data.bin").write_bytes(DATA)
    (public / "app.js").write_bytes(JS)
    (public / "app.js.gz").write_bytes(gzip.compress(JS))
    (public / "app.js.br").write_bytes(b"pretend-brotli")
    (public / "app.3f9a2c1b.js").write_bytes(b"hashed")
    (public / "config.json").write_bytes(b"{}")
    (public / "image.png").write_bytes(b"\x89PNG")
    (public / "icon.svg").write_bytes(b"<svg/>")
    (public / "blob.unknownext").write_bytes(b"?")
    (public / "dir" / "index.html").write_bytes(b"<p>index</p>")
    (public / "private" / "key.pem").write_bytes(b"KEY")
    (public / "code.py").write_bytes(b"print()")
    (public / ".env").write_bytes(b"SECRET=1")
    (public / ".git" / "config").write_bytes(b"[core]")
    (public / "empty.txt").write_bytes(b"")
    (tmp_path / "secret.txt").write_bytes(b"outside")
    for path in (public / "app.js.gz", public / "app.js.br"):
        Tree(tmp_path, public).touch_later(path, 1)
    return Tree(tmp_path, public)


@pytest.fixture
def app(tree: Tree) -> SharedDataMiddleware:
    return SharedDataMiddleware(fallback, {"/static": str(tree.public)})


# ---------------------------------------------------------------- basics


def test_is_exported_from_the_package_root() -> None:
    assert wsgidev.SharedDataMiddleware is SharedDataMiddleware


def test_serves_a_file_with_its_headers(app: SharedDataMiddleware, tree: Tree) -> None:
    before = time.time()
    response = call_app(app, "/static/hello.txt")
    assert response.status == "200 OK"
    assert response.body == HELLO
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.header("Content-Length") == str(len(HELLO))
    assert response.header("Accept-Ranges") == "bytes"
    etag = response.header("ETag")
    assert (
        etag is not None
        and etag.startswith('"')
        and etag.endswith('"')
        and not etag.startswith("W/")
    )
    mtime = int((tree.public / "hello.txt").stat().st_mtime)
    assert response.header("Last-Modified") == formatdate(mtime, usegmt=True)
    assert response.header("Cache-Control") == "public, max-age=43200"
    expires = response.header("Expires")
    assert expires is not None
    assert (
        before + 43200 - 2 <= parsedate_to_datetime(expires).timestamp() <= time.time() + 43200 + 1
    )
    assert response.header("Vary") is None  # no precompressed siblings
    assert response.header("Date") is None  # the server adds its own


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("config.json", "application/json; charset=utf-8"),
        ("dir/index.html", "text/html; charset=utf-8"),
        ("image.png", "image/png"),
        ("icon.svg", "image/svg+xml; charset=utf-8"),
        ("blob.unknownext", "application/x-fallback"),
        ("app.js.gz", "application/gzip"),  # asked for by name it is an archive, not encoded JS
    ],
)
def test_content_type_from_the_name(tree: Tree, name: str, content_type: str) -> None:
    app = SharedDataMiddleware(
        fallback, {"/static": str(tree.public)}, fallback_mimetype="application/x-fallback"
    )
    response = call_app(app, f"/static/{name}")
    assert response.code == 200
    assert response.header("Content-Type") == content_type
    assert response.header("Content-Encoding") is None


def test_empty_file(app: SharedDataMiddleware) -> None:
    response = call_app(app, "/static/empty.txt")
    assert (response.code, response.body, response.header("Content-Length")) == (200, b"", "0")


def test_paths_without_a_file_fall_through_to_the_app(app: SharedDataMiddleware) -> None:
    for path in (
        "/static/missing.txt",
        "/static/dir",
        "/static/dir/",
        "/static/",
        "/static",
        "/other/hello.txt",
        "/",
    ):
        assert is_fallback(call_app(app, path)), path
    assert is_fallback(call_app(app, "/static/hello.txt/"))  # a file is not a directory


def test_a_file_created_after_a_miss_is_served(app: SharedDataMiddleware, tree: Tree) -> None:
    assert is_fallback(call_app(app, "/static/later.txt"))
    (tree.public / "later.txt").write_bytes(b"now here")
    assert call_app(app, "/static/later.txt").body == b"now here"


def test_exports_as_a_list_of_pairs_and_single_files(tree: Tree) -> None:
    app = SharedDataMiddleware(
        fallback,
        [("/favicon.ico", str(tree.public / "image.png")), ("/assets/", tree.public / "dir")],
    )
    icon = call_app(app, "/favicon.ico")
    assert (icon.code, icon.body, icon.header("Content-Type")) == (200, b"\x89PNG", "image/png")
    assert is_fallback(call_app(app, "/favicon.ico/x"))
    assert call_app(app, "/assets/index.html").body == b"<p>index</p>"


def test_longest_prefix_wins_then_shorter_ones_are_tried(tree: Tree, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "hello.txt").write_bytes(b"from the longer prefix")
    (tree.public / "static").mkdir()
    (tree.public / "static" / "hello.txt").write_bytes(b"from the root export")
    (tree.public / "static" / "only-here.txt").write_bytes(b"root only")
    for exports in (
        {"/": str(tree.public), "/static": str(other)},
        {"/static": str(other), "/": str(tree.public)},
    ):
        app = SharedDataMiddleware(fallback, exports)
        assert call_app(app, "/static/hello.txt").body == b"from the longer prefix"
        assert call_app(app, "/static/only-here.txt").body == b"root only"
        assert call_app(app, "/hello.txt").body == HELLO


def test_root_export_serves_everything_below_it(tree: Tree) -> None:
    app = SharedDataMiddleware(fallback, {"": str(tree.public)})
    assert call_app(app, "/hello.txt").body == HELLO
    assert call_app(app, "/dir/index.html").body == b"<p>index</p>"


def test_utf8_file_names(tree: Tree) -> None:
    (tree.public / "café.txt").write_bytes(b"cafe")
    app = SharedDataMiddleware(fallback, {"/static": str(tree.public)})
    # PEP 3333: PATH_INFO carries the raw bytes as latin-1.
    assert call_app(app, "/static/caf\xc3\xa9.txt").body == b"cafe"


def test_werkzeug_positional_signature(tree: Tree) -> None:
    app = SharedDataMiddleware(
        fallback, {"/static": str(tree.public)}, "*.py", False, 60, "text/x-unknown"
    )
    assert is_fallback(call_app(app, "/static/code.py"))
    response = call_app(app, "/static/blob.unknownext")
    assert response.header("Content-Type") == "text/x-unknown; charset=utf-8"
    assert response.header("Cache-Control") == "no-cache"


# ---------------------------------------------------------------- packages


def _write_package(base: Path, name: str) -> None:
    (base / name / "static").mkdir(parents=True)
    (base / name / "__init__.py").write_text("")
    (base / name / "static" / "pkg.txt").write_bytes(b"from " + name.encode())


def test_package_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_package(tmp_path, "sdm_regular_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = SharedDataMiddleware(fallback, {"/pkg": ("sdm_regular_pkg", "static")})
    response = call_app(app, "/pkg/pkg.txt")
    assert (response.code, response.body) == (200, b"from sdm_regular_pkg")
    assert response.header("ETag") is not None


def test_package_export_of_a_single_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_package(tmp_path, "sdm_single_file_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = SharedDataMiddleware(fallback, {"/robots.txt": ("sdm_single_file_pkg", "static/pkg.txt")})
    assert call_app(app, "/robots.txt").body == b"from sdm_single_file_pkg"
    assert is_fallback(call_app(app, "/robots.txt/x"))


def test_namespace_package_export_searches_every_portion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for portion, name in (("one", "first.txt"), ("two", "second.txt")):
        folder = tmp_path / portion / "sdm_namespace_pkg" / "static"
        folder.mkdir(parents=True)
        (folder / name).write_bytes(portion.encode())
        monkeypatch.syspath_prepend(str(tmp_path / portion))
    importlib.invalidate_caches()
    app = SharedDataMiddleware(fallback, {"/ns": ("sdm_namespace_pkg", "static")})
    assert call_app(app, "/ns/first.txt").body == b"one"
    assert call_app(app, "/ns/second.txt").body == b"two"


def test_zipped_package_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("sdm_zipped_pkg/__init__.py", "")
        bundle.writestr(
            zipfile.ZipInfo("sdm_zipped_pkg/static/z.css", (2020, 5, 17, 12, 0, 0)), "body{}"
        )
        bundle.writestr("sdm_zipped_pkg/static/sub/index.html", "<p>zipped</p>")
        bundle.writestr("sdm_zipped_pkg/static/.hidden", "no")
    monkeypatch.syspath_prepend(str(archive))
    importlib.invalidate_caches()
    app = SharedDataMiddleware(fallback, {"/zip": ("sdm_zipped_pkg", "static")}, index="index.html")
    response = call_app(app, "/zip/z.css")
    assert (response.code, response.body) == (200, b"body{}")
    assert response.header("Content-Type") == "text/css; charset=utf-8"
    assert response.header(
        "Last-Modified",
    ) == formatdate(time.mktime((2020, 5, 17, 12, 0, 0, 0, 0, -1)), usegmt=True)
    etag = response.header("ETag")
    assert etag is not None
    assert call_app(app, "/zip/z.css", headers={"If-None-Match": etag}).code == 304
    ranged = call_app(app, "/zip/z.css", headers={"Range": "bytes=0-3"})
    assert (ranged.code, ranged.body) == (206, b"body")
    assert call_app(app, "/zip/sub/").body == b"<p>zipped</p>"
    assert call_app(app, "/zip/sub").code == 301
    assert is_fallback(call_app(app, "/zip/.hidden"))
    assert is_fallback(call_app(app, "/zip/../__init__.py"))
    assert is_fallback(call_app(app, "/zip/missing.css"))
    guarded = SharedDataMiddleware(
        fallback, {"/zip": ("sdm_zipped_pkg", "static")}, index="index.html", disallow="sub/*"
    )
    assert is_fallback(call_app(guarded, "/zip/sub/"))
    assert call_app(guarded, "/zip/z.css").code == 200
    sys.modules.pop("sdm_zipped_pkg", None)


def test_a_missing_path_in_a_package_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_package(tmp_path, "sdm_pkg_without_assets")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="'assets' in package 'sdm_pkg_without_assets'"):
        app = SharedDataMiddleware(fallback, {"/a": ("sdm_pkg_without_assets", "assets")})
    assert is_fallback(call_app(app, "/a/x.css"))


def test_unknown_package_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no_such_package_sdm"):
        SharedDataMiddleware(fallback, {"/x": ("no_such_package_sdm", "static")})


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"exports": 5}, TypeError, "exports"),
        ({"exports": ["/static"]}, TypeError, "exports"),
        ({"exports": {"/static": 5}}, TypeError, r"exports\['/static'\]"),
        ({"exports": {"/x": ("pkg",)}}, TypeError, "package_name"),
        ({"exports": {}, "disallow": 5}, TypeError, "disallow"),
        ({"exports": {}, "disallow": [b"*.py"]}, TypeError, "disallow"),
        ({"exports": {}, "cache_timeout": -1}, ValueError, "cache_timeout"),
        ({"exports": {}, "cache_timeout": "60"}, ValueError, "cache_timeout"),
        ({"exports": {}, "fallback_mimetype": "binary"}, ValueError, "fallback_mimetype"),
        ({"exports": {}, "index": "../index.html"}, ValueError, "index"),
        ({"exports": {}, "index": "a/index.html"}, ValueError, "index"),
    ],
)
def test_bad_arguments_name_themselves(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        SharedDataMiddleware(fallback, **kwargs)


def test_app_must_be_callable() -> None:
    with pytest.raises(TypeError, match="app"):
        SharedDataMiddleware(None, {})  # type: ignore[arg-type]


def test_a_missing_export_directory_warns_with_its_path_and_is_served_once_created(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "build" / "assets"
    with pytest.warns(RuntimeWarning, match=str(missing)):
        app = SharedDataMiddleware(fallback, {"/assets": str(missing)})
    assert is_fallback(call_app(app, "/assets/app.css"))
    missing.mkdir(parents=True)
    (missing / "app.css").write_bytes(b"body{}")
    assert call_app(app, "/assets/app.css").body == b"body{}"


def test_an_existing_export_does_not_warn(tree: Tree) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SharedDataMiddleware(fallback, {"/static": str(tree.public)})


# ---------------------------------------------------------------- disallow and hidden files


def test_disallow_takes_a_list_matched_against_the_path_inside_the_export(tree: Tree) -> None:
    app = SharedDataMiddleware(
        fallback, {"/static": str(tree.public)}, disallow=["*.py", "private/*"]
    )
    assert is_fallback(call_app(app, "/static/code.py"))
    assert is_fallback(call_app(app, "/static/private/key.pem"))
    assert call_app(app, "/static/hello.txt").code == 200


def test_disallow_takes_a_single_pattern(tree: Tree) -> None:
    (tree.public / "dir" / "deep.py").write_bytes(b"x")
    app = SharedDataMiddleware(fallback, {"/static": str(tree.public)}, disallow="*.py")
    assert is_fallback(call_app(app, "/static/dir/deep.py"))
    assert call_app(app, "/static/private/key.pem").code == 200


def test_is_allowed_can_be_overridden(tree: Tree) -> None:
    class OnlyText(SharedDataMiddleware):
        def is_allowed(self, filename: str) -> bool:
            return filename.endswith(".txt")

    app = OnlyText(fallback, {"/static": str(tree.public)})
    assert call_app(app, "/static/hello.txt").code == 200
    assert is_fallback(call_app(app, "/static/app.js"))


def test_hidden_files_only_when_allowed(tree: Tree) -> None:
    app = SharedDataMiddleware(fallback, {"/static": str(tree.public)})
    assert is_fallback(call_app(app, "/static/.env"))
    assert is_fallback(call_app(app, "/static/.git/config"))
    allowing = SharedDataMiddleware(fallback, {"/static": str(tree.public)}, allow_hidden=True)
    assert call_app(allowing, "/static/.env").body == b"SECRET=1"


# ---------------------------------------------------------------- methods


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_on_a_file_get_405_with_allow(app: SharedDataMiddleware, method: str) -> None:
    response = call_app(app, "/static/hello.txt", method=method)
    assert response.code == 405
    assert response.header("Allow") == "GET, HEAD"
    assert call_app(app, "/static/app.js", method=method).header("Vary") == "Accept-Encoding"


def test_other_methods_elsewhere_reach_the_app(app: SharedDataMiddleware) -> None:
    assert is_fallback(call_app(app, "/static/missing", method="POST"))
    assert is_fallback(call_app(app, "/api", method="POST"))


def test_head_has_the_get_headers_and_opens_nothing(
    app: SharedDataMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    get = call_app(app, "/static/hello.txt")
    opened: list[str] = []
    monkeypatch.setattr(
        shared_data_module, "open", lambda *a, **k: opened.append(a[0]), raising=False
    )
    head = call_app(app, "/static/hello.txt", method="HEAD")
    assert head.code == 200 and head.body == b""
    assert dict(head.headers) == dict(get.headers)
    ranged = call_app(app, "/static/data.bin", method="HEAD", headers={"Range": "bytes=0-9"})
    assert ranged.code == 206 and ranged.body == b"" and ranged.header("Content-Length") == "10"
    multi = call_app(app, "/static/data.bin", method="HEAD", headers={"Range": "bytes=0-9,100-109"})
    assert multi.code == 206 and multi.body == b""
    assert opened == []


# ---------------------------------------------------------------- conditional requests


@pytest.fixture
def validators(app: SharedDataMiddleware) -> tuple[str, str]:
    response = call_app(app, "/static/hello.txt")
    etag, last_modified = response.header("ETag"), response.header("Last-Modified")
    assert etag and last_modified
    return etag, last_modified


def _date(offset: float, tree: Tree) -> str:
    return formatdate((tree.public / "hello.txt").stat().st_mtime + offset, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"If-None-Match": "{etag}"}, 304),
        ({"If-None-Match": '"other", {etag}'}, 304),
        ({"If-None-Match": "W/{etag}"}, 304),  # weak comparison
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": "{last_modified}"}, 304),
        ({"If-Modified-Since": "{later}"}, 304),
        ({"If-Modified-Since": "{earlier}"}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        # RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        ({"If-None-Match": '"other"', "If-Modified-Since": "{later}"}, 200),
        ({"If-Match": "{etag}"}, 200),
        ({"If-Match": "*"}, 200),
        ({"If-Match": '"other"'}, 412),
        ({"If-Match": "W/{etag}"}, 412),  # strong comparison
        ({"If-Unmodified-Since": "{later}"}, 200),
        ({"If-Unmodified-Since": "{earlier}"}, 412),
        ({"If-Unmodified-Since": "garbage"}, 200),
        # RFC 9110 13.2.2: If-Match is evaluated first; If-Unmodified-Since only without it.
        ({"If-Match": "{etag}", "If-Unmodified-Since": "{earlier}"}, 200),
        ({"If-Match": '"other"', "If-None-Match": "{etag}"}, 412),
        ({"If-Match": "{etag}", "If-None-Match": "{etag}"}, 304),
    ],
)
def test_preconditions(
    app: SharedDataMiddleware,
    tree: Tree,
    validators: tuple[str, str],
    headers: dict[str, str],
    code: int,
) -> None:
    etag, last_modified = validators
    fields = {
        "etag": etag,
        "last_modified": last_modified,
        "later": _date(3600, tree),
        "earlier": _date(-3600, tree),
    }
    response = call_app(
        app, "/static/hello.txt", headers={k: v.format(**fields) for k, v in headers.items()}
    )
    assert response.code == code
    if code == 304:
        assert response.body == b""
        assert response.header("ETag") == etag
        assert response.header("Cache-Control") == "public, max-age=43200"
        assert response.header("Expires") is not None
        assert response.header("Content-Type") is None and response.header("Content-Length") is None
    if code == 412:
        assert response.body == b"Precondition Failed\n"


def test_preconditions_apply_to_head(
    app: SharedDataMiddleware, validators: tuple[str, str]
) -> None:
    assert (
        call_app(
            app, "/static/hello.txt", method="HEAD", headers={"If-None-Match": validators[0]}
        ).code
        == 304
    )


# ---------------------------------------------------------------- ranges


def test_single_range(app: SharedDataMiddleware) -> None:
    response = call_app(app, "/static/data.bin", headers={"Range": "bytes=10-19"})
    assert response.status == "206 Partial Content"
    assert response.body == DATA[10:20]
    assert response.header("Content-Range") == f"bytes 10-19/{len(DATA)}"
    assert response.header("Content-Length") == "10"
    assert response.header("Content-Type") == "application/octet-stream"
    assert response.header("ETag") is not None


@pytest.mark.parametrize(
    ("spec", "start", "stop"),
    [
        ("bytes=100000-", 100000, len(DATA)),
        ("bytes=-100", len(DATA) - 100, len(DATA)),
        ("bytes=0-999999", 0, len(DATA)),
    ],
)
def test_open_ended_and_suffix_ranges(
    app: SharedDataMiddleware, spec: str, start: int, stop: int
) -> None:
    response = call_app(app, "/static/data.bin", headers={"Range": spec})
    assert response.code == 206
    assert response.body == DATA[start:stop]
    assert response.header("Content-Range") == f"bytes {start}-{stop - 1}/{len(DATA)}"


def test_several_ranges_are_multipart_byteranges(app: SharedDataMiddleware) -> None:
    response = call_app(app, "/static/data.bin", headers={"Range": "bytes=0-9, 70000-70009, -5"})
    assert response.code == 206
    content_type = response.header("Content-Type") or ""
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert response.header("Content-Length") == str(len(response.body))
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + response.body
    )
    payload = message.get_payload()
    assert isinstance(payload, list)  # a multipart message: one Message per part
    parts = [
        (part["Content-Range"], part["Content-Type"], part.get_payload(decode=True))
        for part in payload
    ]
    size = len(DATA)
    assert parts == [
        (f"bytes 0-9/{size}", "application/octet-stream", DATA[0:10]),
        (f"bytes 70000-70009/{size}", "application/octet-stream", DATA[70000:70010]),
        (f"bytes {size - 5}-{size - 1}/{size}", "application/octet-stream", DATA[-5:]),
    ]


def test_overlapping_ranges_merge_into_one_part(app: SharedDataMiddleware) -> None:
    response = call_app(app, "/static/data.bin", headers={"Range": "bytes=0-99,50-149"})
    assert response.code == 206
    assert response.header("Content-Range") == f"bytes 0-149/{len(DATA)}"
    assert response.body == DATA[:150]


@pytest.mark.parametrize("spec", ["bytes=200000-", "bytes=-0", "bytes=102400-102401"])
def test_unsatisfiable_range_is_416(app: SharedDataMiddleware, spec: str) -> None:
    response = call_app(app, "/static/data.bin", headers={"Range": spec})
    assert response.code == 416
    assert response.header("Content-Range") == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("spec", ["bytes=5-1", "bytes=x-y", "pages=1-2", "bytes=" + "0-0," * 100])
def test_unreadable_range_is_ignored(app: SharedDataMiddleware, spec: str) -> None:
    response = call_app(app, "/static/data.bin", headers={"Range": spec})
    assert (response.code, response.body) == (200, DATA)


def test_if_range(app: SharedDataMiddleware) -> None:
    full = call_app(app, "/static/data.bin")
    etag, last_modified = full.header("ETag"), full.header("Last-Modified")
    assert etag and last_modified

    def ranged(if_range: str) -> int:
        return call_app(
            app, "/static/data.bin", headers={"Range": "bytes=0-9", "If-Range": if_range}
        ).code

    assert ranged(etag) == 206
    assert ranged(last_modified) == 206
    assert ranged('"stale"') == 200
    assert ranged("W/" + etag) == 200  # If-Range needs a strong match
    assert ranged("Sun, 06 Nov 1994 08:49:37 GMT") == 200


def test_if_range_after_the_file_changed_sends_the_new_file(
    app: SharedDataMiddleware, tree: Tree
) -> None:
    etag = call_app(app, "/static/data.bin").header("ETag")
    assert etag
    (tree.public / "data.bin").write_bytes(b"new content")
    response = call_app(app, "/static/data.bin", headers={"Range": "bytes=0-2", "If-Range": etag})
    assert (response.code, response.body) == (200, b"new content")


# ---------------------------------------------------------------- precompressed siblings


def test_gzip_sibling_when_accepted(app: SharedDataMiddleware) -> None:
    plain = call_app(app, "/static/app.js")
    response = call_app(app, "/static/app.js", headers={"Accept-Encoding": "gzip, deflate"})
    assert response.code == 200
    assert response.header("Content-Encoding") == "gzip"
    assert gzip.decompress(response.body) == JS
    assert response.header("Content-Type") == "text/javascript; charset=utf-8"
    assert response.header("Content-Length") == str(len(response.body))
    assert response.header("Vary") == "Accept-Encoding"
    assert response.header("ETag") not in (None, plain.header("ETag"))
    assert plain.header("Vary") == "Accept-Encoding"
    assert plain.header("Content-Encoding") is None and plain.body == JS


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        ("gzip, br", "br"),
        ("br;q=0.4, gzip;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("identity;q=0, gzip;q=0.1", "gzip"),
        ("gzip;q=0.5, identity", None),
        ("deflate", None),
        ("*;q=0", None),  # nothing acceptable: the file as it is rather than a 406
    ],
)
def test_accept_encoding_q_values(
    app: SharedDataMiddleware, accept: str, encoding: str | None
) -> None:
    response = call_app(app, "/static/app.js", headers={"Accept-Encoding": accept})
    assert response.header("Content-Encoding") == encoding
    assert response.header("Vary") == "Accept-Encoding"


def test_each_encoding_revalidates_with_its_own_etag(app: SharedDataMiddleware) -> None:
    gz = call_app(app, "/static/app.js", headers={"Accept-Encoding": "gzip"})
    etag = gz.header("ETag")
    assert etag
    again = call_app(
        app, "/static/app.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
    )
    assert again.code == 304 and again.header("Vary") == "Accept-Encoding"
    plain = call_app(app, "/static/app.js", headers={"If-None-Match": etag})
    assert plain.code == 200 and plain.body == JS


def test_ranges_apply_to_the_encoded_bytes(app: SharedDataMiddleware) -> None:
    response = call_app(
        app, "/static/app.js", headers={"Accept-Encoding": "br", "Range": "bytes=0-6"}
    )
    assert (response.code, response.body, response.header("Content-Encoding")) == (
        206,
        b"pretend",
        "br",
    )


def test_stale_sibling_is_not_served(app: SharedDataMiddleware, tree: Tree) -> None:
    time.sleep(0.01)
    (tree.public / "app.js").write_bytes(b"edited();")
    tree.touch_later(tree.public / "app.js", 5)
    response = call_app(app, "/static/app.js", headers={"Accept-Encoding": "gzip, br"})
    assert response.header("Content-Encoding") is None
    assert response.body == b"edited();"


# ---------------------------------------------------------------- caching headers


def test_hashed_names_are_immutable_for_a_year(app: SharedDataMiddleware) -> None:
    response = call_app(app, "/static/app.3f9a2c1b.js")
    assert response.header("Cache-Control") == "public, max-age=31536000, immutable"
    expires = response.header("Expires")
    assert expires and parsedate_to_datetime(expires).timestamp() > time.time() + 31536000 - 5


def test_cache_timeout_and_cache_off(tree: Tree) -> None:
    short = SharedDataMiddleware(fallback, {"/static": str(tree.public)}, cache_timeout=60)
    assert call_app(short, "/static/hello.txt").header("Cache-Control") == "public, max-age=60"
    off = SharedDataMiddleware(fallback, {"/static": str(tree.public)}, cache=False)
    response = call_app(off, "/static/hello.txt")
    assert response.header("Cache-Control") == "no-cache"
    assert response.header("Expires") is None
    assert response.header("ETag") and response.header("Last-Modified")


def test_a_changed_file_gets_a_new_etag_at_once(app: SharedDataMiddleware, tree: Tree) -> None:
    first = call_app(app, "/static/hello.txt")
    (tree.public / "hello.txt").write_bytes(b"changed!\n")
    second = call_app(app, "/static/hello.txt")
    assert second.body == b"changed!\n"
    assert second.header("ETag") != first.header("ETag")
    assert (
        call_app(
            app, "/static/hello.txt", headers={"If-None-Match": first.header("ETag") or ""}
        ).code
        == 200
    )


def test_a_changed_file_with_the_same_size_and_time_still_changes_etag(
    app: SharedDataMiddleware, tree: Tree
) -> None:
    path = tree.public / "hello.txt"
    first = call_app(app, "/static/hello.txt")
    info = path.stat()
    replacement = tree.public / "replacement.tmp"
    replacement.write_bytes(b"HELLO WORLD\n")
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    replacement.replace(path)  # the atomic save editors do: a new inode
    second = call_app(app, "/static/hello.txt")
    assert second.body == b"HELLO WORLD\n"
    assert second.header("ETag") != first.header("ETag")


def test_a_deleted_file_falls_through(app: SharedDataMiddleware, tree: Tree) -> None:
    assert call_app(app, "/static/hello.txt").code == 200
    (tree.public / "hello.txt").unlink()
    assert is_fallback(call_app(app, "/static/hello.txt"))


def test_a_sibling_added_later_is_picked_up(
    app: SharedDataMiddleware, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        call_app(app, "/static/hello.txt", headers={"Accept-Encoding": "gzip"}).header("Vary")
        is None
    )
    (tree.public / "hello.txt.gz").write_bytes(gzip.compress(HELLO))
    tree.touch_later(tree.public / "hello.txt.gz", 1)
    monkeypatch.setattr(shared_data_module, "REFIND_AFTER", 0.0)
    response = call_app(app, "/static/hello.txt", headers={"Accept-Encoding": "gzip"})
    assert response.header("Content-Encoding") == "gzip"
    assert gzip.decompress(response.body) == HELLO


# ---------------------------------------------------------------- directory index


def test_index_is_off_by_default(app: SharedDataMiddleware) -> None:
    assert is_fallback(call_app(app, "/static/dir/"))


def test_index_serves_the_directory_and_redirects_to_the_slash(tree: Tree) -> None:
    app = SharedDataMiddleware(fallback, {"/static": str(tree.public)}, index="index.html")
    page = call_app(app, "/static/dir/")
    assert (page.code, page.body, page.header("Content-Type")) == (
        200,
        b"<p>index</p>",
        "text/html; charset=utf-8",
    )
    redirect = call_app(app, "/static/dir", SCRIPT_NAME="/mount", QUERY_STRING="a=1")
    assert redirect.code == 301
    assert redirect.header("Location") == "/mount/static/dir/?a=1"
    assert call_app(app, "/static/dir", method="POST").code == 405
    assert is_fallback(call_app(app, "/static/private/"))  # no index.html there
    assert is_fallback(call_app(app, "/static/"))


def test_index_redirect_quotes_the_path(tree: Tree) -> None:
    (tree.public / "a b é").mkdir()
    (tree.public / "a b é" / "index.html").write_bytes(b"x")
    app = SharedDataMiddleware(fallback, {"/static": str(tree.public)}, index="index.html")
    redirect = call_app(app, "/static/a b \xc3\xa9")
    assert redirect.header("Location") == "/static/a%20b%20%C3%A9/"


def test_export_root_index(tree: Tree) -> None:
    app = SharedDataMiddleware(fallback, {"/docs": str(tree.public / "dir")}, index="index.html")
    assert call_app(app, "/docs/").body == b"<p>index</p>"
    assert call_app(app, "/docs").header("Location") == "/docs/"


def test_disallow_applies_to_the_index_file(tree: Tree) -> None:
    app = SharedDataMiddleware(
        fallback, {"/static": str(tree.public)}, index="index.html", disallow="dir/*"
    )
    assert is_fallback(call_app(app, "/static/dir/"))


# ---------------------------------------------------------------- bodies


class RecordingWrapper:
    """A wsgi.file_wrapper that records what it was given and reads like wsgiref's."""

    made: ClassVar[list[RecordingWrapper]] = []

    def __init__(self, file: Any, block_size: int = 8192) -> None:
        self.file, self.block_size, self.position = file, block_size, file.tell()
        self._inner = FileWrapper(file, block_size)
        RecordingWrapper.made.append(self)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._inner)

    def close(self) -> None:
        self._inner.close()


def test_uses_the_servers_file_wrapper(app: SharedDataMiddleware) -> None:
    RecordingWrapper.made.clear()
    response = call_app(app, "/static/data.bin", **{"wsgi.file_wrapper": RecordingWrapper})
    assert response.body == DATA
    (wrapper,) = RecordingWrapper.made
    assert wrapper.block_size == 64 * 1024 and wrapper.position == 0
    assert wrapper.file.closed


def test_a_range_to_the_end_uses_the_file_wrapper_from_its_start(
    app: SharedDataMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_data_module, "OFFSET_AWARE_WRAPPERS", ("tests.",))
    RecordingWrapper.made.clear()
    response = call_app(
        app,
        "/static/data.bin",
        headers={"Range": "bytes=1000-"},
        **{"wsgi.file_wrapper": RecordingWrapper},
    )
    assert response.body == DATA[1000:]
    assert [w.position for w in RecordingWrapper.made] == [1000]
    middle = call_app(
        app,
        "/static/data.bin",
        headers={"Range": "bytes=5-9"},
        **{"wsgi.file_wrapper": RecordingWrapper},
    )
    assert middle.body == DATA[5:10]
    assert len(RecordingWrapper.made) == 1  # a wrapper would send past the range's end


def test_a_range_is_not_given_to_a_wrapper_that_may_send_from_byte_zero(
    app: SharedDataMiddleware,
) -> None:
    RecordingWrapper.made.clear()  # from a module not known to send from the position
    response = call_app(
        app,
        "/static/data.bin",
        headers={"Range": "bytes=1000-"},
        **{"wsgi.file_wrapper": RecordingWrapper},
    )
    assert response.body == DATA[1000:]
    assert RecordingWrapper.made == []
    whole = call_app(app, "/static/data.bin", **{"wsgi.file_wrapper": RecordingWrapper})
    assert whole.body == DATA and len(RecordingWrapper.made) == 1


def test_without_a_file_wrapper_reads_64_kib_blocks(app: SharedDataMiddleware) -> None:
    environ = _environ("/static/data.bin")
    environ.pop("wsgi.file_wrapper", None)
    body = app(environ, lambda status, headers, exc_info=None: None)
    chunks = list(body)
    assert [len(c) for c in chunks] == [65536, len(DATA) - 65536]


def _environ(path: str, **headers: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(),
    }
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return environ


@pytest.fixture
def opened_files(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    files: list[Any] = []
    real_open = open

    def spy(*args: Any, **kwargs: Any) -> Any:
        handle = real_open(*args, **kwargs)
        files.append(handle)
        return handle

    monkeypatch.setattr(shared_data_module, "open", spy, raising=False)
    return files


@pytest.mark.parametrize("headers", [{}, {"RANGE": "bytes=0-9"}, {"RANGE": "bytes=0-9,100-109"}])
def test_files_are_closed_when_the_client_goes_away(
    app: SharedDataMiddleware, opened_files: list[Any], headers: dict[str, str]
) -> None:
    # A server whose client disconnected calls close() with the body unread or half read.
    for consumed in (0, 1):
        body = app(
            _environ("/static/data.bin", **headers), lambda status, headers, exc_info=None: None
        )
        iterator = iter(body)
        for _ in range(consumed):
            next(iterator)
        body.close()  # type: ignore[attr-defined]
    assert len(opened_files) == 2
    assert all(handle.closed for handle in opened_files)


@pytest.mark.parametrize("headers", [{}, {"RANGE": "bytes=0-9"}, {"RANGE": "bytes=0-9,100-109"}])
def test_files_are_closed_when_the_body_is_exhausted(
    app: SharedDataMiddleware, opened_files: list[Any], headers: dict[str, str]
) -> None:
    body = app(_environ("/static/data.bin", **headers), lambda status, headers, exc_info=None: None)
    b"".join(body)
    assert len(opened_files) == 1 and opened_files[0].closed


def test_answers_without_a_body_open_no_file(
    app: SharedDataMiddleware, opened_files: list[Any], validators: tuple[str, str]
) -> None:
    opened_files.clear()
    call_app(app, "/static/hello.txt", method="HEAD")
    call_app(app, "/static/hello.txt", headers={"If-None-Match": validators[0]})
    call_app(app, "/static/hello.txt", method="POST")
    call_app(app, "/static/data.bin", headers={"Range": "bytes=999999-"})
    assert opened_files == []


def test_an_unreadable_file_falls_through(
    app: SharedDataMiddleware, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert call_app(app, "/static/hello.txt").code == 200

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", args[0])

    monkeypatch.setattr(shared_data_module, "open", refuse, raising=False)
    assert is_fallback(call_app(app, "/static/hello.txt"))


# ---------------------------------------------------------------- plain WSGI


VALIDATED_REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/static/hello.txt", {}),
    ("GET", "/static/app.js", {"Accept-Encoding": "gzip"}),
    ("HEAD", "/static/hello.txt", {}),
    ("GET", "/static/hello.txt", {"If-None-Match": "*"}),
    ("GET", "/static/hello.txt", {"If-Match": '"nope"'}),
    ("GET", "/static/data.bin", {"Range": "bytes=0-9"}),
    ("GET", "/static/data.bin", {"Range": "bytes=0-9,20-29"}),
    ("GET", "/static/data.bin", {"Range": "bytes=999999-"}),
    ("HEAD", "/static/data.bin", {"Range": "bytes=0-9,20-29"}),
    ("POST", "/static/hello.txt", {}),
    ("GET", "/static/dir", {}),
    ("HEAD", "/static/dir", {}),
    ("GET", "/static/dir/", {}),
    ("GET", "/static/empty.txt", {}),
    ("GET", "/static/../secret.txt", {}),
    ("GET", "/elsewhere", {}),
]


@pytest.mark.parametrize("wrapper", [None, FileWrapper], ids=["no-file-wrapper", "file-wrapper"])
@pytest.mark.parametrize(("method", "path", "headers"), VALIDATED_REQUESTS)
def test_passes_wsgiref_validator(
    tree: Tree, wrapper: Any, method: str, path: str, headers: dict[str, str]
) -> None:
    app = validator(
        SharedDataMiddleware(validator(fallback), {"/static": str(tree.public)}, index="index.html")
    )
    extra: dict[str, Any] = {"SCRIPT_NAME": ""}
    if wrapper is not None:
        extra["wsgi.file_wrapper"] = wrapper
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = call_app(app, path, method=method, headers=headers, **extra)
    assert response.code in (200, 206, 301, 304, 404, 405, 412, 416)


def test_disallow_applies_to_single_file_exports_by_name(tree: Tree) -> None:
    app = SharedDataMiddleware(
        fallback, {"/code.py": str(tree.public / "code.py")}, disallow="*.py"
    )
    assert is_fallback(call_app(app, "/code.py"))


def test_very_long_paths_fall_through_and_are_not_remembered(app: SharedDataMiddleware) -> None:
    for path in ("/static/" + "a" * 5000, "/static/" + "a/" * 3000 + "x", "/api/" + "b" * 100_000):
        assert is_fallback(call_app(app, path))
    assert all(len(key) <= shared_data_module.CACHED_PATH_LIMIT for key in app._found)


def _replace_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(content)
    temporary.replace(path)


def test_a_file_replaced_between_stat_and_open_is_described_again(
    app: SharedDataMiddleware, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = call_app(app, "/static/hello.txt")
    # Hold the window between the freshness check and the open wide open.
    monkeypatch.setattr(shared_data_module, "_is_fresh", lambda file: True)
    _replace_atomically(tree.public / "hello.txt", b"a longer replacement body\n")
    for headers in ({}, {"Range": "bytes=2-5"}, {"Range": "bytes=0-0,2-3"}):
        monkeypatch.setattr(shared_data_module, "_is_fresh", lambda file: True)
        second = call_app(app, "/static/hello.txt", headers=headers)
        assert second.header("ETag") != first.header("ETag")
        assert second.header("Content-Length") == str(len(second.body))
    assert call_app(app, "/static/hello.txt").body == b"a longer replacement body\n"


def test_concurrent_requests_while_the_file_is_replaced(
    app: SharedDataMiddleware, tree: Tree
) -> None:
    """Every answer's body matches its Content-Length, and one ETag always means one body."""
    path = tree.public / "hello.txt"
    bodies_by_etag: dict[str, set[bytes]] = {}
    problems: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def reader() -> None:
        for _ in range(150):
            response = call_app(app, "/static/hello.txt")
            if response.code != 200:
                continue  # between an unlink and a rename the app may answer
            if response.header("Content-Length") != str(len(response.body)):
                problems.append(f"length {response.header('Content-Length')} for {response.body!r}")
            with lock:
                bodies_by_etag.setdefault(response.header("ETag") or "", set()).add(response.body)

    def writer() -> None:
        for number in range(60):
            if stop.is_set():
                return
            _replace_atomically(path, b"version %d " % number + b"x" * (number % 7))

    threads = [threading.Thread(target=reader) for _ in range(4)] + [
        threading.Thread(target=writer)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stop.set()
    assert not any(thread.is_alive() for thread in threads)
    assert problems == []
    assert all(len(bodies) == 1 for bodies in bodies_by_etag.values()), bodies_by_etag


def test_the_file_wrappers_known_to_send_from_the_position() -> None:
    from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
    from waitress.buffers import ReadOnlyFileBasedBuffer

    from wsgidev._server.handler import FileWrapper as WsgidevFileWrapper

    for wrapper in (GunicornFileWrapper, ReadOnlyFileBasedBuffer, WsgidevFileWrapper, FileWrapper):
        assert shared_data_module._sends_from_position(wrapper), wrapper
    assert not shared_data_module._sends_from_position(RecordingWrapper)
