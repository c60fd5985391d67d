"""``wsgidev run`` without TARGET: find the app where Flask and Django users keep it.

In order: ``FLASK_APP``; ``DJANGO_SETTINGS_MODULE`` (Django's WSGI application); ``wsgi.py``,
then ``app.py`` in the current folder (``app``/``application`` or a ``create_app``/``make_app``
factory, as for any module TARGET); then a ``manage.py`` there, whose settings module is read
from its source, never run. ``.env`` and ``.flaskenv`` are loaded first when python-dotenv is
installed, as Flask does, without overriding variables already set. The result is a TARGET
string, so the reloader's child finds the same app the same way.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from ._target import TargetNotFound

DJANGO_TARGET = "django.core.wsgi:get_wsgi_application()"
MODULE_FILES = ("wsgi.py", "app.py")
DOTENV_FILES = (".env", ".flaskenv")


@dataclass(frozen=True, slots=True)
class Found:
    target: str  # a TARGET as the command line takes it
    why: str  # shown to the user: where it came from


def load_dotenv_files(folder: Path) -> list[Path]:
    """Load ``.env`` then ``.flaskenv`` (the first one found from ``folder`` upwards, each) into
    the environment, keeping variables already set; nothing without python-dotenv."""
    if importlib.util.find_spec("dotenv") is None:
        return []
    import dotenv

    loaded = []
    for name in DOTENV_FILES:
        path = _find_upwards(folder, name)
        if path is not None:
            dotenv.load_dotenv(path, override=False, encoding="utf-8")
            loaded.append(path)
    return loaded


def _find_upwards(folder: Path, name: str) -> Path | None:
    for directory in (folder, *folder.parents):
        if (directory / name).is_file():
            return directory / name
    return None


def discover_target(folder: Path, environ: MutableMapping[str, str]) -> Found:
    """The app to serve when no TARGET was given; ``TargetNotFound`` lists what was tried.

    Sets ``DJANGO_SETTINGS_MODULE`` in ``environ`` when it comes from ``manage.py``.
    """
    flask_app = environ.get("FLASK_APP", "").strip()
    if flask_app:
        return Found(flask_app, "FLASK_APP")
    settings = environ.get("DJANGO_SETTINGS_MODULE", "").strip()
    if settings:
        _check_settings(settings, folder, "DJANGO_SETTINGS_MODULE")
        return Found(DJANGO_TARGET, f"DJANGO_SETTINGS_MODULE={settings}")
    for name in MODULE_FILES:
        if (folder / name).is_file():
            return Found(name.removesuffix(".py"), name)
    manage = folder / "manage.py"
    if manage.is_file():
        named = settings_module_of(manage)
        if named is None:
            raise TargetNotFound(
                "found manage.py but no os.environ.setdefault('DJANGO_SETTINGS_MODULE', ...) in "
                "it; set DJANGO_SETTINGS_MODULE, or pass TARGET (e.g. mysite.wsgi)"
            )
        _check_settings(named, folder, "manage.py")
        environ["DJANGO_SETTINGS_MODULE"] = named
        return Found(DJANGO_TARGET, f"manage.py, DJANGO_SETTINGS_MODULE={named}")
    raise TargetNotFound(
        "no TARGET was given and none was found: FLASK_APP and DJANGO_SETTINGS_MODULE are not "
        f"set, and {folder} has no wsgi.py, app.py or manage.py. Pass TARGET, e.g. "
        "`wsgidev run myapp:app`, `wsgidev run path/to/app.py` or `wsgidev run mysite.wsgi`, "
        "or set FLASK_APP"
    )


def _check_settings(settings: str, folder: Path, source: str) -> None:
    """A settings module that cannot be found is a typo worth one sentence, not a traceback."""
    if not _module_exists(settings, [str(folder), *sys.path]):
        raise TargetNotFound(
            f"{source} names the Django settings module {settings!r}, which cannot be "
            f"imported from {folder}; fix the name, or run from the folder that holds it"
        )


def _module_exists(dotted: str, path: list[str]) -> bool:
    """Whether ``dotted`` would import, found by its files alone (no package code runs)."""
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):
        return False
    search: list[str] | None = path
    for part in parts:
        if not search:
            return False
        spec = importlib.machinery.PathFinder.find_spec(part, search)
        if spec is None:
            return False
        locations = spec.submodule_search_locations
        search = list(locations) if locations is not None else None
    return True


def settings_module_of(manage: Path) -> str | None:
    """The settings module a ``manage.py`` sets by default, read from its syntax tree."""
    try:
        tree = ast.parse(manage.read_bytes(), str(manage))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and all(
                isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in node.args
            )
        ):
            key, value = (arg.value for arg in node.args)  # type: ignore[attr-defined]
            if key == "DJANGO_SETTINGS_MODULE":
                return str(value)
    return None
