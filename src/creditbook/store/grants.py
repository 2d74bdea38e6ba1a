"""Credit grants in a SQL store (``store.grants``): categories, low-balance thresholds, open
grants and figures by category, and the expiry run's chunks.

A part of the SQL store over its connections, as ``store.bulk`` is. Spending itself (removals,
reversals, expiry entries) is ``spend.py``, which the ledger's writes share.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import errors
from ..model import Actor
from . import grant_sql as G
from . import queries as Q
from .protocol import Balance
from .spend import Client, Grant, Spender
from .sql import dump_json, event_uid

if TYPE_CHECKING:
    from .base import SqlStore
    from .sql import Stream


class Category(NamedTuple):
    """A credit category and the expiry period its grants get by default (0: never)."""

    name: str
    expires_days: int
    builtin: bool


class Threshold(NamedTuple):
    """A low-balance threshold: a currency's default (client 0) or one client's own."""

    client_id: int
    currency: str
    below_cents: int
    client_name: str


class OpenGrant(NamedTuple):
    """A grant with something left."""

    id: int
    seq: int
    date: str
    category: str
    expires: str
    amount_cents: int
    remaining_cents: int


@dataclass(frozen=True, slots=True)
class ExpiryChunk:
    """What one transaction of the expiry run did."""

    clients: int
    grants: int
    cents: int
    last_client: int


class Notice(NamedTuple):
    """A grant about to expire, announced once (``credit.expiring``)."""

    client_id: int
    entry_id: int
    seq: int
    remaining_cents: int
    category: str
    expires: str


class GrantStore:
    """Grants' data over a SQL store's connections."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    # --- categories ----------------------------------------------------------------------------

    def categories(self) -> list[Category]:
        """Every category, built-in ones first."""
        with self._store._read() as cur:
            rows = self._store._run(cur, G.CATEGORIES).fetchall()
        return [Category(r[0], int(r[1]), bool(r[2])) for r in rows]

    def set_category(self, name: str, days: int, actor: Actor, at: str) -> None:
        """Add a category or change its default expiry period (an activity line says so)."""

        def work(cur: object) -> None:
            self._store._run(cur, G.CATEGORY_SET, name=name, days=days)
            said = f"{days} days" if days else "never"
            self._store._activity(cur, actor, at, "category", f"Category {name}: expires {said}")
            self._store._bump(cur, Q.CONFIG_BUMP)

        self._store._transact(work)

    def remove_category(self, name: str, actor: Actor, at: str) -> bool:
        """Remove an owner's category no entry uses; False when it is built in, used or
        unknown."""

        def work(cur: object) -> bool:
            if self._store._run(cur, G.CATEGORY_USED, name=name).fetchone() is not None:
                return False
            if not self._store._run(cur, G.CATEGORY_DELETE, name=name).rowcount:
                return False
            self._store._activity(cur, actor, at, "category", f"Category {name} removed")
            self._store._bump(cur, Q.CONFIG_BUMP)
            return True

        return bool(self._store._transact(work))

    # --- low-balance thresholds ----------------------------------------------------------------

    def thresholds(self) -> list[Threshold]:
        """Every threshold, by currency, the currency's default first."""
        with self._store._read() as cur:
            rows = self._store._run(cur, G.ALERTS).fetchall()
        return [
            Threshold(int(r[0]), r[1], int(r[2]), r[5] or f"{r[3]} {r[4]}".strip()) for r in rows
        ]

    def set_threshold(
        self, client_id: int, currency: str, below: int | None, actor: Actor, at: str
    ) -> bool:
        """Set (``below`` in cents) or remove (None) a threshold and bring the clients it
        governs up to date; False when there was nothing to remove."""

        def work(cur: object) -> bool:
            params = {"client_id": client_id, "currency": currency}
            if below is None:
                if not self._store._run(cur, G.ALERT_DELETE, **params).rowcount:
                    return False
                said = "removed"
            else:
                self._store._run(cur, G.ALERT_SET, **params, below=below)
                said = f"below {below / 100:.2f}"
            self._store._run(cur, G.THRESHOLDS_REFRESH, **params)
            whose = f"client {client_id}" if client_id else "default"
            detail = f"Low-balance alert ({whose}, {currency}): {said}"
            self._store._activity(cur, actor, at, "alert", detail, client_id)
            return True

        return bool(self._store._transact(work))

    def threshold_of(self, client_id: int, currency: str) -> tuple[int | None, int | None]:
        """A client's own threshold and its currency's default, in cents (None: none)."""
        with self._store._read() as cur:
            own = self._store._run(
                cur, G.ALERT_GET, client_id=client_id, currency=currency
            ).fetchone()
            default = self._store._run(cur, G.ALERT_GET, client_id=0, currency=currency).fetchone()
        return (None if own is None else int(own[0]), None if default is None else int(default[0]))

    def refresh_thresholds(self) -> None:
        """Bring every client's threshold in force up to date (after an import)."""
        self._store._transact(lambda cur: self._store._run(cur, G.THRESHOLDS_REFRESH_ALL))

    # --- reads ---------------------------------------------------------------------------------

    def open_grants(self, client_id: int, limit: int = 100) -> list[OpenGrant]:
        """A client's grants with something left: soonest expiry first, then those that never
        expire, oldest first (the order they are spent in)."""
        with self._store._read() as cur:
            rows = self._store._run(cur, G.OPEN_EXPIRING, client_id=client_id, limit=limit)
            found = rows.fetchall()
            start = self._store._run(cur, G.CLIENT_OPEN_FROM, client_id=client_id).fetchone()
            if start is not None and int(start[0]) and len(found) < limit:
                more = self._store._run(
                    cur, G.OPEN_LASTING, client_id=client_id, start=int(start[0]),
                    limit=limit - len(found),
                )  # fmt: skip
                found += more.fetchall()
        return [OpenGrant(int(r[0]), int(r[1]), r[2], r[3] or "paid", r[4], int(r[5]), int(r[6]))
                for r in found]  # fmt: skip

    def client_categories(self, client_id: int, balance: int) -> dict[str, int]:
        """A client's balance per category (paid is what the others leave), in cents."""
        with self._store._read() as cur:
            rows = self._store._run(cur, G.CLIENT_CATEGORIES, client_id=client_id).fetchall()
        others = {r[0]: int(r[1]) for r in rows}
        return {"paid": balance - sum(others.values()), **dict(sorted(others.items()))}

    def next_expiry(self, client_id: int) -> tuple[str, int] | None:
        """A client's next expiry date and the amount expiring then."""
        with self._store._read() as cur:
            row = self._store._run(cur, G.CLIENT_NEXT_EXPIRY, client_id=client_id).fetchone()
        return None if row is None else (row[0], int(row[1]))

    def totals_by_category(self) -> dict[str, dict[str, int]]:
        """Credit owed in categories other than paid, per currency (paid is the rest)."""
        found: dict[str, dict[str, int]] = {}
        with self._store._read() as cur:
            for currency, category, cents in self._store._run(cur, G.TOTALS_BY_CATEGORY):
                found.setdefault(currency, {})[category] = int(cents)
        return found

    def expiring_between(self, first: str, last: str) -> list[tuple[str, str, int, int]]:
        """What expires from one day to another: (currency, category, cents, grants)."""
        with self._store._read() as cur:
            rows = self._store._run(cur, G.EXPIRING_BETWEEN, first=first, last=last).fetchall()
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    def allocations(
        self, client_id: int, first: int, last: int
    ) -> dict[int, list[tuple[int, int, int]]]:
        """The allocations of a client's entries numbered ``first`` to ``last``, by entry
        number: (grant number, grant entry id, cents) each."""
        found: dict[int, list[tuple[int, int, int]]] = {}
        with self._store._read() as cur:
            for seq, grant, grant_id, amount in self._store._run(
                cur, G.ALLOCATIONS_BETWEEN, client_id=client_id, first=first, last=last
            ):
                found.setdefault(int(seq), []).append((int(grant), int(grant_id), int(amount)))
        return found

    def overdue(self, today: str) -> tuple[int, str | None]:
        """How many grants are past their expiry day and not expired yet, and the oldest day."""
        with self._store._read() as cur:
            count, oldest = self._store._run(cur, G.OVERDUE, today=today).fetchone()
        return int(count), oldest

    def due_clients(self, today: str, after: int, limit: int) -> list[int]:
        """Clients with due grants after ``after``, one per due grant, in id order (the
        expiry run's chunk bounds and its dry run)."""
        with self._store._read() as cur:
            rows = self._store._run(cur, G.DUE_CLIENTS, today=today, after=after, limit=limit)
            return [int(r[0]) for r in rows]

    def due_grants(self, today: str, after: int, upto: int) -> list[tuple[int, Grant]]:
        """The due grants of clients in ``(after, upto]``, by client and expiry."""
        with self._store._read() as cur:
            rows = self._store._run(cur, G.DUE_GRANTS, today=today, after=after, upto=upto)
            return [(int(r[0]), Grant.of(r[1:])) for r in rows]

    # --- the expiry run ------------------------------------------------------------------------

    def expire_chunk(self, today: str, after: int, upto: int, at: str) -> ExpiryChunk:
        """Expire, in one transaction, what remains of every grant past its expiry day of the
        clients in ``(after, upto]``; each grant once, whoever else runs it at the same time
        (the clients are locked first, then their due grants read)."""
        store = self._store
        lock = G.DUE_LOCK_ROWS if store.LOCKS_ROWS else G.DUE_LOCK

        def work(cur: object) -> ExpiryChunk:
            params = {"today": today, "after": after, "upto": upto}
            clients = {
                int(r[0]): Client(
                    int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], int(r[6]), int(r[7])
                )  # fmt: skip
                for r in store._run(cur, lock, **params).fetchall()
            }
            due: dict[int, list[Grant]] = {}
            for r in store._run(cur, G.DUE_GRANTS, **params).fetchall():
                due.setdefault(int(r[0]), []).append(Grant.of(r[1:]))
            spender = Spender(store, cur, lambda *_: ("", 0))
            cents = sum(g.remaining for grants in due.values() for g in grants)
            for client_id, grants in due.items():
                spender.expire(clients[client_id], grants, at)
            spender.finish_many([clients[c] for c in due])
            grants_done = sum(map(len, due.values()))
            return ExpiryChunk(len(due), grants_done, cents, upto)

        result: ExpiryChunk = store._transact(work)
        return result

    def notices(self, today: str, until: str, at: str, limit: int = 500) -> list[Notice]:
        """Announce grants expiring from today to ``until`` that were not announced yet: one
        ``credit.expiring`` event per grant, ever (claimed in the same transaction)."""
        store = self._store

        def work(cur: object) -> list[Notice]:
            found = [
                Notice(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4] or "paid", r[5])
                for r in store._run(
                    cur, G.NOTICE_DUE, today=today, until=until, limit=limit
                ).fetchall()
            ]
            claimed = []
            listened = store._listened(cur)
            for n in found:
                claim = {"client_id": n.client_id, "seq": n.seq, "at": at}
                if store._run(cur, G.NOTICE_CLAIM, **claim).rowcount:
                    claimed.append(n)
            if listened and claimed:
                store._run_many(cur, Q.EVENT_INSERT, [_notice_event(n, at) for n in claimed])
            return claimed

        notices: list[Notice] = store._transact(work)
        return notices

    def iter_balances_by_category(self, until: str) -> Iterator[tuple[Balance, dict[str, int]]]:
        """Every client's balance at the end of a day and its split by category (cents), in
        id order, from one snapshot.

        As ``iter_balances_asof``, from the shorter side of the day: what grants and spending
        dated after it moved per category, taken from today's split (what remains of open
        grants; paid is the rest of the balance), or what those dated up to it add up to.
        """
        with self._store._snapshot() as stream:
            yield from self.balances_by_category(stream, until)

    def balances_by_category(
        self, stream: Stream, until: str
    ) -> Iterator[tuple[Balance, dict[str, int]]]:
        """``iter_balances_by_category`` within a snapshot the caller holds."""
        store = self._store
        later = store._later_side_shorter(stream, until)
        sql = G.CATEGORY_SUMS_LATER if later else G.CATEGORY_SUMS_UNTIL
        moves = _by_client(stream(sql, until=until))
        now = _by_client(stream(G.OPEN_BY_CATEGORY)) if later else iter(())
        move, held = next(moves, None), next(now, None)
        for r in stream(Q.BALANCES_CLIENTS):
            client_id, balance = int(r[0]), int(r[6])
            split: dict[str, int] = {}
            if later:
                while held is not None and held[0] < client_id:
                    held = next(now, None)
                if held is not None and held[0] == client_id:
                    split = dict(held[1])
                split = {"paid": balance - sum(split.values()), **split}
            while move is not None and move[0] < client_id:
                move = next(moves, None)
            if move is not None and move[0] == client_id:
                for category, cents in move[1].items():
                    sign = -1 if later else 1
                    split[category] = split.get(category, 0) + sign * cents
            split = {c: v for c, v in split.items() if v or c == "paid"}
            total = sum(split.values())
            yield Balance(client_id, r[1], r[2], r[3], r[4], r[5], total), split


def _by_client(rows: Iterator[Any]) -> Iterator[tuple[int, dict[str, int]]]:
    """Rows of (client, category, cents) in client order, grouped by client."""
    client, found = -1, dict[str, int]()
    for r in rows:
        if int(r[0]) != client:
            if found:
                yield client, found
            client, found = int(r[0]), {}
        found[r[1] or "paid"] = found.get(r[1] or "paid", 0) + int(r[2])
    if found:
        yield client, found


def _notice_event(n: Notice, at: str) -> dict[str, object]:
    data = {
        "client_id": n.client_id,
        "entry_id": n.entry_id,
        "category": n.category,
        "expires": n.expires,
        "remaining": f"{n.remaining_cents // 100}.{n.remaining_cents % 100:02d}",
    }
    return {
        "uid": event_uid(),
        "type": "credit.expiring",
        "client_id": n.client_id,
        "seq": 0,
        "idem_key": "",
        "data": dump_json(data),
        "at": at,
    }


def check_category_name(name: str) -> str:
    """A category name as stored, or ``InvalidCategory``."""
    import re

    clean = name.strip().lower()
    if not re.fullmatch(r"[a-z0-9_-]{1,32}", clean):
        raise errors.InvalidCategory()
    return clean
