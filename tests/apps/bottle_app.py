"""A Bottle application; ``catchall = False`` lets errors reach wsgidev's debugger."""

from __future__ import annotations

import bottle

app = bottle.Bottle()
app.catchall = False


@app.get("/hello/<name>")
def hello(name: str) -> str:
    return f"Hello, {bottle.html_escape(name)}!"


@app.get("/api/status")
def status() -> dict[str, object]:
    return {"ok": True, "framework": "bottle"}


@app.post("/api/sum")
def total() -> dict[str, object]:
    numbers = bottle.request.json["numbers"]
    return {"sum": sum(numbers)}


def parse_quantity(text: str) -> int:
    return int(text)


@app.get("/cart/<quantity>")
def cart(quantity: str) -> str:
    return f"{parse_quantity(quantity)} items"
