"""A Django app: with ``wsgidev.contrib.django`` in ``INSTALLED_APPS``, ``manage.py devserver`` is
runserver served by wsgidev (its server, reloader and debugger)."""
