"""Online backup and verified restore.

A backup is always a Creditbook SQLite file: from SQLite, SQLite's online backup API (one
consistent snapshot while the service writes on); from PostgreSQL, every table read in one
``REPEATABLE READ`` snapshot and written into a new SQLite file. Either way the copy is verified
(balances, running balances, hash chains, row counts) before success is reported, and
``restore`` copies a backup into an empty store of either kind and verifies that too.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TextIO

from . import errors
from .audit import Report, verify
from .store import Store, open_store
from .store.base import SqlStore
from .store.sqlite import SQLiteStore
from .store.transfer import Progress, client_totals, copy_store, row_counts
from .store.writeback import write_behind


@dataclass(slots=True)
class Copied:
    """What a backup or restore wrote, and what verifying it found."""

    path: str
    rows: dict[str, int]
    report: Report

    @property
    def ok(self) -> bool:
        """True when the copy verified."""
        return self.report.ok


def _bar(progress: TextIO | None, label: str, done: int, total: int) -> None:
    if progress is None:
        return
    share = min(done / total, 1.0) if total else 1.0
    progress.write(f"\r{label} [{'#' * int(share * 40):<40}] {share:6.1%}")
    progress.flush()


def _rows_bar(progress: TextIO | None, label: str) -> Progress:
    def show(table: str, rows: int) -> None:
        if progress is not None:
            progress.write(f"\r{label}: {rows:,} rows ({table})".ljust(60))
            progress.flush()

    return show


def backup(store: Store, dest: str, progress: TextIO | None = None, jobs: int = 1) -> Copied:
    """Write a consistent copy of a running store into a new SQLite file, then verify it
    (in ``jobs`` processes)."""
    dest = os.path.abspath(os.path.expanduser(dest.removeprefix("sqlite:///")))
    if os.path.exists(dest):
        raise errors.ValidationError(f"{dest} already exists: back up into a new file")
    try:
        if isinstance(store, SQLiteStore):
            store.backup_to(dest, lambda done, total: _bar(progress, "backup", done, total))
        elif isinstance(store, SqlStore):
            target = SQLiteStore(dest)
            try:
                target.migrate()
                # Paced: the service this store serves keeps at least half of the CPU it shares.
                with write_behind(dest):
                    copy_store(store, target, _rows_bar(progress, "backup"), pace=1.0)
            finally:
                target.close()
    except BaseException:
        _remove(dest)  # a failed backup leaves nothing behind to be mistaken for one
        raise
    if progress is not None:
        progress.write("\n")
    return _verified(dest, progress, jobs)


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", "-writer.lock", "-stamp"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def restore(
    source_path: str, target_url: str, progress: TextIO | None = None, jobs: int = 1
) -> Copied:
    """Copy a backup file into an empty store (SQLite or PostgreSQL), then verify it."""
    path = os.path.abspath(os.path.expanduser(source_path.removeprefix("sqlite:///")))
    if not os.path.isfile(path):
        raise errors.NotFound(f"No backup file at {path}")
    return copy(path, target_url, progress, label="restore", jobs=jobs)


def copy(
    source_url: str,
    target_url: str,
    progress: TextIO | None = None,
    label: str = "copy",
    jobs: int = 1,
) -> Copied:
    """Move a whole Creditbook from one store into an empty one (SQLite to PostgreSQL, say),
    from one snapshot of the source, then verify: the target's balances, chains and running
    balances, its row counts against the source's, and every client's balance and entry count
    against the source's."""
    source = open_store(source_url)
    try:
        source.migrate()
        assert isinstance(source, SqlStore)
        target = open_store(target_url)
        try:
            target.migrate()
            assert isinstance(target, SqlStore)
            copy_store(source, target, _rows_bar(progress, label))
            if progress is not None:
                progress.write("\n")
            report = verify(target, progress, jobs)
            rows = row_counts(target)
            if rows != row_counts(source):
                report.problems.append("the target's tables do not hold the source's rows")
            for a, b in zip(client_totals(source), client_totals(target), strict=False):
                if a != b:
                    report.problems.append(f"client {a[0]}: {a[1:]} in the source, {b[1:]} copied")
                    break
        finally:
            target.close()
    finally:
        source.close()
    return Copied(target_url, rows, report)


def _verified(path: str, progress: TextIO | None, jobs: int) -> Copied:
    store = open_store(path)
    try:
        store.migrate()
        report = verify(store, progress, jobs)
        assert isinstance(store, SqlStore)
        return Copied(path, row_counts(store), report)
    finally:
        store.close()
