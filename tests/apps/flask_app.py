"""A Flask application with the routes a real project has: pages, JSON, uploads, a stream, an error.

``PROPAGATE_EXCEPTIONS`` lets an unhandled error leave Flask, so the debugger middleware
around it renders the traceback page instead of Flask's bare 500.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)
app.config["PROPAGATE_EXCEPTIONS"] = True


@app.get("/")
def index() -> str:
    return "<h1>Hello from Flask</h1>"


@app.get("/items/<int:item_id>")
def item(item_id: int) -> Response:
    return jsonify(id=item_id, name=f"item {item_id}", tags=request.args.getlist("tag"))


@app.post("/echo")
def echo() -> Response:
    return jsonify(received=request.get_json(), content_type=request.content_type)


@app.post("/upload")
def upload() -> Response:
    files = {
        field: {
            "filename": storage.filename,
            "size": len(data := storage.read()),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        for field, storage in request.files.items()
    }
    return jsonify(files=files, form=request.form.to_dict())


@app.get("/stream")
def stream() -> Response:
    count = request.args.get("count", 5, type=int)
    pause = request.args.get("pause", 0.0, type=float)

    def lines() -> Iterator[str]:
        for number in range(count):
            yield f"line {number} of {count}\n"
            time.sleep(pause)

    return Response(stream_with_context(lines()), mimetype="text/plain")


@app.get("/ticker")
def ticker() -> Response:
    """Ticks for up to ten seconds; writes ``closed`` to the file ``marker`` names when it stops."""
    marker = Path(request.args["marker"])

    def ticks() -> Iterator[str]:
        try:
            for number in range(200):
                yield f"tick {number}\n"
                time.sleep(0.05)
        finally:
            marker.write_text("closed")

    return Response(stream_with_context(ticks()), mimetype="text/plain")


def charge_order(order_id: int) -> None:
    raise ValueError(f"order {order_id} has no price <b>set</b>")


@app.get("/orders/<int:order_id>/charge")
def charge(order_id: int) -> str:
    charge_order(order_id)
    return "charged"


@app.get("/client")
def client() -> Response:
    """Which client port this request came from: equal ports mean one kept-alive connection."""
    return jsonify(
        port=request.environ.get("REMOTE_PORT"), protocol=request.environ.get("SERVER_PROTOCOL")
    )
