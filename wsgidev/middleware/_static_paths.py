"""Step 4a of serving a static file: turn a URL path into safe path segments inside an export.

Nothing here touches the file system: a request path either becomes a tuple of plain names
(no ``..``, separators, drive letters, NUL bytes or hidden names) or is refused, so no later
step ever joins untrusted text onto a directory."""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Windows treats these names as devices in every directory; they are never files to serve.
_DEVICE_NAMES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{d}{n}" for d in ("com", "lpt") for n in range(1, 10)]
)
_DRIVE = re.compile(r"[A-Za-z]:")
# File systems that find "CODE.PY" for "code.py": disallow patterns must not be dodged by case.
CASE_INSENSITIVE_FS = sys.platform in ("win32", "darwin")


@dataclass(frozen=True, slots=True)
class InExportPath:
    """A request path below an export's prefix, split into names that are safe to join."""

    segments: tuple[str, ...]
    wants_directory: bool  # the URL ended in "/"

    @property
    def relative(self) -> str:
        """The path inside the export with "/" separators, as disallow patterns see it."""
        return "/".join(self.segments)


def decode_path_info(path_info: str) -> str:
    """Undo the WSGI latin-1 transport of PATH_INFO (PEP 3333) to get the UTF-8 text back.

    Bytes that are not UTF-8 become surrogate escapes, the way the file system names them.
    """
    try:
        raw = path_info.encode("latin-1")
    except UnicodeEncodeError:
        return path_info  # a server that already decoded the path (not PEP 3333, but seen)
    return raw.decode("utf-8", "surrogateescape")


def split_in_export(rest: str, *, allow_hidden: bool) -> InExportPath | None:
    """Split the part of a decoded path after the prefix; None when it must never be a file.

    Empty segments (``//``) collapse, as in every server; ``.`` and ``..`` are refused rather
    than resolved, so a path that names a file has exactly one spelling.
    """
    names = rest.split("/")
    wants_directory = names[-1] == "" and len(names) > 1
    segments = tuple(name for name in names if name)
    for name in segments:
        if not is_safe_name(name, allow_hidden=allow_hidden):
            return None
    return InExportPath(segments, wants_directory)


def is_safe_name(name: str, *, allow_hidden: bool) -> bool:
    """Whether one path segment is a plain file name on every platform."""
    if name in (".", "..") or "\\" in name or "\x00" in name:
        return False
    if not allow_hidden and name.startswith("."):
        return False
    if _DRIVE.match(name):
        return False  # "C:" would make ntpath.join drop everything before it
    if os.name == "nt" and (
        ":" in name or name.endswith((".", " ")) or name.split(".", 1)[0].lower() in _DEVICE_NAMES
    ):
        # Alternate data streams ("a.txt::$DATA"), names Windows trims ("a.py." opens "a.py")
        # and device names.
        return False
    return not (os.sep in name or (os.altsep and os.altsep in name))


# The precompressed siblings' suffixes: a name with one of them is that file, compressed.
COMPRESSED_SUFFIXES = frozenset({".gz", ".br", ".zst"})


def compile_disallow(
    disallow: str | Iterable[str] | None, *, ignore_case: bool = CASE_INSENSITIVE_FS
) -> Callable[[str], bool]:
    """Build the test for ``disallow``: fnmatch patterns against the whole in-export path.

    A pattern without "/" is also tried against the base name (as in .gitignore), so both
    ``*.py`` and ``secret.txt`` reach into subdirectories and ``private/*`` names a folder.
    Matching ignores case where the file system does.
    """
    if disallow is None:
        return _never
    if isinstance(disallow, str):
        patterns = [disallow]
    else:
        try:
            patterns = list(disallow)
        except TypeError:
            raise TypeError(
                f"disallow must be a pattern string or a list of them, got {type(disallow).__name__}"
            ) from None
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"disallow patterns must be str, got {type(pattern).__name__}")
    if not patterns:
        return _never
    flags = re.IGNORECASE if ignore_case else 0
    whole = re.compile("|".join(fnmatch.translate(p.lstrip("/")) for p in patterns), flags)
    base_patterns = [fnmatch.translate(p) for p in patterns if "/" not in p]
    base = re.compile("|".join(base_patterns), flags) if base_patterns else None

    def matches(relative: str) -> bool:
        if whole.match(relative):
            return True
        return base is not None and base.match(relative.rpartition("/")[2]) is not None

    def is_disallowed(relative: str) -> bool:
        # "app.js.map.gz" is "app.js.map" compressed: a pattern refusing the one refuses both.
        stem, dot, suffix = relative.rpartition(".")
        if dot and stem and f".{suffix.lower()}" in COMPRESSED_SUFFIXES and matches(stem):
            return True
        return matches(relative)

    return is_disallowed


def _never(relative: str) -> bool:
    return False
