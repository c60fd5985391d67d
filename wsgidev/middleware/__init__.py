"""WSGI middleware that wsgidev ships: static files (shared_data)."""
