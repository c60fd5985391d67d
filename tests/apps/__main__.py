"""Serve ``tests.apps.NAME:app`` with ``wsgidev.run_simple`` on port 0 (or ``--port``)."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from wsgidev.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.apps")
    parser.add_argument("name", help="module under tests.apps whose `app` is served")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threaded", action="store_true")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--debugger", action="store_true")
    parser.add_argument("--no-evalex", action="store_true")
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--reloader-type", default="auto")
    parser.add_argument("--reloader-interval", type=float, default=1)
    parser.add_argument("--extra-file", action="append", default=[])
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--static", action="append", default=[], help="URL=DIR")
    parser.add_argument("--passthrough-errors", action="store_true")
    parser.add_argument("--ssl", default=None, help="'adhoc' or CERT,KEY")
    parser.add_argument("--live", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()

    app = importlib.import_module(f"tests.apps.{args.name}").app
    ssl_context: Any = None
    if args.ssl == "adhoc":
        ssl_context = "adhoc"
    elif args.ssl:
        ssl_context = tuple(args.ssl.split(",", 1))
    static = dict(item.split("=", 1) for item in args.static) or None
    run_simple(
        args.host,
        args.port,
        app,
        use_reloader=args.reload,
        use_debugger=args.debugger,
        use_evalex=not args.no_evalex,
        extra_files=args.extra_file or None,
        exclude_patterns=args.exclude or None,
        reloader_interval=args.reloader_interval,
        reloader_type=args.reloader_type,
        threaded=args.threaded,
        processes=args.processes,
        static_files=static,
        passthrough_errors=args.passthrough_errors,
        ssl_context=ssl_context,
        live_reload=args.live,
    )


if __name__ == "__main__":
    main()
