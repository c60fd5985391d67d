"""Integrations that only a framework loads: ``flask dev`` (``wsgidev.contrib.flask``)."""
