"""Start a server and Ctrl+C it, many times in a row, in one process; print how many hung.

Run as ``python -m tests.apps.ctrl_c_loop MODE COUNT``. Each round starts ``serve_forever`` in
the main thread while a helper thread sends SIGINT at a varying moment just after the loop
started. Even rounds send it to the process (some land right before the loop blocks in its
poll); odd rounds deliver it to the helper thread itself, as the kernel may do with a
process-directed signal, so the main thread's poll is never interrupted by it. Either way
only a wake-up at the OS level gets the loop to run the handler. A
round whose ``serve_forever`` has not returned 2 s after the signal counts as a hang; the
helper then wakes the loop by hand so the next round can run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import time
from typing import Any

from wsgidev.serving import make_server


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _round(mode: str, rng: random.Random, to_thread: bool) -> bool:
    """Return True when the server stopped by itself after one Ctrl+C."""
    options: dict[str, Any] = {"threaded": mode == "threaded"}
    if mode == "forking":
        options["processes"] = 2
    server = make_server("127.0.0.1", 0, _app, **options)
    returned = threading.Event()
    hung = threading.Event()

    def interrupt() -> None:
        deadline = time.monotonic() + 5
        while not server.serving and time.monotonic() < deadline:
            time.sleep(0.0002)
        time.sleep(rng.random() * 0.002)
        if to_thread:
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGINT)
        if not returned.wait(2.0):
            hung.set()
            # A lost Ctrl+C: stop the loop another way so the round ends.
            threading.Thread(target=server.shutdown, daemon=True).start()
            returned.wait(5)

    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    returned.set()
    sender.join()
    server.server_close()
    return not hung.is_set()


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    rng = random.Random(1234)
    hangs = sum(not _round(mode, rng, to_thread=i % 2 == 1) for i in range(count))
    print(f"rounds={count} hangs={hangs}", flush=True)


if __name__ == "__main__":
    main()
