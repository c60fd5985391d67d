"""The one logger wsgidev writes to, and the stderr handler it installs when the user set none."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("wsgidev")


def ensure_handler() -> None:
    """Give the ``wsgidev`` logger a plain stderr handler unless logging is already configured.

    A user who configured logging (a handler on ``wsgidev`` or on the root logger) keeps theirs.
    """
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
