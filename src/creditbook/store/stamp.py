"""The change stamp: a counter that every process on the host reads without a system call.

A SQLite store caches the access-control counters (``meta``) per process. A transaction that
bumps one increments the stamp after its commit: eight bytes of ``<db>-stamp``, mapped shared,
so every process sees the new value at once. A request compares eight bytes of memory; it used
to call ``stat`` on a file (2-3 us, once per request). Like ``-wal`` and ``-shm``, the file
belongs to the database: removed while processes run, those that mapped it would no longer see
each other's changes until they restart.
"""

from __future__ import annotations

import logging
import mmap
import os

log = logging.getLogger("creditbook")

SIZE = 8


class Stamp:
    """The shared counter in ``path``; ``None`` from ``read`` when it cannot be mapped."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # Never shrunk, and growing to the size it has changes nothing: two processes
                # creating it at once cannot zero a bump.
                if os.fstat(fd).st_size < SIZE:
                    os.ftruncate(fd, SIZE)
                self._map = mmap.mmap(fd, SIZE)
            finally:
                os.close(fd)
        return self._map

    def read(self) -> bytes | None:
        """The stamp now; None when it cannot be read (callers then read the counters)."""
        try:
            return self._mapped()[:SIZE]
        except (OSError, ValueError):
            return None

    def bump(self) -> None:
        """Change the stamp (under the writer lock, after the commit).

        The transaction is already committed: a failure here must not turn it into an error,
        so it is logged (processes then see the change at the next bump).
        """
        try:
            stamp = self._mapped()
            stamp[:SIZE] = ((int.from_bytes(stamp[:SIZE], "little") + 1) % 2**64).to_bytes(
                SIZE, "little"
            )
        except (OSError, ValueError) as exc:
            log.error("could not stamp %s: %s", self.path, exc)

    def close(self) -> None:
        """Unmap the file."""
        if self._map is not None:
            self._map.close()
            self._map = None
