"""The environment variables through which the reloader's supervisor talks to its children.

Defined once here: serving.py reads two of them without importing the reloader itself.
"""

RUN_MAIN_ENV = "WSGIDEV_RUN_MAIN"  # "true" in a child: it serves, the supervisor watches
SERVER_FD_ENV = "WSGIDEV_SERVER_FD"  # the listening socket the supervisor bound
OPTIONS_ENV = "WSGIDEV_RELOADER_OPTIONS"
TARGET_ENV = "WSGIDEV_RELOADER_TARGET"
STANDBY_ENV = "WSGIDEV_RELOADER_STANDBY"
NOTIFY_ENV = "WSGIDEV_RELOADER_NOTIFY"
# Set (to describe_exit's text) for a child that only explains why the last one died.
CRASHED_ENV = "WSGIDEV_RELOADER_CRASHED"
