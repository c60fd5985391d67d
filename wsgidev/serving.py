"""run_simple: assemble the middleware stack, bind, announce, and serve it.

The server classes, the HTTP handler and the socket binding live in _server (bytes <-> values
in _http), TLS contexts in _tls, restarting on code changes in _reload. This module re-exports
the public names.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import sys
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from ._banner import BoundAddress, is_dual_stack, log_startup
from ._checks import (
    check_app,
    check_flags,
    check_hostname,
    check_port,
    check_processes,
    check_reloader,
    check_request_handler,
    check_static_files,
    path_list,
)
from ._log import ensure_handler, logger
from ._reload.protocol import RUN_MAIN_ENV, SERVER_FD_ENV
from ._reload.watch.scope import ReloaderType
from ._server.handler import WSGIRequestHandler
from ._server.servers import (
    BaseWSGIServer,
    ForkingWSGIServer,
    ServerSettings,
    ThreadedWSGIServer,
    bind_socket,
    make_server,
)
from ._tls import (
    as_ssl_context,
    generate_adhoc_ssl_context,
    load_ssl_context,
    make_ssl_devcert,
)
from ._types import WSGIApplication

__all__ = [
    "BaseWSGIServer",
    "ForkingWSGIServer",
    "ReloaderType",
    "ServerSettings",
    "ThreadedWSGIServer",
    "WSGIRequestHandler",
    "generate_adhoc_ssl_context",
    "is_running_from_reloader",
    "load_ssl_context",
    "make_server",
    "make_ssl_devcert",
    "run_simple",
]

# Why an address cannot be listened on, by errno, and what to do about it (TCP, Unix socket).
_BIND_HINTS = {
    errno.EADDRINUSE: (
        "it is already in use; stop the program using it, or choose another port "
        "(0 picks a free one)",
        "the socket path is in use by another server; stop it, or choose another path",
    ),
    errno.EACCES: (
        "it needs more privileges; choose a port above 1023",
        "permission denied; choose a path in a folder you can write to",
    ),
    errno.EADDRNOTAVAIL: (
        "it is not an address of this machine; use 127.0.0.1, 0.0.0.0 for every "
        "interface, or one of this machine's addresses",
        "",
    ),
    errno.ENOENT: ("", "its folder does not exist"),
}


def is_running_from_reloader() -> bool:
    """Whether this process is the child the reloader restarts (it serves; the parent watches)."""
    return os.environ.get(RUN_MAIN_ENV) == "true"


def run_simple(
    hostname: str,
    port: int,
    application: WSGIApplication,
    use_reloader: bool = False,
    use_debugger: bool = False,
    use_evalex: bool = True,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    reloader_interval: float = 1,
    reloader_type: ReloaderType = "auto",
    threaded: bool = False,
    processes: int = 1,
    request_handler: type[WSGIRequestHandler] | None = None,
    static_files: Mapping[str, Any] | None = None,
    passthrough_errors: bool = False,
    ssl_context: Any = None,
    *,
    live_reload: bool | None = None,
) -> None:
    """Serve ``application`` for development until Ctrl+C (then return normally).

    ``hostname`` may be ``unix://PATH``, an IPv6 literal or ``0.0.0.0``/``::`` for every
    interface; ``port=0`` lets the OS pick (the banner shows the real one). ``static_files``
    wraps the app in SharedDataMiddleware, ``use_debugger`` then in DebuggedApplication
    (outermost). ``ssl_context`` is an ``ssl.SSLContext``, a ``(cert, key)`` tuple or
    ``"adhoc"``. An address that cannot be listened on (a port in use, a host that does not
    resolve or is not this machine's, a Unix socket in use) logs one line and exits with
    status 1, as Werkzeug does for a port in use.

    ``live_reload`` (keyword only; default: on with both the reloader and the debugger) wraps
    everything in LiveReloadMiddleware: open pages reload after a restart or a template
    change, stylesheets under ``static_files`` are swapped in place, and errors of the page's
    ``fetch()``/XHR requests show in an overlay.

    Raises ``TypeError`` for an argument of the wrong type and ``ValueError`` for a wrong
    value, naming the argument and what to pass.
    """
    check_hostname(hostname)
    check_port(port)
    check_app(application, "application")
    check_reloader(reloader_interval, reloader_type)
    check_processes(processes, threaded)
    check_flags(
        use_reloader=use_reloader,
        use_debugger=use_debugger,
        use_evalex=use_evalex,
        threaded=threaded,
        passthrough_errors=passthrough_errors,
        live_reload=live_reload,
    )
    if live_reload is None:
        live_reload = bool(use_reloader and use_debugger)
    check_request_handler(request_handler, WSGIRequestHandler)
    check_static_files(static_files)
    # Lists now, so that checking a generator's items does not use them up.
    extra_files = path_list("extra_files", extra_files, "file paths")
    exclude_patterns = path_list("exclude_patterns", exclude_patterns, "glob str patterns")
    context = as_ssl_context(ssl_context)
    ensure_handler()
    if use_reloader and not is_running_from_reloader():
        # The supervisor binds once and hands the socket to every restarted child, so the port
        # stays taken across restarts and a busy port fails before any child starts. It never
        # serves, so the app is wrapped (and the debugger PIN printed) in the children only.
        from ._reload.protocol import ReloaderOptions
        from ._reload.supervisor import pass_through, run_with_reloader

        listener = _bind_or_exit(hostname, port)
        bound = _bound_address(hostname, listener, https=context is not None)
        log_startup(bound)
        if use_debugger:
            _record_for_errors_command(bound)
        options = ReloaderOptions(
            extra_files=pass_through(extra_files),
            exclude_patterns=pass_through(exclude_patterns),
            interval=float(reloader_interval),
            reloader_type=reloader_type,
            hostname=hostname,
            port=bound.port,
            use_debugger=use_debugger,
            use_evalex=use_evalex,
            live_reload=bool(live_reload),
            threaded=threaded,
            ssl=ReloaderOptions.ssl_spec(ssl_context),
        )
        try:
            run_with_reloader(listener, options)
        finally:
            listener.close()
        return

    templates: tuple[str, ...] = ()
    if use_reloader:
        from ._frameworks import follow_templates

        templates = follow_templates(application)
    inner = application
    application = _wrap(application, use_debugger, use_evalex, static_files)
    if use_debugger or live_reload:
        from .debug.security import prepare_for_serving

        if use_debugger:
            # Trust the name the server was started with; warn loudly when evalex is reachable.
            prepare_for_serving(application, hostname)
        if live_reload:
            application = wrap_live_reload(application, inner, static_files)
            if not use_debugger:
                prepare_for_serving(application, hostname)
    server = _make_server_or_exit(
        hostname,
        port,
        application,
        threaded=threaded,
        processes=processes,
        request_handler=request_handler,
        passthrough_errors=passthrough_errors,
        ssl_context=context,
    )
    if not is_running_from_reloader():
        bound = _bound_address(hostname, server.socket, https=context is not None)
        log_startup(bound)
        if use_debugger:
            _record_for_errors_command(bound)
    try:
        if use_reloader:
            from ._reload.child import serve_with_reloader
            from ._reload.protocol import OPTIONS_ENV, ReloaderOptions

            # The supervisor passes the options it was given (and what it learnt) to the child.
            options = ReloaderOptions.from_json(os.environ[OPTIONS_ENV])
            if templates:  # the framework's template folders restart the app too
                options = dataclasses.replace(options, extra_files=options.extra_files + templates)
            serve_with_reloader(server, options)
        else:
            server.serve_forever()
    except KeyboardInterrupt:
        # serve_forever already stopped gracefully; a Ctrl+C outside it is still a clean quit.
        pass
    finally:
        server.server_close()


def _wrap(
    application: WSGIApplication,
    use_debugger: bool,
    use_evalex: bool,
    static_files: Mapping[str, Any] | None,
) -> WSGIApplication:
    """Static files inside, the debugger outermost (it must see the middleware's errors too)."""
    if static_files:
        from .middleware.shared_data import SharedDataMiddleware

        application = SharedDataMiddleware(application, dict(static_files))
    if use_debugger:
        from ._frameworks import let_errors_through
        from .debug import DebuggedApplication

        # A framework that answers its own 500 page would hide every error from the debugger.
        let_errors_through(application)
        # Served by wsgidev's own server: coding agents may read the errors (read-only).
        application = DebuggedApplication(application, evalex=use_evalex, mcp=True)
    return application


def wrap_live_reload(
    application: WSGIApplication, app: object, static_files: Mapping[str, Any] | None
) -> WSGIApplication:
    """Outermost, so the debugger's pages follow the code too; it answers the same hosts as
    the debugger, and watches the static exports and the framework's templates and static
    folder (``app`` is the user's app, inside every middleware)."""
    from ._frameworks import page_files
    from .middleware.live_reload import LiveReloadMiddleware

    exports = [
        (prefix, os.fspath(target))
        for prefix, target in (static_files or {}).items()
        if isinstance(target, (str, os.PathLike)) and os.path.exists(target)
    ]
    framework_static, templates = page_files(app)
    trusted = getattr(application, "trusted_hosts", None)
    return LiveReloadMiddleware(
        application,
        static_files=framework_static + exports,
        watch=templates,
        trusted_hosts=trusted if isinstance(trusted, list) else None,
    )


def _inherited_fd() -> int | None:
    if not is_running_from_reloader():
        return None
    value = os.environ.get(SERVER_FD_ENV, "")
    return int(value) if value.isdigit() else None


def _bind_or_exit(hostname: str, port: int) -> socket.socket:
    try:
        return bind_socket(hostname, port)
    except (OSError, ValueError) as exc:
        _exit_unbindable(exc, hostname, port)


def _make_server_or_exit(hostname: str, port: int, app: WSGIApplication, **kwargs: Any) -> Any:
    fd = _inherited_fd()
    try:
        return make_server(hostname, port, app, fd=fd, **kwargs)
    except (OSError, ValueError) as exc:
        # run_simple has already checked every other argument make_server refuses with a
        # ValueError, so here it can only be the host (unresolvable, or "unix://" alone).
        if fd is not None:
            raise
        _exit_unbindable(exc, hostname, port)


def _exit_unbindable(exc: OSError | ValueError, hostname: str, port: int) -> NoReturn:
    """An address that cannot be listened on is the user's to fix: one line, exit 1.

    Werkzeug exits like this for a port in use; a host that does not resolve or is not this
    machine's is the same kind of mistake, so it gets the same treatment, not a traceback.
    """
    unix = hostname.startswith("unix://")
    where = hostname if unix else f"{hostname} port {port}"
    if isinstance(exc, ValueError):
        reason = str(exc)
    else:
        hints = _BIND_HINTS.get(exc.errno or 0, ("", ""))
        reason = hints[unix] or (exc.strerror or str(exc))
    logger.error(" * Cannot listen on %s: %s.", where, reason.rstrip("."))
    sys.exit(1)


def _record_for_errors_command(bound: BoundAddress) -> None:
    """``wsgidev errors`` in this folder reads the errors of the server started here."""
    from ._banner import urls
    from ._last_server import record_server

    found = urls(bound)
    if found and bound.port:
        record_server(found[0])


def _bound_address(hostname: str, sock: socket.socket, https: bool) -> BoundAddress:
    port = 0 if sock.family == getattr(socket, "AF_UNIX", None) else int(sock.getsockname()[1])
    ipv6 = sock.family == socket.AF_INET6
    return BoundAddress(hostname, port, https, ipv6=ipv6, dual_stack=is_dual_stack(sock))
