"""``flask dev``: ``flask run``, served by wsgidev's server, reloader and debugger.

Registered through Flask's ``flask.commands`` entry point, so it sits beside ``flask run``
and never replaces it. The app comes from Flask's own discovery (``--app``, ``FLASK_APP``,
factories, ``.flaskenv``), ``flask --debug dev`` turns on the reloader and the debugger as
``flask --debug run`` does, and ``flask run``'s options keep their names and meanings.
Only Flask's CLI imports this module: importing wsgidev never imports Flask.
"""

from __future__ import annotations

import os
from typing import Any

import click
from flask.cli import ScriptInfo, SeparatedPathType, pass_script_info
from flask.helpers import get_debug_flag

from wsgidev._reload.supervisor import served_by_the_child
from wsgidev.cli import parse_static_export
from wsgidev.serving import is_running_from_reloader, run_simple


def _static_export(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """``--static /URL=DIR`` (repeatable) as run_simple's ``static_files``."""
    exports: dict[str, str] = {}
    for value in values:
        try:
            url, path = parse_static_export(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        exports[url] = path
    return exports or None


def _ssl(cert: str | None, key: str | None) -> Any:
    """What run_simple takes for TLS: ``"adhoc"``, ``(cert, key)`` or nothing. Files stay
    files, so the reloader's restarted process can load them again."""
    if cert is None:
        if key is not None:
            raise click.BadParameter('"--key" needs "--cert".', param_hint="--key")
        return None
    if cert == "adhoc":
        if key is not None:
            raise click.BadParameter('"--key" is not used with "--cert adhoc".', param_hint="--key")
        return "adhoc"
    if not os.path.isfile(cert):
        raise click.BadParameter(f"{cert!r} is neither a file nor 'adhoc'.", param_hint="--cert")
    return (cert, key or cert)


@click.command("dev", short_help="Run the wsgidev development server.")
@click.option("--host", "-h", default="127.0.0.1", help="The interface to bind to.")
@click.option("--port", "-p", default=5000, type=int, help="The port to bind to.")
@click.option("--cert", default=None, help="A certificate file, or 'adhoc' for a throwaway one.")
@click.option("--key", default=None, type=click.Path(dir_okay=False), help="Its key file.")
@click.option(
    "--reload/--no-reload", default=None, help="Restart on code changes. On with --debug."
)
@click.option(
    "--debugger/--no-debugger", default=None, help="Show the debugger on errors. On with --debug."
)
@click.option("--with-threads/--without-threads", default=True, help="Serve requests in threads.")
@click.option(
    "--extra-files",
    default=None,
    type=SeparatedPathType(),
    help=f"More files the reloader watches, separated by {os.path.pathsep!r}.",
)
@click.option(
    "--exclude-patterns",
    default=None,
    type=SeparatedPathType(),
    help=f"Glob patterns of files the reloader ignores, separated by {os.path.pathsep!r}.",
)
@click.option(
    "--static",
    multiple=True,
    callback=_static_export,
    metavar="/URL=DIR",
    help="Serve the files of DIR under /URL (repeatable).",
)
@click.option(
    "--evalex/--no-evalex", default=True, help="Offer the console on the debugger's page."
)
@click.option(
    "--live/--no-live",
    default=None,
    help="Open pages reload after a change and show errors of background requests "
    "(default: on with the reloader and the debugger).",
)
@pass_script_info
def dev_command(
    info: ScriptInfo,
    host: str,
    port: int,
    cert: str | None,
    key: str | None,
    reload: bool | None,
    debugger: bool | None,
    with_threads: bool,
    extra_files: list[str] | None,
    exclude_patterns: list[str] | None,
    static: dict[str, str] | None,
    evalex: bool,
    live: bool | None,
) -> None:
    """Run the app with wsgidev: its server, reloader and debugger.

    Loads the app as `flask run` does. With `flask --debug dev` the reloader and the
    debugger are on, and Flask lets errors through to the debugger.
    """
    ssl_context = _ssl(cert, key)
    debug = get_debug_flag()
    use_reloader = debug if reload is None else reload
    app: Any
    if use_reloader and not is_running_from_reloader():
        # The reloader's supervisor never serves: only its child imports the app, so an app
        # that does not import yet still gets a server that shows why.
        app = served_by_the_child
    else:
        try:
            app = info.load_app()
        except click.ClickException as exc:
            if not is_running_from_reloader():
                raise
            # Flask's "could not import" is a usage error click would end the process with;
            # the reloader's child shows it on every request until a save fixes it instead.
            # The import's own error (Flask keeps it as the context) has the user's frames.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, Exception):
                raise cause from None
            raise RuntimeError(exc.format_message()) from None
    run_simple(
        host,
        port,
        app,
        use_reloader=use_reloader,
        use_debugger=debug if debugger is None else debugger,
        use_evalex=evalex,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        threaded=with_threads,
        static_files=static,
        ssl_context=ssl_context,
        live_reload=live,
    )
