"""Find the WSGI application a command line names: ``module:name``, ``module:factory(args)``,
``module`` or ``path/to/app.py[:name]``.

The CLI turns :class:`TargetNotFound` into its one-paragraph error; an exception raised while
the user's own module runs is theirs and keeps its traceback.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ._types import WSGIApplication

DEFAULT_NAMES = ("app", "application")
DEFAULT_FACTORIES = ("create_app", "make_app")


class TargetNotFound(LookupError):
    """The target names a module, file or attribute that does not exist (the user's typo)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed TARGET: what to import and what to look up in it."""

    module: str  # dotted module name to import
    attribute: str | None  # ``name``, ``obj.name`` or ``factory(...)``; None tries the defaults
    path: Path | None = None  # the file the user named, when they named one
    search_dir: Path | None = None  # put first on sys.path so the module (and siblings) import


def parse_target(text: str) -> Target:
    """Split ``text`` into module (or file) and attribute, without importing anything."""
    text = text.strip()
    if not text:
        raise TargetNotFound("the target is empty; give MODULE[:NAME] or path/to/app.py[:NAME]")
    where, attribute = _split_attribute(text)
    if where.endswith(".py") or os.sep in where or "/" in where:
        return _file_target(Path(where), attribute)
    if not all(part.isidentifier() for part in where.split(".")):
        raise TargetNotFound(
            f"{where!r} is neither an importable module name nor a path to a .py file"
        )
    return Target(where, attribute, search_dir=Path.cwd())


def _split_attribute(text: str) -> tuple[str, str | None]:
    where, sep, attribute = text.rpartition(":")
    # No colon, or a Windows drive ("C:\\app.py"), or a colon inside a factory's arguments.
    if not sep or (len(where) == 1 and where.isalpha()) or "(" in where:
        head, sep, tail = text.partition(":")
        if not sep or (len(head) == 1 and head.isalpha()):
            return text, None
        where, attribute = head, tail
    return where, attribute.strip() or None


def _file_target(path: Path, attribute: str | None) -> Target:
    path = path.expanduser().resolve()
    if path.is_dir() and (path / "__init__.py").is_file():
        path = path / "__init__.py"
    elif not path.exists() and path.with_name(path.name + ".py").is_file():
        path = path.with_name(path.name + ".py")  # "pkg/app" for "pkg/app.py", as with -m
    if not path.is_file():
        raise TargetNotFound(f"tried the file {str(path)!r}, which does not exist")
    if path.suffix != ".py":
        raise TargetNotFound(f"tried the file {str(path)!r}, which is not a .py file")
    # Walk up through packages so "pkg/sub/app.py" imports as pkg.sub.app (relative imports work).
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    return Target(".".join(parts), attribute, path=path, search_dir=directory)


def load_app(target: Target) -> WSGIApplication:
    """Import the target's module and return its WSGI callable.

    Raises :class:`TargetNotFound` when the module, file or name is missing; any other
    exception comes from running the user's module or factory and is left as it is.
    """
    module = import_target_module(target)
    if target.attribute is not None:
        app = _evaluate(module, target.attribute)
    else:
        app = _find_default(module)
    if not callable(app):
        raise TargetNotFound(
            f"{_describe(target)}:{target.attribute or '?'} is a {type(app).__name__}, "
            "not a WSGI application (a callable taking environ and start_response)"
        )
    return app  # type: ignore[no-any-return]  # any callable is accepted as a WSGI app


def import_target_module(target: Target) -> ModuleType:
    """Import the module, telling "it does not exist" apart from "it failed while importing"."""
    if target.search_dir is not None and str(target.search_dir) not in sys.path:
        sys.path.insert(0, str(target.search_dir))
    try:
        return importlib.import_module(target.module)
    except ModuleNotFoundError as exc:
        # Only a miss on the target itself (or a parent package) is a bad target; a missing
        # import *inside* the user's module is their bug and keeps its traceback.
        missing = exc.name or ""
        if target.module == missing or target.module.startswith(missing + "."):
            where = f"the file {str(target.path)!r} as " if target.path else ""
            raise TargetNotFound(
                f"tried to import {where}module {target.module!r} (from {target.search_dir}), "
                f"but no module named {missing!r} was found"
            ) from None
        raise


def _find_default(module: ModuleType) -> Any:
    for name in DEFAULT_NAMES:
        app = getattr(module, name, None)
        if app is not None:
            return app
    for name in DEFAULT_FACTORIES:
        factory = getattr(module, name, None)
        if callable(factory):
            return factory()
    tried = ", ".join(DEFAULT_NAMES) + ", " + ", ".join(f"{n}()" for n in DEFAULT_FACTORIES)
    raise TargetNotFound(
        f"imported module {module.__name__!r} ({module.__file__}) but found none of the names "
        f"it looks for by default ({tried}); name the application as "
        f"{module.__name__}:NAME"
    )


def _evaluate(module: ModuleType, attribute: str) -> Any:
    """Look up ``name``/``obj.name``, or call ``factory(literal, key=literal)``."""
    try:
        expr = ast.parse(attribute, mode="eval").body
    except SyntaxError:
        raise TargetNotFound(
            f"{attribute!r} is not a name or a call like factory() or factory('arg', key=1)"
        ) from None
    if isinstance(expr, ast.Call):
        args, kwargs = _literal_arguments(expr, attribute)
        factory = _lookup(module, expr.func, attribute)
        if not callable(factory):
            raise TargetNotFound(f"{module.__name__}:{ast.unparse(expr.func)} is not callable")
        return factory(*args, **kwargs)
    return _lookup(module, expr, attribute)


def _literal_arguments(call: ast.Call, attribute: str) -> tuple[list[Any], dict[str, Any]]:
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except ValueError:
        raise TargetNotFound(
            f"the arguments in {attribute!r} must be Python literals (strings, numbers, ...)"
        ) from None
    if any(kw.arg is None for kw in call.keywords):
        raise TargetNotFound(f"{attribute!r}: **kwargs is not supported in a target")
    return args, kwargs


def _lookup(module: ModuleType, node: ast.expr, attribute: str) -> Any:
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise TargetNotFound(f"{attribute!r} is not a name or a call like factory()")
    names.insert(0, node.id)
    value: Any = module
    for depth, name in enumerate(names):
        if not hasattr(value, name):
            looked = ".".join(names[: depth + 1])
            raise TargetNotFound(
                f"imported module {module.__name__!r} ({module.__file__}) but it has no "
                f"attribute {looked!r}"
            )
        value = getattr(value, name)
    return value


def _describe(target: Target) -> str:
    return str(target.path) if target.path else target.module
