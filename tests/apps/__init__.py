"""Tiny WSGI apps that the live tests serve: ``python -m tests.apps NAME [run_simple options]``.

Each app is the ``app`` attribute of the module ``tests.apps.NAME``.
"""
