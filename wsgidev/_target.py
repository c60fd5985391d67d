"""Find the WSGI application a command line names: ``module:name``, ``module:factory(args)``,
``module`` or ``path/to/app.py[:name]``.

The CLI turns :class:`TargetNotFound` into its one-paragraph error; an exception raised while
the user's own module runs is theirs and keeps its traceback.
"""

from __future__ import annotations

import ast
import importlib
import os
import reprlib
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


def _file_target(typed: Path, attribute: str | None) -> Target:
    path = typed.expanduser().resolve()
    if path.is_dir() and (path / "__init__.py").is_file():
        path = path / "__init__.py"
    elif path.is_dir():
        raise TargetNotFound(
            f"{str(path)!r} is a folder without __init__.py, so neither a package nor a .py "
            f"file; {_suggest_files(typed, path)}"
        )
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
        name, app = target.attribute, _evaluate(module, target.attribute)
    else:
        name, app = _find_default(module)
    if not callable(app):
        found = f"returned {_show(app)}" if name.endswith(")") else f"is {_show(app)}"
        raise TargetNotFound(
            f"{_describe(target)}:{name} {found}, but it must be a WSGI application (a "
            "callable taking environ and start_response); pass MODULE:NAME naming the "
            "application, or MODULE:FACTORY() for a function that returns it"
        )
    return app  # type: ignore[no-any-return]  # any callable is accepted as a WSGI app


def _show(value: object) -> str:
    """``42 (an int)``; ``None`` alone: what the user sees in their code, and its type."""
    if value is None:
        return "None"
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{reprlib.repr(value)} ({article} {kind})"


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


def _find_default(module: ModuleType) -> tuple[str, Any]:
    """The first default name the module defines, as ``(label, value)`` for error messages."""
    for name in DEFAULT_NAMES:
        app = getattr(module, name, None)
        if app is not None:
            return name, app
    for name in DEFAULT_FACTORIES:
        factory = getattr(module, name, None)
        if callable(factory):
            return f"{name}()", factory()
    apps = _framework_apps(module)
    if len(apps) == 1:  # as Flask does: one app object under another name is the one
        return apps[0], getattr(module, apps[0])
    tried = ", ".join(DEFAULT_NAMES) + ", " + ", ".join(f"{n}()" for n in DEFAULT_FACTORIES)
    if apps:
        choices = " or ".join(f"{module.__name__}:{name}" for name in apps)
        raise TargetNotFound(
            f"imported {_describe_module(module)} and found {len(apps)} applications "
            f"({', '.join(apps)}) but none of the names it looks for by default ({tried}); "
            f"say which one: {choices}"
        )
    raise TargetNotFound(
        f"imported {_describe_module(module)} but found none of the names it looks for by "
        f"default ({tried}); {_name_hint(module)}"
    )


def _framework_apps(module: ModuleType) -> list[str]:
    """Names in ``module`` bound to a Flask, Django or Bottle application object."""
    from ._frameworks import recognise

    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and recognise(value) is not None
    )


def _describe_module(module: ModuleType) -> str:
    """``module 'x' (/path/x.py)``, or what a folder without __init__.py imports as."""
    if module.__file__ is not None:
        return f"module {module.__name__!r} ({module.__file__})"
    folders = ", ".join(map(str, getattr(module, "__path__", []))) or "?"
    return (
        f"{module.__name__!r}, a namespace package (the folder {folders} has no __init__.py, "
        "so there is no code in it to define an application)"
    )


def _name_hint(module: ModuleType) -> str:
    if module.__file__ is not None:
        return f"name the application as {module.__name__}:NAME"
    modules = sorted(
        f"{module.__name__}.{path.stem}"
        for folder in getattr(module, "__path__", [])
        for path in Path(folder).glob("*.py")
        if path.stem.isidentifier()
    )
    if not modules:
        return "name a module inside it, e.g. PACKAGE.MODULE:NAME"
    return f"name a module inside it, e.g. {' or '.join(_preferred(modules))}"


def _suggest_files(typed: Path, folder: Path) -> str:
    files = sorted(str(typed / path.name) for path in folder.glob("*.py"))
    if not files:
        return "it has no .py files, so name a .py file or an importable module instead"
    return f"name a .py file in it, e.g. {' or '.join(_preferred(files))}"


def _preferred(names: list[str]) -> list[str]:
    """At most three, the usual homes of an app first."""
    usual = ("app", "wsgi", "main", "application", "server")
    rank = {stem: index for index, stem in enumerate(usual)}

    def key(name: str) -> tuple[int, str]:
        stem = Path(name).stem if name.endswith(".py") else name.rpartition(".")[2]
        return rank.get(stem, len(usual)), name

    return sorted(names, key=key)[:3]


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
            hint = "" if module.__file__ is not None else f"; {_name_hint(module)}"
            raise TargetNotFound(
                f"imported {_describe_module(module)} but it has no attribute {looked!r}{hint}"
            )
        value = getattr(value, name)
    return value


def _describe(target: Target) -> str:
    return str(target.path) if target.path else target.module
