"""What the reloader watches, and the one interface every watcher backend implements.

The scope (module files, ``extra_files``, new ``.py`` files in the project) is decided here once,
so the ``stat``, ``watchfiles`` and ``watchdog`` backends only differ in how they notice changes.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from .paths import (
    ExtraFiles,
    files_below,
    is_library_path,
    is_noise,
    is_skipped_dir,
    list_dir,
    normalise,
    walk_dirs,
)

WatcherName = Literal["stat", "watchfiles", "watchdog"]
ReloaderType = Literal["auto", "stat", "watchfiles", "watchdog"]
RELOADER_TYPE_ENV = "WSGIDEV_RELOADER_TYPE"

# How often event watchers wake up to look for newly imported modules (no disk access).
MODULE_CHECK_SECONDS = 1.0


class FileWatcher(Protocol):
    """A way to notice that a file in a :class:`WatchScope` changed."""

    name: WatcherName

    def wait_for_change(self, stop: threading.Event) -> str | None:
        """Block until a watched file changes and return its path; ``None`` once ``stop`` is set."""
        ...

    def close(self) -> None:
        """Release threads and OS watches; the watcher is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """What the user asked to watch besides the code: ``run_simple``'s reloader arguments."""

    extra_files: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    interval: float = 1.0
    # Scanned for new .py files, besides the program's directory and the loaded packages.
    project_dirs: tuple[str, ...] = ()


class WatchScope:
    """Decides which paths matter; shared by every backend.

    A path matters when it is the file of a loaded module (outside the standard library and
    site-packages), named by ``extra_files`` (directly, inside a named directory or through a
    glob), or a ``.py`` file inside a project directory; and it is neither excluded by
    ``exclude_patterns`` nor editor noise.
    """

    def __init__(self, options: WatchOptions, modules: Mapping[str, object] | None = None) -> None:
        """``modules`` defaults to ``sys.modules``; given, the program's directory is not guessed."""
        self.options = options
        self._modules = sys.modules if modules is None else modules
        self._guess_program_dir = modules is None
        self.extra = ExtraFiles.parse(options.extra_files)
        self.excludes = tuple(options.exclude_patterns)
        self._module_files: set[str] = set()
        self._seen_modules: dict[str, str | None] = {}
        self._modules_count = -1
        self.project_dirs: tuple[str, ...] = ()
        self.refresh_modules()
        self.project_dirs = self._find_project_dirs()

    # -- modules -------------------------------------------------------------------------
    def refresh_modules(self) -> set[str]:
        """Add the files of modules imported since the last call; return the new ones."""
        modules = self._modules
        if len(modules) == self._modules_count:
            return set()
        self._modules_count = len(modules)
        new: set[str] = set()
        for name, module in list(modules.items()):
            if name in self._seen_modules:
                continue
            path = _module_file(module)
            self._seen_modules[name] = path
            if path is not None and path not in self._module_files and self._wanted_module(path):
                self._module_files.add(path)
                new.add(path)
        return new

    def _wanted_module(self, path: str) -> bool:
        if self.extra.matches(path):
            return True
        return not is_library_path(path) and not self.is_excluded(path)

    @property
    def module_files(self) -> frozenset[str]:
        return frozenset(self._module_files)

    # -- project directories ---------------------------------------------------------------
    def _find_project_dirs(self) -> tuple[str, ...]:
        """The given directories, the program's own (script or cwd), and the loaded packages."""
        found = {normalise(d) for d in self.options.project_dirs}
        if self._guess_program_dir:
            found.update(_program_dirs())
        for path in self._module_files:
            top = _top_package_dir(path)
            if top is not None:
                found.add(top)
        # Drop directories nested in another one: their tree is already covered.
        ordered = sorted(found)
        return tuple(d for d in ordered if not any(d.startswith(o + os.sep) for o in ordered))

    def in_project(self, path: str) -> bool:
        return any(path.startswith(d + os.sep) for d in self.project_dirs)

    # -- decisions -------------------------------------------------------------------------
    def is_excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in self.excludes)

    def is_relevant(self, path: str) -> bool:
        """Whether a change (edit, creation or deletion) of ``path`` should reload."""
        path = normalise(path)
        if is_noise(path) or self.is_excluded(path):
            return False
        if path in self._module_files or self.extra.matches(path):
            return True
        return path.endswith(".py") and self.in_project(path) and not self._in_skipped_dir(path)

    def _in_skipped_dir(self, path: str) -> bool:
        for root in self.project_dirs:
            if path.startswith(root + os.sep):
                parent = os.path.dirname(path)
                while len(parent) > len(root):
                    if is_skipped_dir(parent):
                        return True
                    parent = os.path.dirname(parent)
        return False

    # -- what to look at -------------------------------------------------------------------
    def watched_dirs(self) -> set[str]:
        """Directories to watch one level deep: project and extra trees, module directories."""
        dirs: set[str] = set()
        for root in self.project_dirs:
            dirs.update(walk_dirs(root, skip=True))
        for root in self.extra.tree_roots():
            dirs.update(walk_dirs(root, skip=False))
        dirs.update(os.path.dirname(p) for p in self._module_files)
        dirs.update(os.path.dirname(p) for p in self.extra.files)
        return {d for d in dirs if os.path.isdir(d)}

    def initial_files(self) -> set[str]:
        """Every existing file that matters now (the stat backend polls these)."""
        files = set(self._module_files) | {f for f in self.extra.files if os.path.exists(f)}
        for root in self.extra.dirs:
            files.update(files_below(root))
        for base, regex in self.extra.globs:
            files.update(f for f in files_below(base) if regex.match(f))
        for root in self.project_dirs:
            for directory in walk_dirs(root, skip=True):
                files.update(
                    os.path.join(directory, name)
                    for name in list_dir(directory)
                    if name.endswith(".py")
                )
        return {f for f in files if not self.is_excluded(f) and not is_noise(f)}


def _program_dirs() -> set[str]:
    """Where the program itself lives: its script's directory, or the cwd for ``-m``/CLIs."""
    cwd = normalise(os.getcwd())
    candidates = [normalise(p or cwd) for p in sys.path[:1]]
    candidates += [cwd for p in sys.path if normalise(p or cwd) == cwd]
    main_file = _module_file(sys.modules.get("__main__"))
    if main_file is not None:
        candidates.append(os.path.dirname(main_file))
    return {d for d in candidates if os.path.isdir(d) and not is_library_path(d + os.sep)}


def _module_file(module: object) -> str | None:
    path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path:
        return None
    if path.endswith((".pyc", ".pyo")):
        path = path[:-1]
    path = normalise(path)
    return path if os.path.isfile(path) else None


def _top_package_dir(path: str) -> str | None:
    """The outermost package directory holding module ``path`` (None for a top-level module)."""
    directory = os.path.dirname(path)
    top = None
    while os.path.exists(os.path.join(directory, "__init__.py")):
        top = directory
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return top


def available_watchers() -> list[WatcherName]:
    """Backends usable here, preferred first."""
    found: list[WatcherName] = []
    candidates: tuple[tuple[WatcherName, str], ...] = (
        ("watchfiles", "watchfiles"),
        ("watchdog", "watchdog.observers"),
    )
    for name, module in candidates:
        try:
            __import__(module)
        except ImportError:
            continue
        found.append(name)
    found.append("stat")
    return found


def resolve_watcher_name(requested: str) -> WatcherName:
    """``WSGIDEV_RELOADER_TYPE`` or ``requested``; ``auto`` picks the first available backend.

    Raises ``ValueError`` for an unknown name and when the named package is missing.
    """
    name = os.environ.get(RELOADER_TYPE_ENV, "").strip() or requested
    choices = ("auto", "stat", "watchfiles", "watchdog")
    if name not in choices:
        source = RELOADER_TYPE_ENV if os.environ.get(RELOADER_TYPE_ENV) else "reloader_type"
        raise ValueError(f"{source} must be one of {', '.join(choices)}, got {name!r}")
    available = available_watchers()
    if name == "auto":
        return available[0]
    for candidate in available:
        if candidate == name:
            return candidate
    raise ValueError(
        f"reloader_type {name!r} needs the {name} package: pip install 'wsgidev[watch]'"
    )


def make_watcher(name: WatcherName, scope: WatchScope) -> FileWatcher:
    """Instantiate backend ``name`` (one module per backend, imported only when chosen)."""
    if name == "watchfiles":
        from .watchfiles import WatchfilesWatcher

        return WatchfilesWatcher(scope)
    if name == "watchdog":
        from .watchdog import WatchdogWatcher

        return WatchdogWatcher(scope)
    from .stat import StatWatcher

    return StatWatcher(scope)
