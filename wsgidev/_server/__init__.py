"""Sockets and concurrency: bind, poll, settings, the loop, runners and the handler.

Request path: bind -> loop (connection, arrival) -> runners -> handler -> the app."""
