"""Step 4a of serving a static file: find it once and describe it as a StaticFile value.

The finder searches the exports _static_exports parsed; it stats, checks symlinks and
precompressed siblings, and precomputes the headers. shared_data caches the value per URL path and answers
from it; _static_body streams the bytes."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import stat
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import TypeAlias

from ._static_exports import Export, Root
from ._static_paths import InExportPath, decode_path_info, is_safe_name, split_in_export

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable


# Precompressed siblings in the order we prefer them when the client accepts several equally.
SIBLINGS: tuple[tuple[str, str], ...] = (("br", ".br"), ("zstd", ".zst"), ("gzip", ".gz"))
IMMUTABLE_MAX_AGE = 31536000  # one year, the longest cache lifetime RFC 9111 lets us ask for
_TEXT_TYPES = frozenset(["application/javascript", "application/json", "application/xml"])
_TEXT_SUFFIXES = ("+json", "+xml")  # structured syntaxes that are text (RFC 6839)
# Types the platform's mime.types may lack or spell differently; the web expects these.
_WEB_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".txt": "text/plain",
    ".md": "text/markdown",
}
# Content hashes bundlers put in names: "app.3f9a2c1b.js" (webpack, Django: hex with a digit and
# a letter, so dates like "report-20240101.csv" are not taken for one) and "index-BXzT1a2c.js"
# (Vite: 8 URL-safe base64 characters with upper, lower and digit).
_HASHED_NAME = re.compile(
    r".+[.-](?:(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,64}"
    r"|(?=[\w-]*[A-Z])(?=[\w-]*[a-z])(?=[\w-]*[0-9])[A-Za-z0-9_-]{8})(?:\.[A-Za-z0-9]+){1,2}"
)
_ARCHIVE_TYPES = {
    "gzip": "application/gzip",
    "br": "application/x-brotli",
    "zstd": "application/zstd",
}


@dataclass(frozen=True, slots=True)
class Variant:
    """One stored representation: the file itself or a precompressed sibling."""

    path: str | None  # None when ``data`` holds the bytes (a zipped package)
    data: bytes | None
    size: int
    encoding: str | None  # Content-Encoding, None for the file as it is
    etag: str  # strong and quoted; differs between a file and its siblings
    key: tuple[int, int, int]  # (mtime_ns, size, inode) when found: a change means find again
    headers_200: tuple[tuple[str, str], ...]  # every header of a full answer except Expires
    headers_304: tuple[tuple[str, str], ...]  # validators and caching (RFC 9110 15.4.5)


@dataclass(frozen=True, slots=True)
class StaticFile:
    """Everything needed to answer for one URL path, computed once."""

    name: str  # path inside the export, for messages
    identity: Variant
    encoded: Mapping[str, Variant]  # coding -> precompressed sibling
    codings: tuple[str, ...]  # keys of ``encoded`` in order of preference
    content_type: str
    mtime: int  # whole seconds, as Last-Modified carries them
    last_modified: str
    max_age: int | None  # None when caching is off (no Expires)
    has_vary: bool
    found_at: float  # time.monotonic() when found

    @property
    def variants(self) -> tuple[Variant, ...]:
        return (self.identity, *self.encoded.values())


@dataclass(frozen=True, slots=True)
class Miss:
    """No file for this path. ``permanent`` when that follows from the path alone."""

    permanent: bool


@dataclass(frozen=True, slots=True)
class Redirect:
    """A directory with an index was asked for without its trailing slash."""


NOT_OURS = Miss(permanent=True)
NOT_FOUND = Miss(permanent=False)
REDIRECT = Redirect()
Found: TypeAlias = "StaticFile | Miss | Redirect"


@dataclass(frozen=True, slots=True)
class FinderOptions:
    """The keyword arguments of SharedDataMiddleware that shape lookups and headers."""

    is_disallowed: Callable[[str], bool]
    index: str | None
    follow_symlinks: bool
    allow_hidden: bool
    cache: bool
    cache_timeout: int
    fallback_mimetype: str
    is_hashed_name: Callable[[str], bool]


class StaticFinder:
    """Map a PATH_INFO onto a StaticFile, or say why there is none."""

    def __init__(self, exports: tuple[Export, ...], options: FinderOptions) -> None:
        self.exports = exports
        self.options = options
        self._started = int(time.time())

    def find(self, path_info: str) -> Found:
        path = decode_path_info(path_info)
        permanent = True
        for export in self.exports:
            if export.prefix and path != export.prefix and not path.startswith(export.prefix + "/"):
                continue
            where = split_in_export(
                path[len(export.prefix) :], allow_hidden=self.options.allow_hidden
            )
            if where is None or (where.segments and self.options.is_disallowed(where.relative)):
                continue
            permanent = False
            for root in export.roots:
                found = self._find_in_root(root, where)
                if found is not None:
                    return found
        return NOT_OURS if permanent else NOT_FOUND

    def _find_in_root(self, root: Root, where: InExportPath) -> StaticFile | Redirect | None:
        if not isinstance(root, str):
            return self._find_in_resource(root, where)
        candidate = os.path.join(root, *where.segments)
        info = _stat(candidate)
        if info is None:
            return None
        if stat.S_ISDIR(info.st_mode):
            index = self._index_of(candidate, where)
            if index is None or isinstance(index, Redirect):
                return index
            candidate, info = index
        elif not stat.S_ISREG(info.st_mode) or where.wants_directory:
            return None  # devices, sockets and FIFOs are never served; "file/" is no file
        # A single-file export is served as named; anything found inside a directory must
        # stay inside it once symlinks are resolved.
        if (
            candidate != root
            and not self.options.follow_symlinks
            and not _is_inside(candidate, root)
        ):
            return None
        name = where.relative or os.path.basename(candidate)
        if not where.segments and self.options.is_disallowed(name):
            return None  # a single-file export or the export's own index, checked by name
        root_dir = root if candidate != root else os.path.dirname(root)
        return self._describe(name, candidate, info, root_dir)

    def _index_of(
        self, directory: str, where: InExportPath
    ) -> tuple[str, os.stat_result] | Redirect | None:
        index = self.options.index
        if index is None:
            return None
        if where.segments and self.options.is_disallowed(f"{where.relative}/{index}"):
            return None
        candidate = os.path.join(directory, index)
        info = _stat(candidate)
        if info is None or not stat.S_ISREG(info.st_mode):
            return None
        if not where.wants_directory:
            return REDIRECT
        return candidate, info

    def _describe(self, name: str, path: str, info: os.stat_result, root_dir: str) -> StaticFile:
        base_name = os.path.basename(path)
        content_type = self.content_type(base_name)
        max_age = self._max_age(base_name)
        mtime = int(info.st_mtime)
        encoded: dict[str, Variant] = {}
        siblings: list[tuple[str, str, os.stat_result]] = []
        for coding, suffix in SIBLINGS:
            sibling = path + suffix
            sibling_info = _stat(sibling)
            # A sibling older than its source is a stale build output: serving it would hide edits.
            if (
                sibling_info is not None
                and stat.S_ISREG(sibling_info.st_mode)
                and sibling_info.st_mtime_ns >= info.st_mtime_ns
                and (self.options.follow_symlinks or _is_inside(sibling, root_dir))
                and not self.options.is_disallowed(name + suffix)
            ):
                siblings.append((coding, sibling, sibling_info))
        vary = bool(siblings)
        last_modified = formatdate(mtime, usegmt=True)
        common = _validators(last_modified, max_age, vary)
        identity = self._variant(path, None, info, content_type, None, common)
        for coding, sibling, sibling_info in siblings:
            encoded[coding] = self._variant(
                sibling, None, sibling_info, content_type, coding, common
            )
        return StaticFile(
            name,
            identity,
            encoded,
            tuple(encoded),
            content_type,
            mtime,
            last_modified,
            max_age,
            vary,
            time.monotonic(),
        )

    def _variant(
        self,
        path: str | None,
        data: bytes | None,
        info: os.stat_result | None,
        content_type: str,
        coding: str | None,
        common: tuple[tuple[str, str], ...],
    ) -> Variant:
        if info is not None:
            key = (info.st_mtime_ns, info.st_size, info.st_ino)
            digest = hashlib.blake2b(repr(key).encode(), digest_size=9).hexdigest()
        else:
            assert data is not None
            key = (0, len(data), 0)
            digest = hashlib.blake2b(data, digest_size=9).hexdigest()
        size = key[1]
        etag = f'"{digest}-{coding}"' if coding else f'"{digest}"'
        head = [("Content-Type", content_type), ("Content-Length", str(size))]
        if coding:
            head.append(("Content-Encoding", coding))
        head += [("ETag", etag), *common, ("Accept-Ranges", "bytes")]
        return Variant(path, data, size, coding, etag, key, tuple(head), (("ETag", etag), *common))

    def _find_in_resource(
        self, root: Traversable, where: InExportPath
    ) -> StaticFile | Redirect | None:
        node = root
        for segment in where.segments:
            node = node.joinpath(segment)
        if node.is_dir():
            index = self.options.index
            if index is None or not node.joinpath(index).is_file():
                return None
            if where.segments and self.options.is_disallowed(f"{where.relative}/{index}"):
                return None
            if not where.wants_directory:
                return REDIRECT
            node = node.joinpath(index)
        elif not node.is_file() or where.wants_directory:
            return None
        try:
            data = node.read_bytes()
        except OSError:
            return None
        mtime = _resource_mtime(node, self._started)
        content_type = self.content_type(node.name)
        max_age = self._max_age(node.name)
        last_modified = formatdate(mtime, usegmt=True)
        common = _validators(last_modified, max_age, False)
        identity = self._variant(None, data, None, content_type, None, common)
        name = where.relative or node.name
        return StaticFile(
            name,
            identity,
            {},
            (),
            content_type,
            mtime,
            last_modified,
            max_age,
            False,
            time.monotonic(),
        )

    def content_type(self, name: str) -> str:
        """Content-Type for a file name: charset=utf-8 for text, JavaScript and JSON."""
        ext = os.path.splitext(name)[1]
        mimetype = _WEB_TYPES.get(ext.lower())
        if mimetype is None:
            guessed, encoding = mimetypes.guess_type(name, strict=False)
            if encoding is not None:
                # "app.js.gz" asked for by name is an archive: never let a client unpack it as JS.
                return _ARCHIVE_TYPES.get(encoding, self.options.fallback_mimetype)
            mimetype = guessed or self.options.fallback_mimetype
        if (
            mimetype.startswith("text/")
            or mimetype in _TEXT_TYPES
            or mimetype.endswith(_TEXT_SUFFIXES)
        ):
            return f"{mimetype}; charset=utf-8"
        return mimetype

    def _max_age(self, base_name: str) -> int | None:
        if not self.options.cache:
            return None
        if self.options.is_hashed_name(base_name):
            return IMMUTABLE_MAX_AGE
        return self.options.cache_timeout


def _validators(last_modified: str, max_age: int | None, vary: bool) -> tuple[tuple[str, str], ...]:
    headers = [("Last-Modified", last_modified)]
    if max_age is None:
        headers.append(("Cache-Control", "no-cache"))
    elif max_age == IMMUTABLE_MAX_AGE:
        headers.append(("Cache-Control", f"public, max-age={max_age}, immutable"))
    else:
        headers.append(("Cache-Control", f"public, max-age={max_age}"))
    if vary:
        headers.append(("Vary", "Accept-Encoding"))
    return tuple(headers)


def is_hashed_name(name: str) -> bool:
    """Whether a file name carries a content hash, so its content can never change."""
    return _HASHED_NAME.fullmatch(name) is not None


def stat_key(path: str) -> tuple[int, int, int] | None:
    """The (mtime_ns, size, inode) a Variant remembers, or None when the file is gone."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):  # missing, not a directory, too long, permission, NUL
        return None


def _is_inside(path: str, root: str) -> bool:
    """Whether ``path`` still lies in ``root`` once every symlink in both is resolved."""
    real_root = os.path.normcase(os.path.realpath(root))
    real = os.path.normcase(os.path.realpath(path))
    return real.startswith(real_root.rstrip(os.sep) + os.sep)


def _resource_mtime(node: Traversable, fallback: int) -> int:
    """Modification time of a file inside a zipped package, from its archive entry."""
    if isinstance(node, zipfile.Path):
        try:
            entry = node.root.getinfo(node.at)
        except KeyError:
            return fallback
        return int(time.mktime((*entry.date_time, 0, 0, -1)))
    return fallback


def is_safe_index(index: str) -> bool:
    """Whether an ``index`` argument names a plain file in the directory itself."""
    return is_safe_name(index, allow_hidden=True) and "/" not in index
