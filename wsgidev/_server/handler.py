"""One request on a connection: environ in, app called, response framed and written, one log line.

The head was parsed by _http.head and the connection is owned by _server.loop; this module
decides the response framing (Content-Length, chunked or close-delimited) and whether the
connection is reused."""

from __future__ import annotations

import logging
import os
import platform
import time
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from .._events import EventStream
from .._http.body import EmptyBody, RequestBody
from .._http.head import ClientDisconnected, HTTPError, RequestHead
from .._http.io import send_all, send_file
from .._http.log import colourise, format_duration, log_timestamp, redact_target
from .._http.response import (
    NO_BODY_STATUSES,
    ChunkedDecoder,
    FileWrapper,
    encode_head,
    error_page,
    response_head,
)
from .._http.spool import SpooledBody
from .._log import logger
from .._types import WSGIEnvironment
from .._version import __version__
from .streams import StreamInfo

if TYPE_CHECKING:
    from .connection import Connection
    from .servers import BaseWSGIServer

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
# How much unread request body is read and dropped to keep a connection; past it we close.
DRAIN_LIMIT = 256 * 1024
INTERNAL_ERROR_DETAIL = (
    "The application raised an exception before it started its response. "
    "The traceback is in the server's log."
)


class WSGIRequestHandler:
    """Serves one request: subclass it and pass ``request_handler=`` to change a step.

    Overridable like Werkzeug's: ``make_environ``, ``run_wsgi``, ``log_request``, ``log_error``,
    ``log_message``, ``log``, ``address_string``, ``port_integer``, ``version_string``,
    ``connection_dropped``, and the ``server_version``/``sys_version`` attributes.
    """

    server_version = f"wsgidev/{__version__}"
    sys_version = f"Python/{platform.python_version()}"
    protocol_version = "HTTP/1.1"

    def __init__(self, server: BaseWSGIServer, connection: Connection, head: RequestHead) -> None:
        self.server = server
        self.connection = connection
        self.client_address = connection.address
        self.head = head
        self.command = head.method
        self.path = head.target
        self.request_version = head.version
        self.headers = head.headers
        self.environ: WSGIEnvironment | None = None
        self.close_connection = not head.keep_alive
        self.body: RequestBody | SpooledBody | EmptyBody
        if connection.received is not None:  # the loop received the whole body already
            self.body, connection.received = connection.received, None
        elif not (head.content_length or head.chunked):
            self.body = EmptyBody()
        else:
            self.body = RequestBody(
                connection.sock,
                connection.buffer,
                head.content_length,
                head.chunked,
                head.expect_continue,
                server.settings.body_timeout,
            )
        self.status_code = 0
        self.bytes_sent = 0
        self._started = time.perf_counter()
        self._status: str | None = None
        self._headers: list[tuple[str, str]] = []
        self._head_sent = False
        self._no_body = head.method == "HEAD"
        self._chunked = False
        self._length: int | None = None
        self._implicit_length: int | None = None
        self._own_page = False  # the body is an error page the server wrote, not the app's
        # Set when the app chunk-encodes its body itself: decoded here, then framed again.
        self._app_chunks: ChunkedDecoder | None = None
        self._client_gone = False
        # Set when the app answered an event stream the loop keeps (see _events).
        self.stream_info: StreamInfo | None = None

    @property
    def client_gone(self) -> bool:
        """True once the client went away mid-response (nothing more can reach it)."""
        return self._client_gone

    # -- the request ---------------------------------------------------------------------------

    def handle(self) -> bool:
        """Serve the request; True when the connection may carry another one."""
        try:
            self.environ = self.make_environ()
            self.run_wsgi()
        except ClientDisconnected as exc:
            self.close_connection = True
            self.connection_dropped(exc, self.environ)
            return False
        finally:
            if isinstance(self.body, SpooledBody):
                self.body.release()
        if self.close_connection:
            return False
        # Leftover body bytes would be read as the next request: drop them, or close.
        return self.body.complete or self.body.drain(
            DRAIN_LIMIT, self.server.settings.drain_timeout
        )

    def make_environ(self) -> WSGIEnvironment:
        """Build the PEP 3333 environ for this request."""
        head = self.head
        environ = self.server.base_environ.copy()
        environ.update(head.environ)
        environ["REQUEST_METHOD"] = head.method
        environ["PATH_INFO"] = head.path
        environ["QUERY_STRING"] = head.query
        environ["REQUEST_URI"] = environ["RAW_URI"] = head.target
        environ["SERVER_PROTOCOL"] = head.version
        environ["REMOTE_ADDR"] = self.address_string()
        environ["REMOTE_PORT"] = str(self.port_integer())
        environ["wsgi.input"] = self.body
        environ["wsgidev.socket"] = self.connection.sock
        return environ

    def run_wsgi(self) -> None:
        """Call the app and write what it answers; errors become a 500 or a closed connection."""
        environ = self.environ
        assert environ is not None
        app_iter: Iterable[bytes] | None = None
        try:
            app_iter = self.server.app(environ, self.start_response)
            if isinstance(app_iter, EventStream):
                app_iter = self._hand_stream_over(app_iter)
            if app_iter is not None:
                self._send_iterable(app_iter)
        except Exception as exc:  # the layer boundary: any app error becomes a response here
            self._on_app_error(exc)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # close() is app code too; a failure must not hide the response
                    self.log_error(
                        "Error closing the response iterable:\n%s", traceback.format_exc()
                    )
        if not self._client_gone and environ.get("wsgidev.log_request", True):
            self.log_request(self.status_code or "-", self.bytes_sent)

    def _hand_stream_over(self, stream: EventStream) -> Iterable[bytes] | None:
        """Send an event stream's head and first events, and leave the rest to the I/O loop.

        Returns what to send the usual way instead: a HEAD request or a refusal has no stream,
        and a forked child over TLS cannot give its connection back (its client reconnects).
        """
        if self.server.draining:
            # A stopping (or restarting) server: an empty body, so the client reconnects to
            # the server that answers next instead of hearing this one's hello.
            stream.close()
            self.close_connection = True
            return []
        if (
            self._no_body
            or self.status_code != 200
            or (self.server.in_child and self.connection.tls)
        ):
            stream.close()
            return stream.once()
        self.write(stream.first)
        if not self._head_sent:
            return [b""]
        self.stream_info = StreamInfo(stream.channel.id, self._chunked, stream.heartbeat)
        self.close_connection = True  # no further request on this connection
        stream.close()  # the loop subscribes for the connection; this iterable is done
        return None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Any:
        """PEP 3333 ``start_response``; returns the legacy ``write`` callable."""
        if exc_info is not None:
            try:
                if self._head_sent and exc_info[1] is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        if not isinstance(status, str) or len(status) < 3 or not status[:3].isdigit():
            raise ValueError(f"status must be a str like '200 OK', got {status!r}")
        if not isinstance(headers, list):
            raise TypeError(
                f"headers must be a list of (name, value) tuples, got {type(headers).__name__}"
            )
        self._status = status
        self._headers = headers
        self.status_code = int(status[:3])
        self._app_chunks = None
        if self.command != "HEAD" and self.status_code >= 200:
            for name, value in headers:
                # len() first: this runs for every header of every response.
                if (
                    isinstance(name, str)
                    and len(name) == 17
                    and name.lower() == "transfer-encoding"
                    and str(value).strip().lower() == "chunked"
                ):
                    self._app_chunks = ChunkedDecoder()
        return self.write

    def write(self, data: bytes) -> None:
        """Send one block of the body (the head goes out with the first non-empty block)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"the app must yield bytes, got {type(data).__name__}")
        if self._app_chunks is not None:
            data = self._app_chunks.feed(data)
        if not self._head_sent:
            if data:
                self._send_head(data, final=False)
            return
        if self._no_body or not data:
            return
        length = len(data)
        if self._length is not None:
            room = self._length - self.bytes_sent
            if length > room:
                self._overrun()
                data, length = data[:room], room
            self._send(data, 0, length)
        elif self._chunked:
            prefix = b"%x\r\n" % length
            self._send(b"".join((prefix, data, b"\r\n")), len(prefix), length)
        else:
            self._send(data, 0, length)
        self.bytes_sent += length

    # -- response writing ----------------------------------------------------------------------

    def _send_iterable(self, app_iter: Iterable[bytes]) -> None:
        if self._app_chunks is not None:
            pass  # sizes of chunk-encoded blocks say nothing about the decoded length
        elif isinstance(app_iter, FileWrapper) and self._send_file(app_iter):
            return
        elif type(app_iter) in (list, tuple) and not self._head_sent:
            blocks: Any = app_iter
            try:
                total = sum(map(len, blocks))
            except TypeError:
                total = -1
            if total >= 0:
                # The whole body is known: send a Content-Length instead of chunks, and send small
                # bodies in one piece with the head.
                self._implicit_length = total
                if len(blocks) > 1 and total <= 64 * 1024:
                    app_iter = [b"".join(blocks)]
        write = self.write
        for data in app_iter:
            write(data)
        self._finish()

    def _finish(self) -> None:
        if self._app_chunks is not None and not self._app_chunks.done:
            if not self._head_sent:
                raise ValueError(
                    "the app set Transfer-Encoding: chunked but its body ended without its last "
                    "chunk"
                )
            self.close_connection = True  # no terminating chunk: the client sees a truncation
            self.log_error(
                "The app's own chunked body ended without its last chunk; closing the connection"
            )
            return
        if not self._head_sent:
            self._send_head(b"", final=True)
        elif self._chunked and not self._no_body:
            self._send(b"0\r\n\r\n")
        elif self._length is not None and self.bytes_sent < self._length and not self._no_body:
            self.close_connection = True
            self.log_error(
                "The app sent %d of the %d bytes its Content-Length announced; closing the connection",
                self.bytes_sent,
                self._length,
            )

    def _send_file(self, wrapper: FileWrapper) -> bool:
        if self.connection.sock is None or self._head_sent:
            return False
        fd = wrapper.regular_fileno()
        if fd is None:
            return False
        try:
            offset = wrapper.filelike.tell()
            size = os.fstat(fd).st_size - offset
        except (OSError, ValueError):
            return False
        self._implicit_length = max(size, 0)
        self._send_head(b"", final=False, file_body=True)
        count = self._length if self._length is not None else self._implicit_length
        if self._no_body or count <= 0:
            return True
        try:
            sent = send_file(
                self.connection.sock,
                wrapper.filelike,
                offset,
                count,
                self.server.settings.send_timeout,
            )
        except ClientDisconnected as exc:
            self.bytes_sent = exc.sent  # what the client got before it went away, for the log
            self._client_gone = True
            raise
        self.bytes_sent = sent
        if sent < count:
            self.close_connection = True
            self.log_error(
                "The file shrank while it was sent (%d of %d bytes); closing", sent, count
            )
        return True

    def _send_head(
        self, first: bytes | bytearray | memoryview, final: bool, file_body: bool = False
    ) -> None:
        status = self._status
        if status is None:
            raise AssertionError("the application did not call start_response()")
        code = self.status_code
        if code < 200 or code in NO_BODY_STATUSES:
            self._no_body = True
        self._chunked = False  # a failed earlier attempt (then a 500 page) must not leak framing
        parts, length, app_close = response_head(status, code, self._headers, self.version_string())
        if app_close:
            self.close_connection = True
        body = self.body
        body.response_started = True
        if not body.complete and (body.awaiting_continue or not self._body_drainable()):
            self.close_connection = True
        if self.server.draining:
            self.close_connection = True
        self._frame(parts, length, first, final, file_body)
        if self.close_connection:
            parts.append("Connection: close\r\n")
        elif self.request_version == "HTTP/1.0":
            parts.append("Connection: keep-alive\r\n")
        parts.append("\r\n")
        head = encode_head(parts)
        self._head_sent = True
        if self._no_body or not first:
            self._send(head)
            return
        size = len(first)
        length = self._length
        if length is not None and size > length:
            self._overrun()
            first, size = first[:length], length
        if self._chunked:
            prefix = b"%x\r\n" % size
            self._send(b"".join((head, prefix, first, b"\r\n")), len(head) + len(prefix), size)
        else:
            self._send(head + first, len(head), size)
        self.bytes_sent = size

    def _frame(
        self, parts: list[str], length: int | None, first: Any, final: bool, file_body: bool
    ) -> None:
        """Choose Content-Length, chunked or close-delimited, and add the header it needs."""
        if length is None and not self._no_body:
            if self._implicit_length is not None:
                length = self._implicit_length
            elif final:
                length = len(first)
            if length is not None:
                parts += ("Content-Length: ", str(length), "\r\n")
        elif length is None and (file_body or self._own_page) and self.command == "HEAD":
            # A file's or our own page's size is known without sending it: HEAD gets the
            # length GET would.
            parts += ("Content-Length: ", str(self._implicit_length), "\r\n")
        self._length = length
        if length is None and not self._no_body:
            if self.request_version == "HTTP/1.1":
                self._chunked = True
                parts.append("Transfer-Encoding: chunked\r\n")
            else:
                self.close_connection = True  # HTTP/1.0: the end of the body is the close

    def closing_mode(self) -> Literal["close", "linger"]:
        """How to end the connection after a request that did not keep it.

        ``close`` when the client said it sends nothing more and the body was read; otherwise
        ``linger``: stop writing, then drop what the client still sends for a moment, so the
        client reads our response instead of a reset.
        """
        if not self.head.keep_alive and self.body.complete and not self.connection.buffer:
            return "close"
        return "linger"

    def _body_drainable(self) -> bool:
        head = self.head
        if head.chunked:
            return True
        left = (head.content_length or 0) - self.body.bytes_read
        return left <= DRAIN_LIMIT

    def _overrun(self) -> None:
        self.close_connection = True
        self.log_error("The app sent more bytes than its Content-Length; the excess was dropped")

    def _send(
        self, data: bytes | bytearray | memoryview, body_at: int = 0, body_size: int = 0
    ) -> None:
        """Send ``data``, of which ``body_size`` bytes from ``body_at`` are response body."""
        try:
            send_all(self.connection.sock, data, self.server.settings.send_timeout)
        except ClientDisconnected as exc:
            self._client_gone = True
            # The access log counts the body bytes that went out before the client left.
            self.bytes_sent += min(max(exc.sent - body_at, 0), body_size)
            raise

    # -- errors --------------------------------------------------------------------------------

    def _on_app_error(self, exc: Exception) -> None:
        if self._client_gone or isinstance(exc, ClientDisconnected):
            self.close_connection = True
            if isinstance(exc, ClientDisconnected):
                raise exc
            raise ClientDisconnected(str(exc)) from exc
        if isinstance(exc, HTTPError) and not self._head_sent:
            # A framing error in the request body, met while the app read it.
            self.close_connection = True
            self._send_error(exc.status, exc.reason, exc.detail)
            return
        if self.server.passthrough_errors:
            self.close_connection = True
            raise exc
        if self._head_sent:
            # Never a second status line: closing without the last chunk tells the client the
            # response is truncated.
            self.close_connection = True
            self.log_error(
                "Error on request %s after the response started; closing the connection:\n%s",
                self._describe(),
                traceback.format_exc(),
            )
            return
        self.log_error("Error on request %s:\n%s", self._describe(), traceback.format_exc())
        self._send_error(500, "Internal Server Error", INTERNAL_ERROR_DETAIL)

    def _send_error(self, status: int, reason: str, detail: str) -> None:
        body = error_page(status, reason, detail)
        self._status = f"{status} {reason}"
        self.status_code = status
        self._headers = [("Content-Type", "text/html; charset=utf-8")]
        self._implicit_length = len(body)
        self._own_page = True
        self._app_chunks = None
        self._no_body = self.head.method == "HEAD"
        self._send_head(body, final=True)

    def _describe(self) -> str:
        return f'"{self.command} {redact_target(self.path)} {self.request_version}"'

    def connection_dropped(
        self, error: BaseException, environ: WSGIEnvironment | None = None
    ) -> None:
        """The client went away mid-request: one log line, no traceback."""
        self.log(
            "info",
            "%s - - [%s] %s %s %s %s - client disconnected (%s)",
            self.address_string(),
            log_timestamp(),
            self._describe(),
            self.status_code or "-",
            self.bytes_sent,
            format_duration(time.perf_counter() - self._started),
            error,
        )

    # -- logging -------------------------------------------------------------------------------

    def address_string(self) -> str:
        return self.connection.remote_addr

    def port_integer(self) -> int:
        return self.connection.remote_port

    def version_string(self) -> str:
        return f"{self.server_version} {self.sys_version}"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request: client, time, request line, status, body bytes, duration."""
        if not logger.isEnabledFor(logging.INFO):
            return
        message = (
            f"{self.address_string()} - - [{log_timestamp()}] {self._describe()} {code} {size} "
            f"{format_duration(time.perf_counter() - self._started)}"
        )
        if self.server.log_colour and isinstance(code, int):
            message = colourise(message, code)
        # makeRecord + handle skips findCaller's stack walk: this line is written per request.
        logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, message, (), None))

    def log_error(self, format: str, *args: object) -> None:
        self.log("error", format, *args)

    def log_message(self, format: str, *args: object) -> None:
        self.log("info", format, *args)

    def log(
        self, type: Literal["info", "warning", "error"] | str, message: str, *args: object
    ) -> None:
        getattr(logger, type, logger.info)(message, *args)
