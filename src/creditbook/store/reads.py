"""The reads every SQL store shares: clients, admins, credentials, settings, entries, audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..model import Activity, Admin, Client, Credential, CreditEntry, Role
from . import grant_sql as G
from . import queries as Q
from .protocol import Allocation, Balance, ChainEntry, ChainHead, ClientPage, Seal
from .sql import Cursor, Row, SqlBase, Stream

_PAGE = 2000
_SAMPLES = 64  # entry dates read to choose a side of the date index (balances --asof)
_OWN_ENTRIES = 10_000  # a client with no more entries adds them up (about 15 ms at most)


def _client(row: Row) -> Client:
    details = json.loads(row[9]) if row[9] else {}
    return Client(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], int(row[7]), row[8], details
    )


def _admin(row: Row) -> Admin:
    return Admin(int(row[0]), row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7])


def _activity(row: Row) -> Activity:
    return Activity(int(row[0]), row[1], row[2], int(row[3]), int(row[4]), row[5], row[6], row[7])


def _credit(row: Row) -> CreditEntry:
    return CreditEntry(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        row[3],
        row[4],
        int(row[5]),
        int(row[6]),
        int(row[7]),
        row[8],
        row[9],
        row[10],
        row[11],
        int(row[12]),
        seq=int(row[13]),
    )


class SqlReads(SqlBase):
    """Read methods of the Store protocol."""

    def versions(self) -> tuple[int, int]:
        """Return the counters of access-control changes and of authentication failures."""
        with self._read() as cur:
            rows = self._run(cur, Q.VERSIONS).fetchall()
        return int(rows[0][0]), int(rows[1][0])

    def get_client(self, client_id: int) -> Client | None:
        """Return a client by id."""
        with self._read() as cur:
            row = self._run(cur, Q.CLIENT_GET, client_id=client_id).fetchone()
        return None if row is None else _client(row)

    def find_client_by_email(self, email: str) -> Client | None:
        """Return a client by e-mail address (case-insensitive)."""
        with self._read() as cur:
            row = self._run(cur, Q.CLIENT_BY_EMAIL, email_key=email.lower()).fetchone()
        return None if row is None else _client(row)

    def list_clients(
        self, offset: int, limit: int, search: str, status: str, descending: bool
    ) -> ClientPage:
        """Return a page of clients ordered by id (``search``: folded text, or a client id)."""
        params = search_params(search)
        params["status"] = status
        page = Q.CLIENT_PAGE_DESC if descending else Q.CLIENT_PAGE_ASC
        with self._read() as cur:
            total = int(self._run(cur, Q.CLIENT_COUNT, **params).fetchone()[0])
            rows = self._run(cur, page, limit=limit, offset=offset, **params).fetchall()
        return ClientPage(total, [_client(r) for r in rows])

    def get_admin(self, admin_id: int) -> Admin | None:
        """Return an admin by id."""
        with self._read() as cur:
            row = self._run(cur, Q.ADMIN_GET, admin_id=admin_id).fetchone()
        return None if row is None else _admin(row)

    def find_admin(self, username: str) -> Admin | None:
        """Return an admin by username."""
        with self._read() as cur:
            row = self._run(cur, Q.ADMIN_BY_NAME, username=username).fetchone()
        return None if row is None else _admin(row)

    def list_admins(self) -> list[Admin]:
        """Return every admin."""
        with self._read() as cur:
            return [_admin(r) for r in self._run(cur, Q.ADMIN_LIST).fetchall()]

    def _credential(self, cur: Cursor, row: Row) -> Credential:
        roles = tuple(
            r[0] for r in self._run(cur, Q.CREDENTIAL_ROLES, credential_id=row[0]).fetchall()
        )
        return Credential(int(row[0]), row[1], row[2], int(row[3]), row[4], row[5], row[6], roles)

    def find_credential(self, identifier: str) -> Credential | None:
        """Return a credential with its roles."""
        with self._read() as cur:
            row = self._run(cur, Q.CREDENTIAL_GET, identifier=identifier).fetchone()
            return None if row is None else self._credential(cur, row)

    def list_credentials(self) -> list[tuple[Credential, str]]:
        """Return every credential with its admin's username."""
        with self._read() as cur:
            rows = self._run(cur, Q.CREDENTIAL_LIST).fetchall()
            return [(self._credential(cur, r), r[7]) for r in rows]

    def list_roles(self) -> list[Role]:
        """Return every role."""
        with self._read() as cur:
            rows = self._run(cur, Q.ROLE_LIST).fetchall()
        return [Role(r[0], tuple(a for a in r[1].split(",") if a)) for r in rows]

    def get_settings(self) -> dict[str, str]:
        """Return every stored setting."""
        with self._read() as cur:
            return {r[0]: r[1] for r in self._run(cur, Q.SETTING_LIST).fetchall()}

    def list_ips(self) -> list[str]:
        """Return the IP allow-list entries."""
        with self._read() as cur:
            return [r[0] for r in self._run(cur, Q.IP_LIST).fetchall()]

    def auth_failure_keys(self, since: float) -> list[tuple[str, int, float]]:
        """Every key with failures since a time: how many, and when the last was."""
        with self._read() as cur:
            rows = self._run(cur, Q.FAILURE_KEYS, since=since).fetchall()
        return [(str(r[0]), int(r[1]), float(r[2])) for r in rows]

    def count_auth_failures(self, ip: str, since: float) -> tuple[int, float]:
        """Return how many failures an address had since a time, and when the last was."""
        with self._read() as cur:
            row = self._run(cur, Q.FAILURE_COUNT, ip=ip, since=since).fetchone()
        return int(row[0]), float(row[1] or 0.0)

    def count_credits(self, client_id: int) -> int:
        """Return how many entries a client has."""
        with self._read() as cur:
            return int(self._run(cur, Q.CREDIT_COUNT, client_id=client_id).fetchone()[0])

    def iter_credits(self, client_id: int, offset: int, limit: int | None) -> Iterator[CreditEntry]:
        """Yield a client's entries oldest first, reading a bounded page of rows at a time.

        Entries are numbered per client (``seq``), so any page is an index range lookup.
        """
        return self._credit_pages(Q.CREDIT_PAGE, offset, limit, client_id=client_id)

    def credits_until(self, client_id: int, until: str) -> tuple[int, int]:
        """Return how many entries a client has dated on or before a day, and their sum.

        A client adds up its own entries, unless it holds so much of the ledger that walking
        the entries dated after the day (taken from its count and balance) is shorter.
        """
        with self._read() as cur:
            walk = self._walk_after(cur, client_id, until)
            query = Q.CREDIT_TOTAL_UNTIL_WALK if walk else Q.CREDIT_TOTAL_UNTIL
            row = self._run(cur, query, client_id=client_id, until=until).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def _walk_after(self, cur: Cursor, client_id: int, until: str) -> bool:
        """Whether the ledger's entries dated after ``until`` are fewer than ten times the
        client's (a step down the date index costs about a tenth of a lookup of an entry)."""
        row = self._run(cur, Q.CREDIT_COUNT, client_id=client_id).fetchone()
        if row is None or int(row[0]) <= _OWN_ENTRIES:
            return False
        later, sampled, span = self._date_sample(lambda sql, **p: self._run(cur, sql, **p), until)
        return sampled > 0 and later * span < 10 * int(row[0]) * sampled

    def iter_credits_until(
        self, client_id: int, until: str, offset: int, limit: int | None
    ) -> Iterator[CreditEntry]:
        """Yield a client's entries dated on or before a day, oldest first, a page at a time."""
        after = 0
        if offset > 0:
            with self._read() as cur:
                row = self._run(
                    cur, Q.CREDIT_NTH_UNTIL, client_id=client_id, until=until, skip=offset - 1
                ).fetchone()
            if row is None:
                return
            after = int(row[0])
        yield from self._credit_pages(
            Q.CREDIT_PAGE_UNTIL, after, limit, client_id=client_id, until=until
        )

    def _credit_pages(
        self, query: str, after: int, limit: int | None, **params: Any
    ) -> Iterator[CreditEntry]:
        """Yield entries a bounded page at a time, keyed on ``seq`` (after ``after``)."""
        remaining = limit
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            with self._read() as cur:
                rows = self._run(cur, query, after=after, limit=size, **params).fetchall()
            for row in rows:
                yield _credit(row)
            if len(rows) < size:
                return
            after = int(rows[-1][-1])
            if remaining is not None:
                remaining -= len(rows)

    def iter_balances_asof(self, until: str) -> Iterator[Balance]:
        """Yield every client's balance at the end of a day, in id order, from one snapshot.

        One side of the date index is read: the entries dated after the day (subtracted from
        each balance) or those up to it, whichever a sample of entry dates says is shorter.
        """
        with self._snapshot() as stream:
            yield from self._balances_asof(stream, until)

    def _balances_asof(self, stream: Stream, until: str) -> Iterator[Balance]:
        """``iter_balances_asof`` within a snapshot the caller holds."""
        later = self._later_side_shorter(stream, until)
        sums = stream(Q.ASOF_SUMS_LATER if later else Q.ASOF_SUMS_UNTIL, until=until)
        pending = next(sums, None)
        for r in stream(Q.BALANCES_CLIENTS):
            client_id, cents = int(r[0]), 0
            while pending is not None and int(pending[0]) <= client_id:
                if int(pending[0]) == client_id:
                    cents = int(pending[1])
                pending = next(sums, None)
            balance = int(r[6]) - cents if later else cents
            yield Balance(client_id, r[1], r[2], r[3], r[4], r[5], balance)

    def _later_side_shorter(self, stream: Stream, until: str) -> bool:
        """Whether fewer entries are dated after ``until`` than up to it, by a sample of dates."""
        later, sampled, _ = self._date_sample(stream, until)
        return later * 2 < sampled

    def _date_sample(self, stream: Stream, until: str) -> tuple[int, int, int]:
        """Entry dates at evenly spaced ids: (how many are after ``until``, how many were
        read, the span of ids they stand for)."""
        (low, high), *_ = stream(Q.ENTRY_ID_RANGE)
        if low is None:
            return 0, 0, 0
        step = max(1, (int(high) - int(low)) // _SAMPLES)
        dates = [
            r[0]
            for at in range(int(low), int(high) + 1, step)
            for r in stream(Q.ENTRY_DATE_AT, at=at)
        ]
        return sum(d > until for d in dates), len(dates), int(high) - int(low) + 1

    def chain_entries(self, first: int, last: int) -> Iterator[ChainEntry]:
        """Stream the entries of clients in an id range, by client and sequence number."""
        return map(ChainEntry._make, self._stream(Q.CHAIN_ENTRIES, first=first, last=last))

    def find_seals(self, digest: str) -> list[Seal]:
        """Return the seals recorded with a digest."""
        with self._read() as cur:
            rows = self._run(cur, Q.SEAL_FIND, digest=digest).fetchall()
        return [Seal(int(r[0]), r[1], int(r[2]), int(r[3]), r[4]) for r in rows]

    def seal_heads(self, seal_id: int) -> Iterator[tuple[int, int, str, str | None]]:
        """Yield a seal's heads (client, seq, sealed hash) with the entry's hash there now."""
        for r in self._stream(Q.SEAL_HEADS, seal_id=seal_id):
            yield int(r[0]), int(r[1]), r[2], r[3]

    def list_activity(self, client_id: int | None, limit: int) -> list[Activity]:
        """Return the newest activity lines, newest first."""
        with self._read() as cur:
            if client_id is None:
                rows = self._run(cur, Q.ACTIVITY_LIST, limit=limit).fetchall()
            else:
                rows = self._run(
                    cur, Q.ACTIVITY_LIST_CLIENT, client_id=client_id, limit=limit
                ).fetchall()
        return [_activity(r) for r in rows]

    def client_id_range(self) -> tuple[int, int]:
        """Return the lowest and highest id of a client or an entry's client (0, 0: none)."""
        with self._read() as cur:
            row = self._run(cur, Q.CLIENT_ID_RANGE).fetchone()
        return int(row[0]), int(row[1])

    @contextmanager
    def ledger_slice(
        self, first: int, last: int
    ) -> Iterator[tuple[list[ChainHead], Iterator[ChainEntry], Iterator[Allocation]]]:
        """Read the clients of an id range and stream their entries and allocations, from one
        snapshot.

        One snapshot, so a credit written meanwhile is either in both or in neither: a head
        read later than the entries would look like a rewritten chain.
        """
        with self._snapshot() as stream:
            heads = [
                ChainHead(int(r[0]), int(r[1]), int(r[2]), r[3])
                for r in stream(Q.SLICE_HEADS, first=first, last=last)
            ]
            entries = map(ChainEntry._make, stream(Q.CHAIN_ENTRIES, first=first, last=last))
            moves = map(Allocation._make, stream(G.ALLOCATIONS_OF_CLIENTS, first=first, last=last))
            yield heads, entries, moves


def search_params(search: str) -> dict[str, Any]:
    """A search's parameters: the folded text as a substring pattern (LIKE's own characters
    dropped), and the client id it names when it is a number (-1 when not)."""
    clean = search.strip().replace("\\", "").replace("%", "").replace("_", "")
    digits = clean.isascii() and clean.isdigit() and len(clean) <= 18
    return {
        "search": clean,
        "pattern": f"%{clean}%" if clean else "",
        "client_id": int(clean) if digits else -1,
    }
