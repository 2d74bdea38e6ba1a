"""The month-end reports' reads (``store.reports``): the roll-forward's figures, the journal's
entries and the entries a reconciliation compares, each from one snapshot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import report_sql as R

if TYPE_CHECKING:
    from .base import SqlStore
    from .sql import Stream

#: The earliest and latest days an entry can be dated (text compares as dates).
FIRST_DAY, LAST_DAY = "0000-01-01", "9999-12-31"
COLUMNS = ("added", "spent", "reversed", "expired")
#: PostgreSQL's memory per hash or sort while a roll-forward runs (its aggregates group up to a
#: row per client and category; the server's default, 4 MB, sends them to disk).
REPORT_WORK_MEM_MB = 64


@dataclass
class Figures:
    """A roll-forward's raw figures, in cents, per (currency, category); category "" when
    not split.

    Three readings of one snapshot: ``opening_totals`` per currency from the entries' amounts
    up to the day before (or today's balances less those dated after it); ``moves`` (signed
    effects on the balance, per column) from the period's entries; ``closing`` and ``clients``
    from each client's balance (and split) as of the last day, merged client by client or
    summed by the database. The caller checks that they agree.
    """

    opening_totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    moves: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    closing: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    clients: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    currencies: set[str] = field(default_factory=set)
    late: list[tuple[Any, ...]] = field(default_factory=list)
    late_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    late_totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """An entry dated in the journal's period, with its effects per category (signed cents:
    its allocations when it has some, else its own amount)."""

    id: int
    client_id: int
    currency: str
    date: str
    amount_cents: int
    kind: str
    description: str
    reverses: int
    effects: tuple[tuple[str, int], ...]


class ReportStore:
    """Reads for the roll-forward, the journal export and reconciliations."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def figures(
        self, first: str, last: str, by_category: bool, late_after: str, late_limit: int
    ) -> Figures:
        """The roll-forward's figures for the days ``first`` to ``last`` (inclusive), and the
        entries dated in them but recorded after ``late_after`` (the first ``late_limit``)."""
        store = self._store
        out = Figures()

        def cat(category: str) -> str:
            return (category or "paid") if by_category else ""

        with store._snapshot(work_mem_mb=REPORT_WORK_MEM_MB) as stream:
            today = {code: int(cents or 0) for code, cents in stream(R.BALANCE_TOTALS)}
            out.currencies = set(today)
            # The opening per currency: today's balances less what is dated after the day
            # before, or what is dated up to it (whichever side is shorter); no category.
            before = _day_before(first)
            if store._later_side_shorter(stream, before):
                out.opening_totals.update(today)
                for code, cents in stream(R.NET_BY_CURRENCY, first=first, last=LAST_DAY):
                    out.opening_totals[code] -= int(cents)
            else:
                for code, cents in stream(R.NET_BY_CURRENCY, first=FIRST_DAY, last=before):
                    out.opening_totals[code] += int(cents)
            # The period's movements and its entries recorded late.
            late = 0
            rows = stream(R.PERIOD_ENTRIES, first=first, last=last, after=late_after)
            for code, category, column, cents, count, late_cents in rows:
                if int(count):
                    late += int(count)
                    out.late_counts[code] += int(count)
                    out.late_totals[code] += int(late_cents)
                if column != "none":
                    out.moves[(code, cat(category), column)] += int(cents)
            for code, category, column, cents in stream(
                R.PERIOD_ALLOCATIONS, first=first, last=last
            ):
                out.moves[(code, cat(category), column)] -= int(cents)
            if store.AGGREGATES_IN_DATABASE:  # the same closing, summed by the database
                later = store._later_side_shorter(stream, last)
                if by_category:
                    sql = R.CLOSING_BY_CATEGORY_LATER if later else R.CLOSING_BY_CATEGORY_UNTIL
                    for code, category, cents, holders in stream(sql, until=last):
                        out.closing[(code, category)] += int(cents)
                        out.clients[(code, category)] += int(holders)
                else:
                    sql = R.CLOSING_LATER if later else R.CLOSING_UNTIL
                    for code, cents, holders in stream(sql, until=last):
                        out.closing[(code, "")] += int(cents)
                        out.clients[(code, "")] += int(holders)
                self._late(stream, out, first, last, late_after, late_limit, late)
                return out
            # The closing balances, client by client.
            balances: Iterator[tuple[Any, dict[str, int]]]
            if by_category:
                balances = store.grants.balances_by_category(stream, last)
            else:
                balances = ((b, {"": b.balance_cents}) for b in store._balances_asof(stream, last))
            for balance, split in balances:
                for category, cents in split.items():
                    key = (balance.currency_code, category)
                    out.closing[key] += cents
                    if cents > 0:
                        out.clients[key] += 1
            self._late(stream, out, first, last, late_after, late_limit, late)
        return out

    @staticmethod
    def _late(
        stream: Stream,
        out: Figures,
        first: str,
        last: str,
        after: str,
        limit: int,
        count: int,
    ) -> None:
        """List the first ``limit`` entries recorded late (when there are any)."""
        if not count:
            return
        for r in stream(R.LATE_ENTRIES, first=first, last=last, after=after):
            if len(out.late) >= limit:
                break
            out.late.append(tuple(r))

    def journal_entries(self, first: str, last: str) -> Iterator[JournalEntry]:
        """The entries dated from ``first`` to ``last``, in date order, with their effects."""
        with self._store._snapshot() as stream:
            spent = stream(R.JOURNAL_ALLOCATIONS, first=first, last=last)
            pending = next(spent, None)
            for r in stream(R.JOURNAL_ENTRIES, first=first, last=last):
                entry_id, kind, amount = int(r[0]), r[6], int(r[5])
                effects: list[tuple[str, int]] = []
                while pending is not None and int(pending[0]) == entry_id:
                    effects.append((pending[1] or "paid", -int(pending[2])))
                    pending = next(spent, None)
                if not effects:
                    category = r[7] if kind == "grant" else "paid"
                    effects = [(category or "paid", amount)]
                yield JournalEntry(
                    entry_id, int(r[1]), r[3], r[4], amount, kind, r[8], int(r[9]), tuple(effects)
                )

    def journal_uses(self, first: str, last: str) -> set[tuple[str, str]]:
        """The (currency, category) pairs the entries dated from ``first`` to ``last`` use."""
        with self._store._read() as cur:
            rows = self._store._run(cur, R.JOURNAL_USES, first=first, last=last).fetchall()
        return {(r[0], r[1] or "paid") for r in rows}

    def monthly_net(self, first: str, last: str) -> dict[tuple[str, str], int]:
        """Per (currency, ``YYYY-MM``): the net movement of the entries dated in the range."""
        with self._store._read() as cur:
            rows = self._store._run(cur, R.MONTHLY_NET, first=first, last=last).fetchall()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def imported_range(self, source: str) -> tuple[int, int]:
        """The lowest and highest id of the clients imported from ``source`` (0, 0: none)."""
        with self._store._read() as cur:
            low, high = self._store._run(cur, R.IMPORTED_RANGE, source=source).fetchone()
        return int(low), int(high)

    def imported_clients(
        self, source: str, first: int, last: int
    ) -> tuple[dict[int, tuple[int, str, str]], dict[int, list[tuple[Any, ...]]]]:
        """The clients imported from ``source`` with ids from ``first`` to ``last`` (balance,
        currency, when imported) and their entries (id, client, date, cents, description,
        actor), from one snapshot."""
        clients: dict[int, tuple[int, str, str]] = {}
        entries: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        with self._store._snapshot() as stream:
            for r in stream(R.IMPORTED_CLIENTS, source=source, first=first, last=last):
                clients[int(r[0])] = (int(r[1]), r[2], r[3])
            for r in stream(R.ENTRIES_OF_CLIENTS, first=first, last=last):
                if int(r[1]) in clients:
                    entries[int(r[1])].append((int(r[0]), int(r[1]), r[2], int(r[3]), r[4], r[5]))
        return clients, entries


def _day_before(day: str) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
