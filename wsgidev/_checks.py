"""Argument checks shared by run_simple, make_server and the server classes.

One place, so each mistake gets one message, whichever entry point it came through; each
message names the argument, what was given and what to pass instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import get_args

from ._reload.watch.scope import ReloaderType


def check_hostname(hostname: object) -> str:
    if not isinstance(hostname, str):
        raise TypeError(
            "hostname must be a str such as '127.0.0.1', '0.0.0.0', '::1' or "
            f"'unix:///path/app.sock', got {type(hostname).__name__}"
        )
    return hostname


def check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an integer, got {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    return port


def check_app(app: object, name: str = "app") -> None:
    """Refuse a non-callable app now, not as a 500 on every request later."""
    if not callable(app):
        raise TypeError(
            f"{name} must be a WSGI callable (environ, start_response), got {app!r} "
            f"of type {type(app).__name__}"
        )


def check_processes(processes: object, threaded: object) -> int:
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"processes must be an integer, got {type(processes).__name__}")
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if threaded and processes > 1:
        raise ValueError(
            "threaded=True cannot be combined with processes > 1: a server is either "
            "multi-threaded or multi-process; choose one"
        )
    return processes


def check_fd(fd: object) -> None:
    if fd is not None and (isinstance(fd, bool) or not isinstance(fd, int)):
        raise TypeError(
            f"fd must be an int file descriptor or None, got {type(fd).__name__} {fd!r}"
        )


def check_reloader(interval: object, reloader_type: object) -> None:
    if not isinstance(interval, (int, float)) or isinstance(interval, bool):
        raise TypeError(
            f"reloader_interval must be a number of seconds, got {type(interval).__name__}"
        )
    if interval <= 0:
        raise ValueError(f"reloader_interval must be positive, got {interval}")
    if not isinstance(reloader_type, str):
        raise TypeError(
            f"reloader_type must be a str such as 'auto', got {type(reloader_type).__name__}"
        )
    if reloader_type not in get_args(ReloaderType):
        choices = ", ".join(map(repr, get_args(ReloaderType)))
        raise ValueError(f"reloader_type must be one of {choices}, got {reloader_type!r}")


def check_flags(**flags: object) -> None:
    """Booleans; ints and None are accepted by truthiness as Werkzeug does, but a string is
    refused: ``use_debugger="false"`` would otherwise switch the debugger on."""
    for name, value in flags.items():
        if value is not None and not isinstance(value, int):
            raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_request_handler(handler: object, base: type) -> None:
    if handler is not None and not (isinstance(handler, type) and issubclass(handler, base)):
        raise TypeError(
            f"request_handler must be a subclass of {base.__name__} or None, got {handler!r}"
        )


def check_static_files(static_files: object) -> None:
    if static_files is None:
        return
    if not isinstance(static_files, Mapping):
        raise TypeError(
            "static_files must be a mapping of URL prefix to directory, file or "
            f"(package, path), got {type(static_files).__name__}"
        )
    for prefix in static_files:
        if not isinstance(prefix, str):
            raise TypeError(
                f"static_files keys must be URL prefixes such as '/static', got "
                f"{type(prefix).__name__} {prefix!r}"
            )


def path_list(name: str, value: object, what: str) -> list[str] | None:
    """``value`` (an iterable of paths, or None) as a list of str; a lone str is refused."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of {what}, got {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"{name} must contain {what}, got {type(item).__name__} {item!r}")
    return [os.fspath(item) for item in items]


def check_setting(name: str, value: object) -> None:
    """One field of ServerSettings: seconds are positive numbers, sizes whole byte counts."""
    if name == "read_body_ahead":
        if not isinstance(value, bool):
            raise TypeError(f"read_body_ahead must be True or False, got {value!r}")
    elif name in ("max_body_size", "body_memory_limit"):
        if value is None and name == "max_body_size":
            return
        if isinstance(value, bool) or not isinstance(value, int):
            also = " or None" if name == "max_body_size" else ""
            raise TypeError(
                f"{name} must be an integer number of bytes{also}, got {type(value).__name__}"
            )
        if value < 0:
            raise ValueError(f"{name} must be 0 or more, got {value}")
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
        if not value > 0:
            raise ValueError(f"{name} must be more than 0 seconds, got {value}")


def check_max_threads(max_threads: object) -> int:
    if isinstance(max_threads, bool) or not isinstance(max_threads, int):
        raise TypeError(f"max_threads must be an integer, got {type(max_threads).__name__}")
    if max_threads < 1:
        raise ValueError(f"max_threads must be at least 1, got {max_threads}")
    return max_threads


def check_settings(settings: object, settings_type: type) -> None:
    if settings is not None and not isinstance(settings, settings_type):
        raise TypeError(
            f"settings must be a {settings_type.__name__} or None, got "
            f"{type(settings).__name__}; build one with ServerSettings(keep_alive_timeout=...)"
        )
