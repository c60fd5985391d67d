"""``manage.py devserver [addrport]``: Django's runserver, served by wsgidev.

Same arguments as runserver (``--noreload``, ``--nothreading``, ``--ipv6``, and with
``django.contrib.staticfiles`` installed ``--nostatic``/``--insecure``), the same system
checks and unapplied-migrations warning before serving, static files straight from the
finders (no ``collectstatic``). Errors get wsgidev's debugger with its console, the reloader
is wsgidev's (template folders included), and the banner is wsgidev's ``* Running on``.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.apps import apps
from django.db import connections

from wsgidev._reload.supervisor import served_by_the_child
from wsgidev.serving import is_running_from_reloader, run_simple

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as RunserverCommand,
    )
else:
    from django.core.management.commands.runserver import Command as RunserverCommand


class Command(RunserverCommand):  # type: ignore[misc]  # Django ships no type hints
    help = "Starts the wsgidev development server: runserver with wsgidev's debugger."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--live",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Open pages reload after a change and show errors of background requests "
            "(default: on with the reloader).",
        )

    def run(self, **options: Any) -> None:
        # wsgidev's reloader re-runs this command in a child; Django's is not used.
        self.inner_run(None, **options)

    def inner_run(self, *args: Any, **options: Any) -> None:
        use_reloader = bool(options["use_reloader"])
        handler: Any
        if use_reloader and not is_running_from_reloader():
            # The reloader's supervisor never serves: checks and the app belong to its child,
            # which reports what is wrong on every request until a save fixes it.
            handler = served_by_the_child
        else:
            if not options["skip_checks"]:
                self.stdout.write("Performing system checks...\n\n")
                self.check(display_num_errors=True)
            self.check_migrations()
            connections.close_all()  # opened by the migrations check
            handler = self.get_handler(*args, **options)
        run_simple(
            self.addr,  # an IPv6 address comes without its brackets
            int(self.port),
            handler,
            use_reloader=use_reloader,
            use_debugger=True,
            use_evalex=True,
            threaded=bool(options["use_threading"]),
            live_reload=options.get("live"),
        )
