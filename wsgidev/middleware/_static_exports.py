"""Step 4a of serving a static file: what the ``exports`` argument names, checked once.

Turns the dict or list of pairs into Export values, longest prefix first: a file-system path,
or the directories (or zipped resource) of a package. _static_find searches them per request."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

if sys.version_info >= (3, 11):
    from importlib.resources import files
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable
    from importlib.resources import files

ExportSource: TypeAlias = "str | os.PathLike[str] | tuple[str, str]"
Root: TypeAlias = "str | Traversable"  # a file-system path, or a resource in a zipped package


@dataclass(frozen=True, slots=True)
class Export:
    """One URL prefix ("" for the root) and the roots it is served from, searched in order."""

    prefix: str
    roots: tuple[Root, ...]


def parse_exports(
    exports: Mapping[str, ExportSource] | Iterable[tuple[str, ExportSource]],
) -> tuple[Export, ...]:
    """Validate ``exports`` and order them longest prefix first.

    Raises TypeError for a malformed entry and ValueError for a package that is not
    importable; a missing directory only warns, since a build step may create it later.
    """
    items = exports.items() if isinstance(exports, Mapping) else exports
    try:
        pairs = list(items)
    except TypeError:
        raise TypeError(
            f"exports must be a dict or a list of (url_prefix, source) pairs, got {type(exports).__name__}"
        ) from None
    parsed: list[Export] = []
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(
                f"exports entries must be (url_prefix: str, source) pairs, got {pair!r}"
            )
        prefix, source = pair
        parsed.append(
            Export("/" + prefix.strip("/") if prefix.strip("/") else "", _roots(prefix, source))
        )
    return tuple(sorted(parsed, key=lambda export: len(export.prefix), reverse=True))


def _roots(prefix: str, source: object) -> tuple[Root, ...]:
    if isinstance(source, tuple):
        if len(source) != 2 or not all(isinstance(part, str) for part in source):
            raise TypeError(
                f"exports[{prefix!r}]: a package source is (package_name, path), got {source!r}"
            )
        return _package_roots(prefix, source[0], source[1])
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        if not os.path.exists(path):
            warnings.warn(
                f"SharedDataMiddleware: exports[{prefix!r}] is {path!r}, which does not exist;"
                " its URLs fall through to the application until it does",
                RuntimeWarning,
                stacklevel=4,
            )
        return (path,)
    raise TypeError(
        f"exports[{prefix!r}] must be a path or a (package_name, path) tuple, got {type(source).__name__}"
    )


def _package_roots(prefix: str, package: str, inner: str) -> tuple[Root, ...]:
    """Directories of a package on disk (several for a namespace package), else its resource."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ValueError(f"exports[{prefix!r}]: package {package!r} is not importable")
    inner_parts = [part for part in inner.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in inner_parts:
        raise ValueError(f"exports[{prefix!r}]: the path inside {package!r} may not contain '..'")
    if spec.submodule_search_locations is not None:
        locations = list(spec.submodule_search_locations)
    else:
        locations = [os.path.dirname(spec.origin or "")]
    directories = tuple(os.path.join(loc, *inner_parts) for loc in locations if os.path.isdir(loc))
    if directories:
        if not any(os.path.exists(directory) for directory in directories):
            warnings.warn(
                f"SharedDataMiddleware: exports[{prefix!r}] is {inner!r} in package {package!r},"
                f" which has no such path (looked in {', '.join(directories)})",
                RuntimeWarning,
                stacklevel=5,
            )
        return directories
    resource = files(package)
    for part in inner_parts:
        resource = resource.joinpath(part)
    return (resource,)
