"""Write-behind for a file being written in bulk (a backup), so that its writes reach the disk
as they are made rather than in one burst at its final fsync.

The kernel keeps a file's written pages in memory until a threshold (here a tenth of RAM) or
an fsync; a backup of a few gigabytes is then written all at once, and every commit of the
service (an fsync on the same disk) waits behind it. A helper thread asks the kernel to start
writing each new stretch of the file once it is ``CHUNK`` bytes long.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: How much of the file may be written but not yet sent to the disk.
CHUNK = 4 << 20
#: How often the helper looks at the file's size (seconds).
POLL = 0.005


@contextmanager
def write_behind(path: str) -> Iterator[None]:
    """While the block runs, have what is written to ``path`` (which exists) sent to disk
    every ``CHUNK`` bytes."""
    if not hasattr(os, "posix_fadvise"):  # not Linux: the kernel's own write-back then
        yield
        return
    done = threading.Event()
    helper = threading.Thread(target=_follow, args=(path, done), name="creditbook-writeback")
    helper.daemon = True
    helper.start()
    try:
        yield
    finally:
        done.set()
        helper.join()


def _follow(path: str, done: threading.Event) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        sent = 0
        while not done.wait(POLL):
            size = os.fstat(fd).st_size
            if size - sent >= CHUNK:
                # DONTNEED starts the write-back of the stretch's dirty pages without waiting.
                os.posix_fadvise(fd, sent, size - sent, os.POSIX_FADV_DONTNEED)
                sent = size
    finally:
        os.close(fd)
