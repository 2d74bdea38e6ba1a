"""A standing reconciliation with WHMCS: every imported client's balance against
``tblclients.credit``, and the entries on one side only that explain a difference. Read-only
on both sides."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .money import format_cents
from .store.imports import ADJUSTMENT_IDS

if TYPE_CHECKING:
    from .importer.model import SourceClient, SourceCredit
    from .ledger import Ledger

#: Clients compared per read of the store.
CHUNK = 1000


@dataclass
class Difference:
    """A client whose figures differ between the two sides, with the entries that explain it
    (``explained``: the one-sided entries account for the whole difference)."""

    client_id: int
    currency: str
    creditbook_cents: int | None  # None: not imported
    whmcs_cents: int | None  # None: no longer in WHMCS
    only_creditbook: list[dict[str, Any]] = field(default_factory=list)
    only_whmcs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def explained(self) -> bool:
        """Whether the entries on one side only add up to the difference in balance."""
        mine = self.creditbook_cents or 0
        theirs = self.whmcs_cents or 0
        ours = sum(int(e["cents"]) for e in self.only_creditbook)
        their = sum(int(e["cents"]) for e in self.only_whmcs)
        return bool(mine - theirs == ours - their)

    def as_json(self) -> dict[str, Any]:
        """The difference with amounts as two-decimal strings."""

        def shown(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v for k, v in e.items() if k != "cents"} for e in entries]

        def money(cents: int | None) -> str | None:
            return None if cents is None else format_cents(cents)

        return {
            "clientid": self.client_id,
            "currency": self.currency,
            "creditbook": money(self.creditbook_cents),
            "whmcs": money(self.whmcs_cents),
            "difference": format_cents((self.creditbook_cents or 0) - (self.whmcs_cents or 0)),
            "explained": self.explained,
            "only_creditbook": shown(self.only_creditbook),
            "only_whmcs": shown(self.only_whmcs),
        }


@dataclass
class Reconciliation:
    """What a reconciliation found: clients compared, and those that differ."""

    source: str
    compared: int = 0
    matched: int = 0
    differences: list[Difference] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The whole result (``matches``: nothing differs)."""
        return {
            "source": self.source,
            "compared": self.compared,
            "matched": self.matched,
            "matches": not self.differences,
            "differences": [d.as_json() for d in self.differences],
        }


def _entry(entry_id: int, date: str, cents: int, description: str) -> dict[str, Any]:
    return {"id": entry_id, "date": date, "amount": format_cents(cents), "cents": cents,
            "description": description}  # fmt: skip


def run(ledger: Ledger, source: Any) -> Reconciliation:
    """Compare the clients imported from ``source`` (a ``WhmcsDatabase``) with it."""
    result = Reconciliation(source.name)
    reports = ledger.store.reports
    low, high = reports.imported_range(source.name)
    if not high:
        raise errors.ValidationError(
            f"No client was imported from {source.name}: run import whmcs-db first"
        )
    after = 0
    for chunk in _chunks(source.groups()):
        last = chunk[-1][0].id
        _compare(result, reports, source.name, after + 1, last, chunk)
        after = last
    if after < high:
        _compare(result, reports, source.name, after + 1, high, [])
    return result


def _chunks(
    groups: Iterator[tuple[SourceClient | None, list[SourceCredit]]],
) -> Iterator[list[tuple[SourceClient, list[SourceCredit]]]]:
    chunk: list[tuple[SourceClient, list[SourceCredit]]] = []
    for client, rows in groups:
        if client is None:
            continue  # credit rows of a client WHMCS no longer has: nothing to compare with
        chunk.append((client, rows))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _compare(
    result: Reconciliation,
    reports: Any,
    name: str,
    first: int,
    last: int,
    chunk: list[tuple[SourceClient, list[SourceCredit]]],
) -> None:
    clients, entries = reports.imported_clients(name, first, last)
    seen = set()
    for client, rows in chunk:
        mine = clients.get(client.id)
        if mine is None:
            if client.balance_cents or rows:
                # In WHMCS since the import (or never imported): all its credit is one-sided.
                d = Difference(client.id, client.currency or "", None, client.balance_cents)
                d.only_whmcs = [_entry(r.id, r.date, r.amount_cents, r.description) for r in rows]
                result.differences.append(d)
            continue
        seen.add(client.id)
        result.compared += 1
        balance, currency, _ = mine
        theirs = {r.id: r for r in rows}
        d = Difference(client.id, currency, balance, client.balance_cents)
        for e in entries.get(client.id, []):
            entry_id, _, date, cents, description, actor = e
            row = theirs.pop(entry_id, None)
            if row is not None and row.amount_cents == cents:
                continue
            if row is not None:
                d.only_whmcs.append(_entry(row.id, row.date, row.amount_cents, row.description))
            if entry_id >= ADJUSTMENT_IDS and actor.startswith("import:"):
                continue  # the import's own opening-balance adjustment: WHMCS's drift, known
            d.only_creditbook.append(_entry(entry_id, date, cents, description))
        d.only_whmcs += [
            _entry(r.id, r.date, r.amount_cents, r.description) for r in theirs.values()
        ]
        if balance != client.balance_cents or d.only_creditbook or d.only_whmcs:
            result.differences.append(d)
        else:
            result.matched += 1
    for client_id, (balance, currency, _) in sorted(clients.items()):
        if client_id not in seen:
            result.compared += 1
            d = Difference(client_id, currency, balance, None)
            d.only_creditbook = [_entry(e[0], e[2], e[3], e[4]) for e in entries.get(client_id, [])]
            result.differences.append(d)
