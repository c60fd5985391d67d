"""The ``wsgidev`` command: ``wsgidev run TARGET`` serves an app, ``wsgidev demo`` the demo.

Parses flags and finds the app (_target), then hands everything to serving.run_simple.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._discover import discover_target, load_dotenv_files
from ._target import TargetNotFound, load_app, parse_target

# argparse's own status for a bad command line; a target that cannot be found is one too.
USAGE_ERROR = 2

_RUN_DESCRIPTION = """\
Serve a WSGI application with the wsgidev development server.

TARGET is one of:
  module:name            an attribute of an importable module (module.sub:obj.app works too)
  module:factory()       a function returning the app, called once; literal arguments are
                         allowed: "module:create_app('dev', debug=True)"
  module                 looks for `app`, then `application`, then create_app()/make_app()
  path/to/app.py[:name]  a file; its folder (or its top package's parent) goes on sys.path
The current directory is on sys.path, as with `python -m`.

Without TARGET: $FLASK_APP, else Django's application for $DJANGO_SETTINGS_MODULE, else
wsgi.py or app.py in the current folder, else the settings that manage.py names. .env and
.flaskenv are loaded first when python-dotenv is installed (as Flask does).
"""

_RUN_EPILOG = """\
examples:
  wsgidev run hello:app
  wsgidev run myproject.wsgi --host 0.0.0.0 --port 8000 --reload
  wsgidev run "factory:create_app('dev')" --debug --static /static=./static
  wsgidev run app.py --adhoc
"""


class _Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for a mistyped option or command."""

    def error(self, message: str) -> NoReturn:
        hint = _did_you_mean(self, message)
        super().error(f"{message}{hint}")


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    if message.startswith("unrecognized arguments: "):
        words = message.removeprefix("unrecognized arguments: ").split()
        known = _option_strings(parser)
    elif "invalid choice: " in message:
        words = [message.split("invalid choice: ", 1)[1].split(" ", 1)[0].strip("'")]
        known = [choice for action in parser._actions for choice in (action.choices or ())]
    else:
        return ""
    hints = []
    for word in words:
        name = word.split("=", 1)[0]
        close = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]} for {name}")
    return f"; did you mean {' and '.join(hints)}?" if hints else ""


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option of ``parser`` and of its subcommands."""
    found: list[str] = []
    for action in parser._actions:
        found.extend(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_option_strings(sub))
    return found


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The full ``wsgidev`` argument parser (also what ``--help`` prints)."""
    parser = _Parser(
        prog=prog,
        description="Development tools for WSGI applications.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"wsgidev {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="serve a WSGI application",
        description=_RUN_DESCRIPTION,
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Errors found after parsing (--static, --cert, ...) print the usage of `run`, not the top.
    run.set_defaults(run_parser=run)
    run.add_argument(
        "target", metavar="TARGET", nargs="?", help="the application to serve (see above)"
    )
    _add_address_arguments(run)
    _add_run_arguments(run)
    errors = commands.add_parser(
        "errors",
        help="list the errors of a running server, or print one as Markdown",
        description="List the errors a running wsgidev server with the debugger keeps, newest "
        "first, or print one as Markdown (for you, or a coding agent).",
    )
    errors.add_argument(
        "--url",
        help="the server's URL (default: the last server started with --debug from this folder)",
    )
    which = errors.add_mutually_exclusive_group()
    which.add_argument("--last", action="store_true", help="print the newest error as Markdown")
    which.add_argument("--id", help="print the error with this id as Markdown")
    errors.add_argument("--json", action="store_true", help="print the list as JSON")
    demo = commands.add_parser(
        "demo",
        help="serve the built-in demo app with the debugger and static files",
        description="Serve wsgidev's demo: an error page for the debugger, static files, a "
        "streamed response and a form.",
    )
    _add_address_arguments(demo)
    return parser


def _add_address_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on: an IP, a host name, 0.0.0.0 or :: for every interface, "
        "or unix://PATH for a Unix socket (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=5000,
        help="TCP port; 0 picks a free one and prints it (default: %(default)s)",
    )


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    debug = run.add_argument_group("debugging")
    debug.add_argument(
        "--reload",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="restart the server when a Python file it imported (or an --extra-files file) "
        "changes; on by default with --debug, as with flask --debug",
    )
    debug.add_argument(
        "--debug",
        action="store_true",
        help="show the interactive traceback page for errors (DebuggedApplication), let the "
        "framework's errors through (Flask, Django, Bottle) and reload on changes",
    )
    debug.add_argument(
        "--no-evalex",
        action="store_true",
        help="with --debug: show tracebacks but no Python console in the browser",
    )
    debug.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live reload: open pages reload after a change, stylesheets under --static swap "
        "in place, and errors of background requests show on the page; on by default with "
        "--debug and the reloader",
    )
    debug.add_argument(
        "--reloader-type",
        choices=["auto", "stat", "watchfiles", "watchdog"],
        default=None,
        help="with --reload: how it notices changes; auto prefers an installed event-based "
        "watcher (default: auto)",
    )
    debug.add_argument(
        "--extra-files",
        action="append",
        default=[],
        metavar="FILE",
        help=f"with --reload: also restart when FILE changes (repeatable, or several joined "
        f"with {os.pathsep!r})",
    )
    debug.add_argument(
        "--exclude-patterns",
        action="append",
        default=[],
        metavar="GLOB",
        help=f"with --reload: ignore changes to files matching GLOB (repeatable, or several "
        f"joined with {os.pathsep!r})",
    )
    serve = run.add_argument_group("serving")
    serve.add_argument(
        "--static",
        action="append",
        default=[],
        metavar="/URL=DIR",
        help="serve the files in DIR under the URL prefix /URL (SharedDataMiddleware); repeatable",
    )
    workers = serve.add_mutually_exclusive_group()
    workers.add_argument(
        "--threaded",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="handle each request in a thread pool (default); --no-threaded runs one request "
        "at a time, which keeps breakpoints simple",
    )
    workers.add_argument(
        "--processes",
        type=_positive_int,
        default=1,
        metavar="N",
        help="handle requests in up to N forked processes instead of threads",
    )
    tls = serve.add_mutually_exclusive_group()
    tls.add_argument("--cert", metavar="FILE", help="serve HTTPS with this PEM certificate")
    tls.add_argument(
        "--adhoc",
        action="store_true",
        help="serve HTTPS with a throwaway self-signed certificate (needs wsgidev[tls])",
    )
    serve.add_argument(
        "--key", metavar="FILE", help="the PEM private key for --cert (if not inside it)"
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "errors":
            from ._errors_cli import errors_command

            return errors_command(args.url, args.last, args.id, args.json)
        return _run(args.run_parser, args)
    except KeyboardInterrupt:
        # Ctrl+C before the server took over (e.g. during a slow import) is a normal quit.
        return 0


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .serving import run_simple

    if args.reload is None:  # --debug implies --reload unless --no-reload
        args.reload = args.debug

    static = _static_exports(parser, args.static)
    ssl_context: Any = _ssl_context(parser, args)
    if args.reload and ssl_context is not None:
        # Checked above; passed on as files or "adhoc", which a restarted process can rebuild
        # (it serves an import error over TLS too), where an SSLContext object cannot be.
        ssl_context = "adhoc" if args.adhoc else (args.cert, args.key or args.cert)
    _warn_about_ineffective_flags(args)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    load_dotenv_files(Path.cwd())
    if args.target is None:
        args.target = _discover_or_exit(args.run_parser)
    app = _load_for_reload(args.target) if args.reload else _load_or_exit(args.target)
    run_simple(
        args.host,
        args.port,
        app,
        use_reloader=args.reload,
        use_debugger=args.debug,
        use_evalex=not args.no_evalex,
        extra_files=_split_paths(args.extra_files),
        exclude_patterns=_split_paths(args.exclude_patterns),
        reloader_type=args.reloader_type or "auto",
        threaded=args.threaded and args.processes == 1,
        processes=args.processes,
        static_files=static,
        ssl_context=ssl_context,
        live_reload=args.live,
    )
    return 0


def _discover_or_exit(parser: argparse.ArgumentParser) -> str:
    """The TARGET found as Flask and Django users expect (see _discover.py), said once."""
    from .serving import is_running_from_reloader

    try:
        found = discover_target(Path.cwd(), os.environ)
    except TargetNotFound as exc:
        parser.error(str(exc))
    if not is_running_from_reloader():
        print(f" * Serving {found.target} (from {found.why})", file=sys.stderr)
    return found.target


def _warn_about_ineffective_flags(args: argparse.Namespace) -> None:
    """A flag that only modifies another one is accepted without it, but said to do nothing."""
    from .serving import is_running_from_reloader

    if is_running_from_reloader():
        return  # the supervisor has said it already
    ineffective = [
        ("--no-evalex", args.no_evalex, "--debug", args.debug),
        ("--reloader-type", args.reloader_type is not None, "--reload", args.reload),
        ("--extra-files", bool(args.extra_files), "--reload", args.reload),
        ("--exclude-patterns", bool(args.exclude_patterns), "--reload", args.reload),
    ]
    for flag, given, needed, needed_given in ineffective:
        if given and not needed_given:
            print(
                f"Warning: {flag} has no effect without {needed}; add {needed} or drop {flag}.",
                file=sys.stderr,
            )


def _load_for_reload(text: str) -> Any:
    """With --reload: the supervisor only checks TARGET; the child imports it.

    An app that fails to import in the child is not the end: the exception reaches the
    reloader, which serves it as a 500 page and restarts once a file changes.
    """
    from ._reload.protocol import RUN_MAIN_ENV
    from ._reload.supervisor import served_by_the_child

    if os.environ.get(RUN_MAIN_ENV) != "true":
        try:
            parse_target(text)
        except TargetNotFound as exc:
            print(f"Error: could not load the application {text!r}: {exc}.", file=sys.stderr)
            raise SystemExit(USAGE_ERROR) from None
        return served_by_the_child
    try:
        return load_app(parse_target(text))
    except TargetNotFound as exc:
        print(f"Error: could not load the application {text!r}: {exc}.", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None
    except Exception as exc:
        # Boundary: hand the user's error to the reloader with their frames first.
        raise exc.with_traceback(_user_traceback(exc)) from None


def _load_or_exit(text: str) -> Any:
    """The app TARGET names; a missing one exits 2 with a paragraph, a crashing one with its
    traceback (trimmed to the user's frames)."""
    try:
        return load_app(parse_target(text))
    except TargetNotFound as exc:
        print(f"Error: could not load the application {text!r}: {exc}.", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None
    except Exception as exc:
        # Boundary: the user's module raised while importing or building the app; show where.
        print(f"Error: importing the application {text!r} raised:", file=sys.stderr)
        traceback.print_exception(type(exc), exc, _user_traceback(exc))
        raise SystemExit(USAGE_ERROR) from None


def _user_traceback(exc: BaseException) -> Any:
    """Skip the frames of wsgidev and importlib that lead into the user's code (all of them
    for a SyntaxError, whose own lines name the file)."""
    here = Path(__file__).resolve().parent
    machinery = {here / "cli.py", here / "_target.py", Path(importlib.__file__).resolve()}
    keep_one = not isinstance(exc, SyntaxError)
    tb = exc.__traceback__
    while tb is not None and (tb.tb_next is not None or not keep_one):
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith("<frozen importlib") or Path(filename).resolve() in machinery):
            break
        tb = tb.tb_next
    return tb


def parse_static_export(item: str) -> tuple[str, str]:
    """``/URL=DIR`` as ``(url, absolute path)``; ValueError says what is wrong with it.
    Shared by ``wsgidev run --static`` and ``flask dev --static``."""
    url, sep, directory = item.partition("=")
    if not sep or not url.startswith("/") or not directory:
        raise ValueError(f"expected /URL=DIR, got {item!r}")
    if not Path(directory).exists():
        raise ValueError(f"{directory!r} does not exist")
    return url, str(Path(directory).resolve())


def _static_exports(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str] | None:
    exports: dict[str, str] = {}
    for item in items:
        try:
            url, path = parse_static_export(item)
        except ValueError as exc:
            parser.error(f"--static: {exc}")
        exports[url] = path
    return exports or None


def _ssl_context(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    from ._tls import as_ssl_context, load_ssl_context

    if args.key and not args.cert:
        parser.error("--key needs --cert")
    try:
        if args.cert:
            return load_ssl_context(args.cert, args.key)
        return as_ssl_context("adhoc") if args.adhoc else None
    except (ImportError, OSError, ValueError) as exc:
        parser.error(f"{'--adhoc' if args.adhoc else '--cert/--key'}: {exc}")


def _split_paths(values: list[str]) -> list[str] | None:
    paths = [part for value in values for part in value.split(os.pathsep) if part]
    return paths or None


def _demo(args: argparse.Namespace) -> int:
    from ._demo import serve_demo

    serve_demo(args.host, args.port)
    return 0
