"""wsgidev with real frameworks (Flask, Django, Bottle, httpbin) and real servers (gunicorn, waitress)."""
