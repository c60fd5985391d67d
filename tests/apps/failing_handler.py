"""A threaded server whose request handler fails on every ``/fail`` request, as a
``request_handler=`` subclass whose ``log_request`` raises does, with a tiny thread switch
interval so that threads interleave as much as they can. Prints ``READY PORT``.
"""

from __future__ import annotations

import sys
from typing import Any

from wsgidev.serving import WSGIRequestHandler, make_server


class FailingLog(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.path.startswith("/fail"):
            raise RuntimeError("the handler's log failed")


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    sys.setswitchinterval(1e-5)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=FailingLog)
    print("READY", server.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
