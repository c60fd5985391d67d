"""Bytes <-> values, no sockets: request heads, chunked framing, bodies, responses."""
