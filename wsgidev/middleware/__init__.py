"""WSGI middleware that wsgidev ships: static files (shared_data) and live reload (live_reload)."""
