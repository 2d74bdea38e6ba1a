"""The access log: one line per request, cheap enough to stay on by default.

Going through ``logging`` cost about a tenth of an AddCredit's CPU (a LogRecord, a lock, a
formatter and a write per request). Here a line is a format string, the date and time are
formatted once per second, and the lines of one event-loop iteration reach the log's stream in one
write. Lines look like every other log line (``serve.LOG_FORMAT``); with no stream handler set up
(an embedding application's own logging), each line goes through ``logging`` as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TextIO


class AccessLog:
    """Buffered request lines for the ``creditbook.access`` logger."""

    def __init__(self, logger: logging.Logger | None = None, *, json_lines: bool = False) -> None:
        self.logger = logger or logging.getLogger("creditbook.access")
        self.json_lines = json_lines
        self._lines: list[str] = []
        self._second = -1
        self._prefix = ""

    def request(
        self,
        client: str,
        method: str,
        path: str,
        status: str,
        what: str,
        seconds: float = 0.0,
        request_id: str = "",
        client_id: str = "",
    ) -> None:
        """Log one request (never its query string or body)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        stream = _stream(self.logger)
        message = f'{client} "{method} {path}" {status} {what}'
        if stream is None:
            extra = {"request_id": request_id, "action": what, "status": status}
            self.logger.info("%s", message, extra=extra)
            return
        now = time.time()
        if self.json_lines:
            record = {
                "time": iso_millis(now),
                "level": "INFO",
                "logger": self.logger.name,
                "message": message,
                "request_id": request_id,
                "client": client,
                "method": method,
                "path": path,
                "action": what,
                "client_id": int(client_id) if client_id else None,
                "status": int(status) if status.isdigit() else None,
                "duration_ms": round(seconds * 1000, 3),
            }
            self._lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            second = int(now)
            if second != self._second:
                self._second = second
                self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            millis = int((now - second) * 1000)
            line = f"{self._prefix},{millis:03d} INFO {self.logger.name}: {message}\n"
            self._lines.append(line)
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()
        elif len(self._lines) >= 1024:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines."""
        lines, self._lines = self._lines, []
        stream = _stream(self.logger)
        if lines and stream is not None:
            stream.write("".join(lines))
            stream.flush()


def _stream(logger: logging.Logger) -> TextIO | None:
    """The stream of the first plain stream handler on the logger or its parents."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if type(handler) is logging.StreamHandler:
                return handler.stream  # type: ignore[no-any-return]
        current = current.parent if current.propagate else None
    return None


def iso_millis(when: float) -> str:
    """UTC time with milliseconds, as in the JSON log format."""
    millis = int((when - int(when)) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{millis:03d}Z"
