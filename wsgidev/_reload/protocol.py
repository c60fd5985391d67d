"""What the reloader's supervisor and its children say to each other.

The environment variables (defined once here: serving.py reads two of them without importing
the supervisor), the options and the program a child is started with, the bytes a child
writes back, and the exit code that asks for a restart.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .watch.scope import ReloaderType, WatchOptions

RUN_MAIN_ENV = "WSGIDEV_RUN_MAIN"  # "true" in a child: it serves, the supervisor watches
SERVER_FD_ENV = "WSGIDEV_SERVER_FD"  # the listening socket the supervisor bound
OPTIONS_ENV = "WSGIDEV_RELOADER_OPTIONS"
TARGET_ENV = "WSGIDEV_RELOADER_TARGET"
STANDBY_ENV = "WSGIDEV_RELOADER_STANDBY"
NOTIFY_ENV = "WSGIDEV_RELOADER_NOTIFY"
# Set (to describe_exit's text) for a child that only explains why the last one died.
CRASHED_ENV = "WSGIDEV_RELOADER_CRASHED"

RESTART_EXIT_CODE = 3
# Ctrl+C reaches every child, a spare one too, at any point of its start (still importing
# wsgidev, say): it stops quietly, with no traceback.
BOOTSTRAP = (
    "try:\n"
    "    from wsgidev._reload.child import main\n"
    "    main()\n"
    "except KeyboardInterrupt:\n"
    "    raise SystemExit(0) from None\n"
)


# Written by a child to the supervisor's notify pipe.
RETIRING = b"X"  # written by a child that stopped accepting to restart: start the next one now
SERVING = b"S"  # written by a child that imported the app and serves: time to warm a spare

SslSpec = Literal["adhoc", "unavailable"] | tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class ReloaderOptions:
    """run_simple's reloader arguments, plus what a child needs to serve a startup error.

    A child whose app fails to import never reaches run_simple, so it reads these from the
    environment to build an error server with the same address, TLS and debugger settings.
    """

    extra_files: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    interval: float = 1.0
    reloader_type: ReloaderType = "auto"
    hostname: str = "127.0.0.1"
    port: int = 0
    use_debugger: bool = False
    use_evalex: bool = True
    live_reload: bool = False
    threaded: bool = False
    ssl: SslSpec = None
    # Scanned for new .py files besides the program's directory and the loaded packages.
    project_dirs: tuple[str, ...] = ()

    @staticmethod
    def ssl_spec(ssl_context: object) -> SslSpec:
        """How a child can rebuild ``ssl_context``: only "adhoc" and (cert, key) survive a restart."""
        if ssl_context is None:
            return None
        if ssl_context == "adhoc":
            return "adhoc"
        if isinstance(ssl_context, tuple) and len(ssl_context) == 2:
            return (str(ssl_context[0]), str(ssl_context[1]))
        return "unavailable"

    def watch_options(self) -> WatchOptions:
        return WatchOptions(
            extra_files=self.extra_files,
            exclude_patterns=self.exclude_patterns,
            interval=self.interval,
            project_dirs=self.project_dirs,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ReloaderOptions:
        data: dict[str, Any] = json.loads(text)
        for key in ("extra_files", "exclude_patterns", "ssl", "project_dirs"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Target:
    """How this program was started, so a child can run it again the same way."""

    kind: Literal["path", "module"]
    target: str  # a script path, or a module name for ``python -m``
    argv: tuple[str, ...]
    path0: str  # what Python put first on sys.path

    @classmethod
    def of_this_process(cls) -> Target:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        argv = tuple(sys.argv)
        if spec is not None and spec.name and spec.name != "__main__":
            name = spec.name.removesuffix(".__main__")
            return cls("module", name, argv, os.getcwd())
        path = getattr(main, "__file__", None)
        if not isinstance(path, str) or not os.path.exists(path):
            raise RuntimeError(
                "use_reloader needs a program it can start again: run a script "
                "(python app.py) or a module (python -m app), not an interactive session"
            )
        path = os.path.abspath(path)
        return cls("path", path, argv, os.path.dirname(os.path.realpath(path)))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Target:
        data: dict[str, Any] = json.loads(text)
        data["argv"] = tuple(data["argv"])
        return cls(**data)
