"""Sockets and concurrency.

A request's path: bind (the listener) -> loop (owns every connection; arrival reads the head
and body) -> runners (inline or a thread; forking: a child) -> serve (the requests of one
connection) -> handler (environ, app call, response) -> the app. streams keeps event streams
in the loop after their request; settings holds every timeout and limit; servers assembles
the parts into BaseWSGIServer, ThreadedWSGIServer and ForkingWSGIServer.
"""
