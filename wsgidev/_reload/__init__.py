"""The reloader, beside the server.

supervisor keeps the socket and restarts a serving child when it asks; child runs the program
again, serves, and watches (watch/: what to watch, and one module per backend); protocol is
what the two say to each other; startup_error serves an app that cannot start.
"""
