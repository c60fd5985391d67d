"""Paths the reloader never watches (libraries, editor noise, caches), ``extra_files`` and
its globs, and a bounded walk of a project's directories."""

from __future__ import annotations

import glob
import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

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


def normalise(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}:
        # lib/ of the interpreter, bin/ of a virtualenv (where console scripts live).
        roots.update(os.path.join(prefix, sub) for sub in ("lib", "lib64", "bin", "Scripts"))
    return tuple(sorted(normalise(root) + os.sep for root in roots))


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
            path = normalise(os.path.expanduser(entry))
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


def list_dir(directory: str) -> list[str]:
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


def files_below(root: str) -> Iterator[str]:
    for directory in walk_dirs(root, skip=False):
        for name in list_dir(directory):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                yield path
