"""What the reloader watches, and the one interface every watcher backend implements.

The scope (module files, ``extra_files``, new ``.py`` files in the project) is decided here once,
so the ``stat``, ``watchfiles`` and ``watchdog`` backends only differ in how they notice changes.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import sys
import sysconfig
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

WatcherName = Literal["stat", "watchfiles", "watchdog"]
ReloaderType = Literal["auto", "stat", "watchfiles", "watchdog"]
RELOADER_TYPE_ENV = "WSGIDEV_RELOADER_TYPE"

# Directories never scanned for new .py files: dependencies, VCS data, caches, virtualenvs.
SKIPPED_DIRS = frozenset(
    {
        "node_modules",
        "bower_components",
        "__pycache__",
        "site-packages",
        "dist-packages",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".idea",
        ".vscode",
    }
)
# Files editors and tools write next to the real ones while saving: never worth a restart.
_NOISE = re.compile(
    r"""(
        \.py[cod]$ | \.sw[a-z]$ | ~$ | ^\.\# | ^\#.*\#$ | ^4913$ | \.___jb_\w+___$
        | ^\.DS_Store$ | ^flycheck_ | \.tmp$ | \.part$
    )""",
    re.VERBOSE,
)
# A project directory with more subdirectories than this is probably a home directory:
# scanning it for new .py files would cost more than it helps.
MAX_PROJECT_DIRS = 2000
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


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}:
        # lib/ of the interpreter, bin/ of a virtualenv (where console scripts live).
        roots.update(os.path.join(prefix, sub) for sub in ("lib", "lib64", "bin", "Scripts"))
    return tuple(sorted(_norm(root) + os.sep for root in roots))


_LIBRARY_ROOTS = _library_roots()


def is_library_path(path: str) -> bool:
    """Whether ``path`` belongs to the standard library or installed packages (not watched)."""
    if path.startswith(_LIBRARY_ROOTS):
        return True
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def is_noise(path: str) -> bool:
    """Editor backups, swap files, bytecode and VCS internals: changes there never reload."""
    name = os.path.basename(path)
    if _NOISE.search(name):
        return True
    parts = path.split(os.sep)
    return "__pycache__" in parts or ".git" in parts


def is_skipped_dir(path: str) -> bool:
    """A directory the project scan does not enter (dependencies, caches, virtualenvs)."""
    name = os.path.basename(path)
    if name in SKIPPED_DIRS or (name.startswith(".") and name not in (".", "..")):
        return True
    return os.path.exists(os.path.join(path, "pyvenv.cfg"))


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob with ``**`` (any depth) into a regex over normalised absolute paths."""
    out: list[str] = []
    i = 0
    sep = re.escape(os.sep)
    while i < len(pattern):
        if pattern.startswith("**" + os.sep, i):
            out.append(f"(?:.*{sep})?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(f"[^{sep}]*")
            i += 1
        elif pattern[i] == "?":
            out.append(f"[^{sep}]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _glob_base(pattern: str) -> str:
    """The longest leading directory of ``pattern`` without wildcards."""
    parts = pattern.split(os.sep)
    base: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        base.append(part)
    return os.sep.join(base) or os.sep


@dataclass(frozen=True, slots=True)
class ExtraFiles:
    """``extra_files`` sorted by kind: plain files, directories (every file in them), globs."""

    files: frozenset[str]
    dirs: tuple[str, ...]
    globs: tuple[tuple[str, re.Pattern[str]], ...]  # (base directory, pattern)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> ExtraFiles:
        files: set[str] = set()
        dirs: list[str] = []
        globs: list[tuple[str, re.Pattern[str]]] = []
        for entry in entries:
            path = _norm(os.path.expanduser(entry))
            if glob.has_magic(entry):
                globs.append((_glob_base(path), glob_to_regex(path)))
            elif os.path.isdir(path):
                dirs.append(path)
            else:
                files.add(path)  # may not exist yet: its creation is a change too
        return cls(frozenset(files), tuple(dirs), tuple(globs))

    def matches(self, path: str) -> bool:
        if path in self.files:
            return True
        if any(path.startswith(d + os.sep) for d in self.dirs):
            return True
        return any(regex.match(path) for _, regex in self.globs)

    def tree_roots(self) -> tuple[str, ...]:
        """Directories whose whole tree is watched: extra directories and glob bases."""
        return self.dirs + tuple(base for base, _ in self.globs)


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
        found = {_norm(d) for d in self.options.project_dirs}
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
        path = _norm(path)
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
            files.update(_files_below(root))
        for base, regex in self.extra.globs:
            files.update(f for f in _files_below(base) if regex.match(f))
        for root in self.project_dirs:
            for directory in walk_dirs(root, skip=True):
                files.update(
                    os.path.join(directory, name)
                    for name in _listdir(directory)
                    if name.endswith(".py")
                )
        return {f for f in files if not self.is_excluded(f) and not is_noise(f)}


def _program_dirs() -> set[str]:
    """Where the program itself lives: its script's directory, or the cwd for ``-m``/CLIs."""
    cwd = _norm(os.getcwd())
    candidates = [_norm(p or cwd) for p in sys.path[:1]]
    candidates += [cwd for p in sys.path if _norm(p or cwd) == cwd]
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
    path = _norm(path)
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


def _listdir(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def walk_dirs(root: str, skip: bool) -> Iterator[str]:
    """``root`` and the directories below it, pruning skipped ones when ``skip``; bounded."""
    stack = [root]
    count = 0
    while stack and count < MAX_PROJECT_DIRS:
        directory = stack.pop()
        count += 1
        yield directory
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name in ("__pycache__", ".git"):
                        continue
                    if entry.is_dir(follow_symlinks=False) and not (
                        skip and is_skipped_dir(entry.path)
                    ):
                        stack.append(entry.path)
        except OSError:
            continue


def _files_below(root: str) -> Iterator[str]:
    for directory in walk_dirs(root, skip=False):
        for name in _listdir(directory):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                yield path


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
