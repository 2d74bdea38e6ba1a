"""uvicorn's httptools protocol with two guards against slow or stalled clients.

- A deadline per request: from its first byte (or the connection's start) a client has
  ``request_timeout`` seconds to send the whole request, headers and body. Past it the
  connection is closed; the app then sees a disconnect and never acts on the part it got.
- A cap on open connections per worker (``max_connections``): a connection over it is answered
  503 in the WHMCS envelope and closed at once, before it can hold a slot.

uvicorn's own ``timeout_keep_alive`` only covers the idle time between requests, and its
``limit_concurrency`` answers only once headers are complete, which a stalled client never sends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BUSY_BODY = b'{"result":"error","message":"Too many connections, try again later"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class GuardedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a whole-request receive deadline and a connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app: Any = self.app
        while not hasattr(app, "request_timeout") and hasattr(app, "app"):
            app = app.app  # a middleware uvicorn wrapped around ours
        self.request_timeout = float(getattr(app, "request_timeout", 15))
        self.max_connections = int(getattr(app, "max_connections", 1000))
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY)
            transport.close()
            return
        self._arm()

    def on_message_begin(self) -> None:
        # A keep-alive connection starts its next request's clock at that request's first byte.
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

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
