"""Keep PostgreSQL's invalidation counters cached, updated by LISTEN/NOTIFY.

Every change to ``meta`` (access-control data, authentication failures) fires a notification
(migration 0006). A listener thread holds one connection, LISTENs, reads the counters once, then
applies each notification. While it is connected, ``current`` is as fresh as the database's own
commit order allows and requests need no round trip; whenever it is not, ``current`` is None and
callers read the counters from the database as before.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from . import queries as Q

log = logging.getLogger("creditbook")
CHANNEL = "creditbook_versions"
NAMES = ("config_version", "failure_version")


class VersionListener:
    """A daemon thread mirroring ``meta``'s counters."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._values: dict[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="creditbook-listen", daemon=True)
        self._thread.start()

    @property
    def current(self) -> tuple[int, int] | None:
        """The cached (config_version, failure_version), or None when not connected."""
        values = self._values
        return None if values is None else (values[NAMES[0]], values[NAMES[1]])

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        warned = False  # warn once per outage, not once per retry
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Read after LISTEN, so no change can fall between the read and the first
                    # notification.
                    rows = conn.execute(Q.VERSIONS).fetchall()
                    values = {NAMES[0]: int(rows[0][0]), NAMES[1]: int(rows[1][0])}
                    self._values = dict(values)
                    warned = False
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            name, _, value = note.payload.partition("=")
                            if name in values and value.isdigit():
                                values[name] = max(values[name], int(value))
                                self._values = dict(values)
            except psycopg.Error as exc:
                if not self._stop.is_set() and not warned:
                    log.warning("version listener lost its connection, retrying: %s", exc)
                    warned = True
            self._values = None
            self._stop.wait(1.0)
