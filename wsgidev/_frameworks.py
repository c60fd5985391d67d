"""Recognise the framework behind a WSGI app, through the middleware around it.

Only frameworks the process has already imported are considered: recognising an app never
imports a framework, so an app without Flask, Django or Bottle costs a few attribute reads.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

# Attributes under which common middleware keep the app they wrap (wsgidev's own included).
_WRAPPED_ATTRIBUTES = ("app", "application", "wsgi_app", "__wrapped__")
_MAX_LAYERS = 16


@dataclass(frozen=True)
class Framework:
    """A recognised framework app and the switch that makes it let errors through."""

    name: str
    app: Any
    switch: str


def find_framework(app: object) -> Framework | None:
    """The Flask, Django or Bottle app inside ``app``, looking through wrapping middleware."""
    seen: set[int] = set()
    current: object = app
    for _ in range(_MAX_LAYERS):
        if current is None or id(current) in seen:
            return None
        seen.add(id(current))
        framework = recognise(current)
        if framework is not None:
            return framework
        current = next(
            (
                inner
                for name in _WRAPPED_ATTRIBUTES
                if (inner := getattr(current, name, None)) is not None and callable(inner)
            ),
            None,
        )
    return None


def recognise(obj: object) -> Framework | None:
    """The framework ``obj`` itself is an application of (no looking through middleware)."""
    flask = sys.modules.get("flask")
    if flask is not None and isinstance(obj, getattr(flask, "Flask", ())):
        return Framework("Flask", obj, "app.debug = True (FLASK_DEBUG=1), as flask --debug does")
    handler = sys.modules.get("django.core.handlers.wsgi")
    if handler is not None and isinstance(obj, getattr(handler, "WSGIHandler", ())):
        return Framework("Django", obj, "DEBUG_PROPAGATE_EXCEPTIONS = True in the settings")
    bottle = sys.modules.get("bottle")
    if bottle is not None and isinstance(obj, getattr(bottle, "Bottle", ())):
        return Framework("Bottle", obj, "app.catchall = False")
    return None


def let_errors_through(app: object) -> Framework | None:
    """Flip the framework's own switch so that errors reach the debugger; return what it did.

    Flask: ``app.debug = True`` (errors propagate, Jinja reloads templates), as
    ``flask --debug run`` does. Django: ``DEBUG_PROPAGATE_EXCEPTIONS = True``. Bottle:
    ``catchall = False``.
    """
    framework = find_framework(app)
    if framework is None:
        return None
    if framework.name == "Flask":
        framework.app.debug = True
    elif framework.name == "Django":
        # Django is imported already: the handler is Django's.
        importlib.import_module("django.conf").settings.DEBUG_PROPAGATE_EXCEPTIONS = True
    elif framework.name == "Bottle":
        framework.app.catchall = False
    return framework


def follow_templates(app: object) -> tuple[str, ...]:
    """Make edited templates show on the next request; return the folders the reloader must
    watch for that (a change there restarts the app).

    Flask (Jinja) rereads a template whose file changed once auto-reload is on, so nothing
    needs watching. Django's template loaders cache what they read, so its template folders
    (``TEMPLATES`` dirs and the apps' ``templates/``) are watched.
    """
    framework = find_framework(app)
    if framework is None:
        return ()
    if framework.name == "Flask":
        framework.app.config["TEMPLATES_AUTO_RELOAD"] = True
        framework.app.jinja_env.auto_reload = True
        return ()
    if framework.name == "Django":
        try:
            autoreload = importlib.import_module("django.template.autoreload")
            folders = autoreload.get_template_directories()
        except Exception:  # an older Django, or settings that cannot list their templates
            return ()
        return tuple(sorted(str(folder) for folder in folders))
    return ()


def page_files(app: object) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """The framework's static folders (URL prefix, folder) and template folders, for live
    reload: a page shows them, but a change to them needs no restart."""
    framework = find_framework(app)
    if framework is None:
        return [], ()
    try:
        if framework.name == "Flask":
            return _flask_page_files(framework.app)
        if framework.name == "Django":
            return _django_static(), ()
    except Exception:  # an unusual configuration: live reload still follows restarts
        pass
    return [], ()


def _flask_page_files(app: Any) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    static: list[tuple[str, str]] = []
    if app.has_static_folder and app.static_url_path is not None:
        static.append((app.static_url_path or "/", app.static_folder))
    templates: list[str] = []
    for owner in (app, *app.blueprints.values()):
        folder = getattr(owner, "template_folder", None)
        root = getattr(owner, "root_path", None)
        if folder and root:
            templates.append(os.path.join(root, folder))
    return static, tuple(path for path in templates if os.path.isdir(path))


def _django_static() -> list[tuple[str, str]]:
    """Folders the staticfiles finders serve under STATIC_URL (when it is a path)."""
    settings = importlib.import_module("django.conf").settings
    url = str(getattr(settings, "STATIC_URL", "") or "")
    if not url.startswith("/") or "django.contrib.staticfiles" not in settings.INSTALLED_APPS:
        return []
    finders = importlib.import_module("django.contrib.staticfiles.finders")
    static: list[tuple[str, str]] = []
    for finder in finders.get_finders():
        for prefix, root in getattr(finder, "locations", ()):
            static.append((url.rstrip("/") + "/" + prefix.strip("/") if prefix else url, root))
        for storage in getattr(finder, "storages", {}).values():
            location = getattr(storage, "location", None)
            if location and os.path.isdir(location):
                static.append((url, location))
    return static
