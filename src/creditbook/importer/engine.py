"""The import itself: any ``Source`` into a store, keeping ids, chaining entries, reconciling.

Order of work: refuse collisions before writing anything; admins; then clients a thousand at a
time, each chunk with its clients' new credit rows in one transaction (an interrupted import
keeps whole chunks and the next run finishes the job); at the end, verify every imported
client's balance against the figure chosen and the sum of its entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import errors
from ..chain import GENESIS, entry_hash
from ..ledger import CLIENT_DETAIL_FIELDS, MAX_DESCRIPTION
from ..money import MAX_BALANCE_CENTS, format_cents
from ..rules import MAX_FIELD, USERNAME, clean_text, client_keys, now
from ..store import imports as Q
from ..store.imports import ImportStore
from ..store.sql import dump_json as dump
from .model import Report, Source, SourceClient, SourceCredit
from .streams import chunks

FALLBACK_DATE = "1970-01-01"
Progress = Callable[[int, int], None]


class Importer:
    """One import run (see the module docstring)."""

    def __init__(
        self,
        store: ImportStore,
        source: Source,
        *,
        reconcile: str = "balance",
        dry_run: bool = False,
        progress: Progress | None = None,
        attach: bool = False,
    ) -> None:
        if reconcile not in ("balance", "log", "none"):
            raise errors.ValidationError("--reconcile is balance or log")
        #: Attach rows to clients that already exist (a CSV of credits): no client is created
        #: and nothing is reconciled.
        self.attach = attach
        self.store = store
        self.source = source
        self.reconcile = reconcile
        self.report = Report(source.name, reconcile, dry_run)
        self.dry_run = dry_run
        self.progress = progress
        self.at = now()
        self.today = self.at[:10]
        self.targets: dict[int, int] = {}
        self.done = 0
        self.total = 0

    # --- the run -------------------------------------------------------------------------

    def run(self) -> Report:
        """Import everything; raise ``ImportCollision`` (before writing) on an id collision."""
        started = time.perf_counter()
        clients, credits = self.source.counts()
        self.report.clients_in_source, self.report.credits_in_source = clients, credits
        self.total = clients + credits
        self._refuse_collisions()
        self.default_currency = self.source.default_currency()
        self.next_adjustment = self.store.next_adjustment_id()
        self.email_keys = self.store.email_keys()
        with self.store.import_session(self.dry_run) as chunk:
            with chunk() as cur:
                self._admins(cur)
            for group, orphans in chunks(self.source.groups()):
                for credit in orphans:
                    self.report.skip(
                        "tblcredit",
                        credit.id,
                        f"its client {credit.client_id} does not exist in the source",
                    )
                if group:
                    with chunk() as cur:
                        self._clients(cur, group)
                self.done += len(group) + sum(len(c) for _, c in group) + len(orphans)
                if self.progress is not None:
                    self.progress(self.done, self.total)
            with chunk() as cur:
                summary = (
                    f"Imported from {self.source.name}: {self.report.clients_imported} clients, "
                    f"{self.report.credits_imported} credit rows, {self.report.adjustments} "
                    "opening-balance adjustments"
                )
                self.store.record_import(cur, self.source.actor, self.at, summary)
                if self.dry_run:
                    self._verify(self.store.imported_totals_in(cur, self.source.name))
        if not self.dry_run:
            self._verify(self.store.imported_totals(self.source.name))
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _refuse_collisions(self) -> None:
        name = self.source.name
        found: list[str] = []
        client_ids, credit_pairs = self.source.ids()
        self.admins = self.source.admins()
        if self.attach:
            # Rows go to existing clients: a credit id already used by another client collides.
            self.foreign_credits: set[int] = set()
            for credit_id, client_id in credit_pairs:
                owner = self.store.credit_owner(credit_id)
                if owner is not None and owner != client_id:
                    found.append(f"credit {credit_id} (of client {owner})")
        else:
            foreign_clients, self.foreign_credits, foreign_admins = self.store.foreign_ids(name)
            found += [f"client {i}" for i in client_ids if i in foreign_clients]
            found += [f"credit {i}" for i, _ in credit_pairs if i in self.foreign_credits]
            found += [f"admin {a.id}" for a in self.admins if a.id in foreign_admins]
        if found:
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            raise errors.ImportCollision(
                f"The store already holds {', '.join(found[:5])}{more} that were not imported "
                f"from {name}: refusing to import (Creditbook never overwrites or merges). "
                "Import into an empty store, or one only this source was imported into."
            )

    # --- admins --------------------------------------------------------------------------

    def _admins(self, cur: Any) -> None:
        already = self.store.imported_admins(self.source.name)
        rows, provenance = [], []
        for admin in self.admins:
            if admin.id in already:
                self.report.admins_already += 1
                continue
            username = "".join(c if USERNAME.fullmatch(c) else "_" for c in admin.username)[:64]
            username = username or f"admin{admin.id}"
            if username != admin.username:
                self.report.warn("username", "tbladmins", admin.id, f"renamed to {username}")
            if self.store.username_taken(cur, username):
                renamed = f"{username[:50]}-whmcs{admin.id}"
                self.report.warn("username", "tbladmins", admin.id, f"taken: renamed to {renamed}")
                username = renamed
            rows.append(
                {
                    "id": admin.id,
                    "username": username,
                    "firstname": self._text(admin.firstname, "tbladmins", admin.id, MAX_FIELD),
                    "lastname": self._text(admin.lastname, "tbladmins", admin.id, MAX_FIELD),
                    "email": self._text(admin.email, "tbladmins", admin.id, MAX_FIELD),
                    "at": self.at,
                }
            )
            provenance.append({"kind": "admin", "id": admin.id, "source": self.source.name})
        self.store.write_rows(cur, Q.ADMIN_INSERT, rows)
        self._provenance(cur, provenance)
        self.report.admins_imported += len(rows)

    # --- clients and their credits -------------------------------------------------------

    def _clients(self, cur: Any, group: list[tuple[SourceClient, list[SourceCredit]]]) -> None:
        lo, hi = group[0][0].id, group[-1][0].id
        state = self.store.client_state(cur, lo, hi)
        present = self.store.credit_ids(cur, lo, hi)
        new_clients: list[dict[str, Any]] = []
        credits: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        provenance: list[dict[str, Any]] = []
        for client, rows in group:
            taken = [r.id for r in rows if r.id in self.foreign_credits]
            if taken:
                raise errors.ImportCollision(
                    f"The store already holds credit {taken[0]}, not imported from "
                    f"{self.source.name}: stopped before client {client.id} (what was imported "
                    "so far is whole and consistent)"
                )
            if self.attach and client.id not in state:
                for row in rows:
                    self.report.skip("credits", row.id, f"client {client.id} is not in this store")
                continue
            if client.id in state:
                self.report.clients_already += 0 if self.attach else 1
                balance, entries, head = state[client.id]
            else:
                new_clients.append(self._client_row(client))
                provenance.append({"kind": "client", "id": client.id, "source": self.source.name})
                self.report.clients_imported += 1
                balance, entries, head = 0, 0, GENESIS
            before = (balance, entries)
            log_sum = 0
            for row in rows:
                log_sum += row.amount_cents
                if row.id in present:
                    self.report.credits_already += 1
                    continue
                if self.attach and not 0 <= balance + row.amount_cents <= MAX_BALANCE_CENTS:
                    self._out_of_range(client.id, row, balance)
                    continue
                present.add(row.id)
                entries += 1
                balance += row.amount_cents
                head = self._entry(credits, client, row, entries, balance, head)
                self.report.credits_imported += 1
            if self.attach:
                self.targets[client.id] = balance
                if entries != before[1]:
                    moves.append(
                        {"id": client.id, "balance": balance, "entries": entries, "head": head}
                    )
                continue  # rows attached to a client of the store: nothing to reconcile
            target = self._target(client, log_sum)
            if balance != target:
                entries += 1
                adjustment = SourceCredit(
                    self.next_adjustment,
                    client.id,
                    0,
                    self.today,
                    f"Opening-balance adjustment at import from {self.source.name}: the source's "
                    f"balance was {format_cents(client.balance_cents)} and its credit log "
                    f"summed to {format_cents(log_sum)}",
                    target - balance,
                    0,
                )
                self.next_adjustment += 1
                balance = target
                head = self._entry(credits, client, adjustment, entries, balance, head)
                self.report.adjustments += 1
            if (balance, entries) != before:
                moves.append(
                    {"id": client.id, "balance": balance, "entries": entries, "head": head}
                )
            currency = client.currency or self.default_currency
            self.report.add_total(currency, "source_balance", client.balance_cents)
            self.report.add_total(currency, "source_log", log_sum)
            self.report.add_total(currency, "imported", balance)
        self.store.write_rows(cur, Q.CLIENT_INSERT, new_clients)
        self.store.write_rows(cur, Q.CREDIT_INSERT, credits)
        self.store.write_rows(cur, Q.CLIENT_MOVE, moves)
        self.store.settle_grants(cur, lo, hi)
        self._provenance(cur, provenance)

    def _out_of_range(self, client_id: int, row: SourceCredit, balance: int) -> None:
        after = balance + row.amount_cents
        where = "below zero" if after < 0 else "beyond the maximum balance"
        self.report.skip(
            "credits",
            row.id,
            f"it would take client {client_id}'s balance from {format_cents(balance)} to "
            f"{format_cents(after)}, {where}",
        )

    def _target(self, client: SourceClient, log_sum: int) -> int:
        """The balance the client ends with (the chosen figure, within what a balance can be)."""
        if client.balance_cents != log_sum:
            self.report.differences.append(
                {
                    "client_id": client.id,
                    "balance": format_cents(client.balance_cents),
                    "log": format_cents(log_sum),
                }
            )
        wanted = client.balance_cents if self.reconcile == "balance" else log_sum
        target = min(max(wanted, 0), MAX_BALANCE_CENTS)
        if target != wanted:
            self.report.warn(
                "balance-out-of-range",
                "tblclients",
                client.id,
                f"the {self.reconcile} figure {format_cents(wanted)} cannot be a balance: "
                f"imported as {format_cents(target)}",
            )
        self.targets[client.id] = target
        return target

    def _client_row(self, client: SourceClient) -> dict[str, Any]:
        cid, table = client.id, "tblclients"
        email = self._text(client.email, table, cid, MAX_FIELD)
        key = email.lower()
        if not key or key in self.email_keys:
            if key:
                self.report.warn("duplicate-email", table, cid, f"{email} is already used")
            key = f"dup-{cid}:{key}"
        self.email_keys.add(key)
        currency = client.currency
        if currency is None:
            currency = self.default_currency
            self.report.warn("missing-currency", table, cid, f"imported in {currency}")
        created = client.created
        if not created:
            self.report.warn("zero-date", table, cid, "no creation date: the import's date used")
        details = {
            f: self._text(client.details.get(f, ""), table, cid, MAX_FIELD)
            for f in CLIENT_DETAIL_FIELDS
        }
        names = {
            "firstname": self._text(client.firstname, table, cid, MAX_FIELD),
            "lastname": self._text(client.lastname, table, cid, MAX_FIELD),
            "companyname": self._text(client.companyname, table, cid, MAX_FIELD),
        }
        search, sort = client_keys(names["firstname"], names["lastname"], names["companyname"],
                                   email)  # fmt: skip
        return {
            "id": cid,
            **names,
            "search_key": search,
            "sort_key": sort,
            "email": email,
            "email_key": key,
            "currency_code": currency,
            "status": client.status or "Active",
            "details": dump({k: v for k, v in details.items() if v}),
            "created_at": f"{created}T00:00:00.000000Z" if created else self.at,
        }

    def _entry(
        self,
        out: list[dict[str, Any]],
        client: SourceClient,
        row: SourceCredit,
        seq: int,
        balance: int,
        prev: str,
    ) -> str:
        date = row.date
        if not date:
            date = client.created or FALLBACK_DATE
            self.report.warn("zero-date", "tblcredit", row.id, f"dated {date} instead")
        text = self._text(row.description, "tblcredit", row.id, MAX_DESCRIPTION)
        digest = entry_hash(
            client.id,
            seq,
            date,
            row.amount_cents,
            row.admin_id,
            row.relid,
            self.at,
            self.source.actor,
            text,
            prev,
        )
        out.append(
            {
                "id": row.id,
                "client_id": client.id,
                "seq": seq,
                "admin_id": row.admin_id,
                "date": date,
                "description": text,
                "amount": row.amount_cents,
                "balance": balance,
                "relid": row.relid,
                "at": self.at,
                "actor": self.source.actor,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        return digest

    def _text(self, value: str, table: str, row_id: int, limit: int) -> str:
        """Text our rules accept: refused characters replaced visibly (U+FFFD), too long cut."""
        text, changed = clean_text(value)
        if changed:
            self.report.warn("characters", table, row_id, "characters replaced with U+FFFD")
        if len(text) > limit:
            self.report.warn("too-long", table, row_id, f"cut to {limit} characters")
            text = text[: limit - 1] + "\u2026"
        return text

    def _provenance(self, cur: Any, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row["at"] = self.at
        self.store.write_rows(cur, Q.PROVENANCE, rows)

    # --- the end -------------------------------------------------------------------------

    def _verify(self, rows: Any) -> None:
        """Every imported client's balance is the chosen figure and the sum of its entries."""
        wrong = 0
        for client_id, _, balance, entries_sum in rows:
            target = self.targets.get(client_id, balance)
            if balance != target or entries_sum != balance:
                wrong += 1
                if wrong <= 100:
                    self.report.warn(
                        "verify",
                        "clients",
                        client_id,
                        f"balance {format_cents(balance)}, entries sum "
                        f"{format_cents(entries_sum)}, expected {format_cents(target)}",
                    )
        self.report.verified = wrong == 0
