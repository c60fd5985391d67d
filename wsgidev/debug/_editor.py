"""Editor links: a URL template such as ``vscode://file/{path}:{line}`` from ``editor=`` or
``$WSGIDEV_EDITOR``, checked once, filled per frame by render.py."""

from __future__ import annotations

import os
from urllib.parse import quote

EDITOR_ENV_VAR = "WSGIDEV_EDITOR"
_UNSAFE_SCHEMES = frozenset({"javascript", "data", "vbscript"})


def editor_url(template: str, path: str, line: int) -> str:
    """Fill an editor URL template such as ``vscode://file/{path}:{line}``."""
    return template.replace("{path}", quote(path, safe="/:\\")).replace("{line}", str(line))


def editor_from_env() -> str | None:
    """``$WSGIDEV_EDITOR``, checked, or None when unset."""
    value = os.environ.get(EDITOR_ENV_VAR, "").strip()
    return check_editor(value, EDITOR_ENV_VAR) if value else None


def check_editor(template: str, name: str) -> str:
    """Return ``template`` if it is a usable editor URL; the error names ``name``.

    It becomes an ``href`` on the page, so script-running schemes are refused.
    """
    if not isinstance(template, str):
        raise TypeError(f"{name} must be a URL template string, got {type(template).__name__}")
    if "{path}" not in template:
        raise ValueError(f"{name} must contain {{path}} (and usually {{line}}), got {template!r}")
    scheme = template.split(":", 1)[0].strip().lower() if ":" in template else ""
    if not scheme or scheme in _UNSAFE_SCHEMES:
        raise ValueError(
            f"{name} must be an editor URL such as 'vscode://file/{{path}}:{{line}}', got {template!r}"
        )
    return template
