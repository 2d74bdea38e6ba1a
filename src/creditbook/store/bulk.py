"""Bulk credit's claims: a row is applied once per file, and a row's content is recognised
when it comes again (a re-saved or corrected file).

A part of the SQL store (``store.bulk``), over its connections: each row is applied with its
claim in one transaction, refusing before any write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .. import errors
from .protocol import CreditOp
from .sql import Cursor

if TYPE_CHECKING:
    from .base import SqlStore

CLAIM = """
INSERT INTO bulk_rows (file, row, at, content, file_name)
VALUES (:file, :row, :at, :content, :file_name)
ON CONFLICT (file, row) DO NOTHING
"""
DONE = "SELECT row FROM bulk_rows WHERE file = :file"
FIND = "SELECT 1 FROM bulk_rows WHERE file = :file AND row = :row"
#: The latest time a row with this content was applied since a moment, from another upload.
_SEEN = """
SELECT content, at, file_name FROM bulk_rows
WHERE content IN ({slots}) AND at >= :since AND file <> :file
ORDER BY at
"""
#: Contents looked up per statement (unused slots repeat the last one): constant text.
SLOTS = 100
SLOT_NAMES = [f"c{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(SLOTS)]
SEEN = _SEEN.format(slots=", ".join(f":{n}" for n in SLOT_NAMES))
SEEN_ONE = _SEEN.format(slots=":content")


class Seen(NamedTuple):
    """When a row with the same content was applied, and from which file."""

    at: str
    file_name: str


class AlreadyApplied(errors.Conflict):
    """A row whose content was applied from another upload within the window."""

    def __init__(self, seen: Seen) -> None:
        super().__init__(f"already applied on {seen.at[:10]} from {seen.file_name or 'a file'}")
        self.seen = seen


class BulkStore:
    """Bulk-credit claims over a SQL store's connections."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def done(self, file: str) -> set[int]:
        """The rows of a file (by its digest) already applied."""
        s = self._store
        with s._read() as cur:
            return {int(r[0]) for r in s._run(cur, DONE, file=file).fetchall()}

    def seen(self, contents: list[str], since: str, file: str) -> dict[str, Seen]:
        """Of these contents, those applied from another upload since a moment: the latest."""
        s = self._store
        found: dict[str, Seen] = {}
        unique = sorted(set(contents))
        with s._read() as cur:
            for start in range(0, len(unique), SLOTS):
                chunk = unique[start : start + SLOTS]
                slots = {n: chunk[min(i, len(chunk) - 1)] for i, n in enumerate(SLOT_NAMES)}
                for content, at, name in s._run(cur, SEEN, since=since, file=file, **slots):
                    found[content] = Seen(at, name)
        return found

    def apply_row(
        self,
        op: CreditOp,
        *,
        file: str,
        row: int,
        content: str,
        file_name: str,
        since: str,
        again: bool,
    ) -> int:
        """Apply one row with its claim, once per file and row; return the new balance.

        Refused with ``BulkRowDone`` when this file's row was applied, and (unless ``again``)
        with ``AlreadyApplied`` when the same content was applied from another upload since
        ``since``: both checked in the row's own transaction, before it writes.
        """
        s = self._store

        def work(cur: Cursor) -> int:
            if s._run(cur, FIND, file=file, row=row).fetchone() is not None:
                raise errors.BulkRowDone()
            if not again:
                hit = s._run(cur, SEEN_ONE, content=content, since=since, file=file).fetchone()
                if hit is not None:
                    raise AlreadyApplied(Seen(hit[1], hit[2]))
            balance = s._apply_credit(cur, op)
            claim = {"file": file, "row": row, "content": content, "file_name": file_name}
            if not s._run(cur, CLAIM, **claim, at=op.at).rowcount:
                raise errors.BulkRowDone()  # a concurrent apply (PostgreSQL): rolled back
            return balance

        return s._transact(work)
