"""What the web console needs from a store: sessions, reversals and paged views.

Typed against by the console's use cases (``creditbook/staff.py``), as the dispatcher types
against ``WebhookStore``. Constant statements only (``console_sql.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import errors
from ..model import Activity, Client, CreditEntry
from . import console_sql as C
from .protocol import CreditOp
from .reads import SqlReads, _activity, _client, _credit, search_params
from .sql import Cursor

#: Dates outside any real one, for a history filter that is not given.
FIRST_DAY, LAST_DAY = "0000-00-00", "9999-99-99"


class HistoryEntry(NamedTuple):
    """A credit entry as the console shows it: who made it, whether it was reversed (and by
    which entry: 0 when not known), and the entry it reverses (0: none)."""

    entry: CreditEntry
    seq: int
    actor: str
    reversed: bool
    reversed_by: int = 0
    reverses: int = 0


class Recent(NamedTuple):
    """A balance change across all clients (the overview's list)."""

    entry_id: int
    client_id: int
    date: str
    description: str
    amount_cents: int
    balance_cents: int
    created_at: str
    actor: str
    client_name: str
    currency: str


class Total(NamedTuple):
    """Credit owed in one currency: the sum of balances, clients holding credit, all clients."""

    currency: str
    balance_cents: int
    holders: int
    clients: int


def _history(row: tuple[Any, ...]) -> HistoryEntry:
    return HistoryEntry(
        _credit(row), int(row[14]), row[15], bool(row[16]), int(row[17]), int(row[18])
    )


def console_store(store: object) -> ConsoleStore:
    """The store, typed as one with the console's support (every SQL store has it)."""
    if not isinstance(store, ConsoleStore):
        raise TypeError("the store has no console support")
    return store


class ConsoleStore(SqlReads):
    """The console's sessions, writes and reads."""

    # --- sessions --------------------------------------------------------------------------

    def create_session(
        self, id_hash: str, admin_id: int, now: float, ip: str, stage: str = ""
    ) -> None:
        """Record a new session (known by the hash of its id); ``stage``: "" for a whole one,
        "code" or "enrol" while it waits for a second factor."""
        params = {"id_hash": id_hash, "admin_id": admin_id, "now": now, "ip": ip, "stage": stage}
        self._transact(lambda cur: self._run(cur, C.SESSION_INSERT, **params))

    def get_session(self, id_hash: str) -> tuple[int, float, float, str, str] | None:
        """Return a session's admin id, creation time, last-seen time, waiting message and
        stage."""
        with self._read() as cur:
            row = self._run(cur, C.SESSION_GET, id_hash=id_hash).fetchone()
        if row is None:
            return None
        return int(row[0]), float(row[1]), float(row[2]), str(row[3]), str(row[4])

    def set_challenge(self, id_hash: str, challenge: str) -> None:
        """Keep a WebAuthn ceremony's challenge with the session (one at a time)."""
        self._transact(
            lambda cur: self._run(
                cur, C.SESSION_CHALLENGE_SET, id_hash=id_hash, challenge=challenge
            )
        )

    def take_challenge(self, id_hash: str) -> str:
        """The session's challenge, used once ("" when none, or already taken)."""

        def work(cur: Cursor) -> str:
            row = self._run(cur, C.SESSION_CHALLENGE_GET, id_hash=id_hash).fetchone()
            if row is None or not row[0]:
                return ""
            taken = self._run(cur, C.SESSION_CHALLENGE_TAKE, id_hash=id_hash, challenge=row[0])
            return str(row[0]) if taken.rowcount else ""

        challenge: str = self._transact(work)
        return challenge

    def set_session_stage(self, id_hash: str, stage: str) -> None:
        """Move a session on (to "" once the second factor is given)."""
        self._transact(lambda cur: self._run(cur, C.SESSION_STAGE, id_hash=id_hash, stage=stage))

    def touch_session(self, id_hash: str, now: float) -> None:
        """Record that a session was used now (its waiting message is shown: it goes)."""
        self._transact(lambda cur: self._run(cur, C.SESSION_TOUCH, id_hash=id_hash, now=now))

    def flash_session(self, id_hash: str, message: str) -> None:
        """Leave a message for a session's next page."""
        self._transact(lambda cur: self._run(cur, C.SESSION_FLASH, id_hash=id_hash, flash=message))

    def end_session(self, id_hash: str) -> None:
        """Delete a session."""
        self._transact(lambda cur: self._run(cur, C.SESSION_DELETE, id_hash=id_hash))

    def forget_sessions(self, idle_before: float, born_before: float) -> None:
        """Delete sessions idle since, or created before, the given times."""
        self._transact(
            lambda cur: self._run(
                cur, C.SESSION_FORGET, idle_before=idle_before, born_before=born_before
            )
        )

    # --- writes ----------------------------------------------------------------------------

    def reverse_entry(self, entry_id: int, op: CreditOp) -> int:
        """Apply a reversal of an entry (once per entry, ever); return the new balance.

        The claim is looked up first, then the credit applied (it refuses before writing), then
        the claim written with the reversal's own number (so the two entries link). Only a
        concurrent claim on PostgreSQL can make the last step fail; such a write is a
        transaction of its own, so raising there rolls the credit back with it.
        """

        def work(cur: Cursor) -> int:
            if self._run(cur, C.REVERSAL_FIND, entry_id=entry_id).fetchone() is not None:
                raise errors.AlreadyReversed()
            start = len(self._deferred())
            balance = self._apply_credit(cur, op)
            # The entry this credit writes at commit: not an expiry the change made fall due
            # (a grant given back past its expiry day expires again in the same transaction).
            seq = next(r[1] for r in self._deferred()[start:] if r[0].kind_of != "expiry")
            claim = {"entry_id": entry_id, "client_id": op.client_id, "reversal_seq": seq}
            if not self._run(cur, C.REVERSAL_CLAIM, **claim, at=op.at).rowcount:
                raise errors.AlreadyReversed()
            return balance

        return self._transact(work)

    # --- reads -----------------------------------------------------------------------------

    def get_entry(self, entry_id: int) -> HistoryEntry | None:
        """Return one entry."""
        with self._read() as cur:
            row = self._run(cur, C.ENTRY_GET, entry_id=entry_id).fetchone()
        return None if row is None else _history(row)

    def history_dates(
        self,
        client_id: int,
        date_from: str,
        date_to: str,
        before: tuple[str, int] | None,
        limit: int,
    ) -> list[HistoryEntry]:
        """Return a client's entries dated in a range, newest date first, below a (date, id)."""
        # The key never starts above the range's end: PostgreSQL starts a backward index scan
        # at the key, not at the tighter of the two bounds.
        end = (date_to or LAST_DAY, 2**62)
        key = min(before, end) if before else end
        return self._dated(C.HISTORY_DATES, C.HISTORY_DATES_WALK, client_id, date_from, key[0],
                           key, limit)  # fmt: skip

    def history_newer(
        self, client_id: int, date_from: str, date_to: str, after: tuple[str, int], limit: int
    ) -> list[HistoryEntry]:
        """Return a client's entries dated in a range just above a (date, id), newest first
        (the page before in the history's order)."""
        start = (date_from or FIRST_DAY, 0)
        key = max(after, start)
        rows = self._dated(C.HISTORY_NEWER, C.HISTORY_NEWER_WALK, client_id, key[0], date_to,
                           key, limit)  # fmt: skip
        return rows[::-1]

    def _dated(
        self,
        own: str,
        walking: str,
        client_id: int,
        date_from: str,
        date_to: str,
        key: tuple[str, int],
        limit: int,
    ) -> list[HistoryEntry]:
        k_date, k_id = key
        with self._read() as cur:
            row = self._run(cur, C.CLIENT_SHARE, client_id=client_id).fetchone()
            # Sorting the client's own entries costs about ten times more per entry than
            # stepping along the date index past another client's; walk when that is cheaper.
            walk = row is not None and 10 * int(row[0]) ** 2 > limit * int(row[1])
            rows = self._run(
                cur,
                walking if walk else own,
                client_id=client_id,
                date_from=date_from or FIRST_DAY,
                date_to=date_to or LAST_DAY,
                k_date=k_date,
                k_id=k_id,
                limit=limit,
            ).fetchall()
        return [_history(r) for r in rows]

    def iter_history(self, client_id: int, date_from: str, date_to: str) -> Iterator[HistoryEntry]:
        """Yield a history as the client page lists it, every page, a bounded page at a time."""
        key: tuple[str, int] | None = None
        while True:
            page = self.history_dates(client_id, date_from, date_to, key, 2000)
            yield from page
            if len(page) < 2000:
                return
            key = (page[-1].entry.date, page[-1].entry.id)

    def same_day_before(self, client_id: int, date: str, entry_id: int) -> int:
        """The sum of a client's entries dated ``date`` with ids below ``entry_id``."""
        with self._read() as cur:
            row = self._run(
                cur, C.SAME_DAY_BEFORE, client_id=client_id, date=date, entry_id=entry_id
            ).fetchone()
        return int(row[0])

    def day_sums(self, client_id: int, after: int) -> tuple[dict[str, int], int]:
        """A client's net change per day among its entries numbered after ``after``, and the
        highest number read (``after`` when there are none)."""
        sums: dict[str, int] = {}
        last = after
        with self._read() as cur:
            for date, amount, seq in self._run(cur, C.DAY_SUMS, client_id=client_id, after=after):
                sums[str(date)] = int(amount)
                last = max(last, int(seq))
        return sums, last

    def totals(self) -> list[Total]:
        """Return credit owed per currency."""
        with self._read() as cur:
            rows = self._run(cur, C.TOTALS).fetchall()
        return [Total(r[0], int(r[1] or 0), int(r[2] or 0), int(r[3])) for r in rows]

    def recent(self, limit: int) -> list[Recent]:
        """Return the newest balance changes across all clients."""
        with self._read() as cur:
            rows = self._run(cur, C.RECENT, limit=limit).fetchall()
        return [
            Recent(
                int(r[0]),
                int(r[1]),
                r[2],
                r[3],
                int(r[4]),
                int(r[5]),
                r[6],
                r[7],
                r[10] or f"{r[8]} {r[9]}",
                r[11],
            )
            for r in rows
        ]

    def daily_changes(self, since_day: str, created_since: str) -> list[tuple[str, str, int]]:
        """Return (day, currency, net change) for entries dated after a day.

        Only entries written from ``created_since`` on are read: the first of them is found by
        bisecting ids (a few index lookups), so the cost follows recent activity, not history.
        """
        with self._read() as cur:
            low, high = 1, int(self._run(cur, C.LAST_ID).fetchone()[0])
            while low < high:
                mid = (low + high) // 2
                row = self._run(cur, C.CREATED_AT_ID, id=mid).fetchone()
                if row is None or row[0] >= created_since:
                    high = mid
                else:
                    low = mid + 1
            rows = self._run(cur, C.DAILY, first_id=low, since=since_day).fetchall()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def client_page(
        self, sort: str, key: dict[str, Any] | None, limit: int, search: str, status: str
    ) -> tuple[int | None, list[Client]]:
        """Return a keyset page of clients (``key``: the last row's sort columns) and how many
        match: counted for a list, None for a search (a count would read the table again).
        ``search`` is folded text (``rules.fold``) or a client id."""
        params = search_params(search)
        clean = params.pop("search")
        params["status"] = status
        q = C.CLIENTS
        first, after = (q.search_first, q.search_after) if clean else (q.first, q.after)
        with self._read() as cur:
            total = None if clean else int(self._run(cur, q.count, **params).fetchone()[0])
            if key is None:
                rows = self._run(cur, first[sort], limit=limit, **params).fetchall()
            else:
                rows = self._run(cur, after[sort], limit=limit, **params, **key).fetchall()
        return total, [_client(r) for r in rows]

    def activity_page(
        self,
        *,
        client_id: int,
        admin_id: int,
        at_from: str,
        at_to: str,
        before: int,
        limit: int,
    ) -> list[Activity]:
        """Return activity lines newest first, below id ``before``, filtered."""
        return self._activity_lines(
            C.ACTIVITY_PAGE_CLIENT if client_id else C.ACTIVITY_PAGE,
            client_id=client_id,
            admin_id=admin_id,
            at_from=at_from,
            at_to=at_to,
            key=before,
            limit=limit,
        )

    def activity_newer(
        self,
        *,
        client_id: int,
        admin_id: int,
        at_from: str,
        at_to: str,
        after: int,
        limit: int,
    ) -> list[Activity]:
        """Return the activity lines just above id ``after``, filtered, newest first."""
        lines = self._activity_lines(
            C.ACTIVITY_NEWER_CLIENT if client_id else C.ACTIVITY_NEWER,
            client_id=client_id,
            admin_id=admin_id,
            at_from=at_from,
            at_to=at_to,
            key=after,
            limit=limit,
        )
        return lines[::-1]

    def _activity_lines(self, sql: str, **params: Any) -> list[Activity]:
        with self._read() as cur:
            found = self._run(cur, sql, **params).fetchall()
        return [_activity(r) for r in found]
