"""uvicorn's httptools protocol with guards against slow, stalled, greedy and malformed clients.

- A deadline per request: from its first byte (or the connection's start) a client has
  ``request_timeout`` seconds to send the whole request, headers and body. Past it the
  connection is closed; the app then sees a disconnect and never acts on the part it got.
- A cap on open connections per worker (``max_connections``) and per client address
  (``max_connections_per_address``, trusted proxies aside): a connection over either is
  answered 503 in the WHMCS envelope and closed at once, before it can hold a slot.
- A bounded request head: a request line over 8 KiB is answered 414, a request line and
  headers over 16 KiB in all 431 (nginx's defaults), counted as the bytes arrive and before
  they are parsed, so a client streaming an endless header costs a bounded, linear amount.
- Every request that arrived whole gets its own reply, in order, before the connection is
  closed for what follows it: malformed bytes pipelined after a request wait for that
  request's response, and then get their 400; a client that half-closes still gets the
  replies to what it sent.

uvicorn's own ``timeout_keep_alive`` only covers the idle time between requests, and its
``limit_concurrency`` answers only once headers are complete, which a stalled client never sends.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The longest request line, and request line with headers, a client may send (bytes).
MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD = 16 * 1024
#: Seconds a refused connection stays open for reading (and dropping) what its client sends.
LINGER = 1.0


def _reply(status: str, message: str) -> bytes:
    body = b'{"result":"error","message":"%s"}' % message.encode()
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status.encode(), len(body), body)
    )


_BUSY = _reply("503 Service Unavailable", "Too many connections, try again later")
_BUSY_ADDRESS = _reply(
    "503 Service Unavailable", "Too many connections from your address, try again later"
)
_URI_TOO_LONG = _reply("414 URI Too Long", "The request line is too long: the limit is 8 KiB")
_HEAD_TOO_LARGE = _reply(
    "431 Request Header Fields Too Large", "The request headers are too large: the limit is 16 KiB"
)
_BAD_REQUEST = _reply("400 Bad Request", "Invalid HTTP request")


def _app_of(protocol: HttpToolsProtocol) -> Any:
    app: Any = protocol.app
    while not hasattr(app, "request_timeout") and hasattr(app, "app"):
        app = app.app  # a middleware uvicorn wrapped around ours
    return app


class GuardedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a receive deadline, connection caps and a bounded head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = _app_of(self)
        self.request_timeout = float(getattr(app, "request_timeout", 15))
        self.max_connections = int(getattr(app, "max_connections", 1000))
        self.max_per_address = int(getattr(app, "max_connections_per_address", 100))
        self._is_proxy = getattr(app, "trusted_proxy", lambda peer: False)
        self._deadline: asyncio.TimerHandle | None = None
        self._address = ""  # counted against its address's connections while set
        # The head being received: bytes so far, whether its request line ended, and the
        # last bytes seen (a CRLF CRLF may straddle two reads).
        self._in_body = False
        self._head = 0
        self._line_done = False
        self._tail = b""
        #: A reply that ends the connection, sent once the responses before it are.
        self._refusal: bytes | None = None

    # --- connections -------------------------------------------------------------------------

    def _per_address(self) -> dict[str, int]:
        counts: dict[str, int] | None = getattr(self.server_state, "creditbook_addresses", None)
        if counts is None:
            counts = {}
            self.server_state.creditbook_addresses = counts  # type: ignore[attr-defined]
        return counts

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refusal = _BUSY
            self._send_refusal()
            return
        address = self.client[0] if self.client else ""
        if address and not self._is_proxy(address):
            counts = self._per_address()
            if counts.get(address, 0) >= self.max_per_address:
                self._refusal = _BUSY_ADDRESS
                self._send_refusal()
                return
            counts[address] = counts.get(address, 0) + 1
            self._address = address
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._address:
            counts = self._per_address()
            left = counts.get(self._address, 1) - 1
            if left > 0:
                counts[self._address] = left
            else:
                counts.pop(self._address, None)
            self._address = ""
        super().connection_lost(exc)

    # --- receiving ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # the connection ends after the responses it owes: the rest is not read
        if not self._in_body and self._head_too_large(data):
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.logger.info("closing a connection that sent a malformed request")
            self._refuse(_BAD_REQUEST)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _head_too_large(self, data: bytes) -> bool:
        """Count the bytes of the request head arriving in ``data``; refuse one too large."""
        seen = self._tail + data
        end = seen.find(b"\r\n\r\n")
        count = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
        if not self._line_done:
            line_end = seen.find(b"\r\n")
            line = self._head + (len(data) if line_end < 0 else line_end - len(self._tail))
            if line > MAX_REQUEST_LINE:
                self._refuse(_URI_TOO_LONG)
                return True
            self._line_done = line_end >= 0
        self._head += count
        if self._head > MAX_HEAD:
            self._refuse(_HEAD_TOO_LARGE)
            return True
        self._tail = seen[-3:]
        return False

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio's protocol returns one
        """The client half-closed: answer what arrived whole, then close (never drop a reply
        to a request that may have been acted on)."""
        self._refuse(b"")
        return True

    def on_message_begin(self) -> None:
        # A keep-alive connection starts its next request's clock at that request's first byte.
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._in_body = True
        self._head, self._line_done, self._tail = 0, False, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    # --- ending a connection after what it is owed --------------------------------------------

    def _refuse(self, reply: bytes) -> None:
        """End the connection with ``reply``, after the responses owed to the requests before.

        A request whose headers arrived but whose body did not is not one: it is dropped (the
        app sees a disconnect, or it is taken from the queue before it starts).
        """
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            queued = [entry for entry in self.pipeline if entry[0] is cycle]
            if queued:
                self.pipeline.remove(queued[0])
            else:
                cycle.disconnected = True
                cycle.message_event.set()
        self._refusal = reply
        self.flow.pause_reading()
        if not self._owed():
            self._send_refusal()

    def _owed(self) -> bool:
        """Whether a request that arrived whole still waits for its response."""
        cycle = self.cycle
        running = cycle is not None and not (cycle.response_complete or cycle.disconnected)
        return running or bool(self.pipeline)

    def _send_refusal(self) -> None:
        """Send the refusal and close gently: the write side at once, the connection after
        a moment in which what the client still sends is read and dropped (closing with
        unread bytes would reset the connection, and the client could lose the reply)."""
        transport = self.transport
        if self._refusal is None or transport.is_closing():
            return
        transport.write(self._refusal)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._disarm()
        self.flow.resume_reading()
        self.loop.call_later(LINGER, transport.close)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal is not None and not self._owed():
            self._send_refusal()

    # --- the deadline ------------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.info("closed a connection that did not send its request in time")
            self.transport.close()
