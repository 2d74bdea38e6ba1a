"""File sources: the Credits Reviewer CSV and Creditbook's own exports; shared helpers."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .. import errors
from ..exports import FORMULA_START
from .model import SourceAdmin, SourceClient, SourceCredit, source_cents, source_day

DETAILS = ("address1", "address2", "city", "state", "postcode", "country", "phonenumber")


#: The Credits Reviewer export's header, as WHMCS writes it.
CSV_COLUMNS = (
    "Credit ID",
    "Client ID",
    "Client Name",
    "Date",
    "Description",
    "Amount",
    "Admin User",
)
_NOT_AMOUNT = re.compile(r"[^0-9.,-]")


def parse_amount(text: str) -> int:
    """Cents from a displayed amount: ``$1,234.56``, ``-5.00 USD``, ``1.234,56`` (any format
    WHMCS displays: the last ``.`` or ``,`` followed by two digits is the decimal point)."""
    raw = _NOT_AMOUNT.sub("", text.strip())
    negative = raw.startswith("-") or text.strip().startswith("(")
    digits = raw.replace("-", "")
    match = re.fullmatch(r"([0-9.,]*?)[.,]([0-9]{2})", digits)
    whole, cents = (match.group(1), match.group(2)) if match else (digits, "00")
    whole = whole.replace(",", "").replace(".", "")
    if not whole.isdigit() and whole != "":
        raise errors.ValidationError(f"Not an amount: {text!r}")
    value = int(whole or "0") * 100 + int(cents)
    return -value if negative else value


class CreditsCsv:
    """A ``Source`` over the Credits Reviewer CSV, for clients that already exist."""

    actor = "import:credits-csv"

    def __init__(self, path: str, date_format: str, admins: dict[str, int]) -> None:
        self.name = f"credits-csv:{path}"
        self.path = path
        self.date_format = date_format
        self.admins_by_name = admins
        self.problems: list[dict[str, Any]] = []
        self._rows = self._read()

    def _read(self) -> list[SourceCredit]:
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as f:
                reader = csv.DictReader(f)
                missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise errors.ValidationError(
                        f"Not a Credits Reviewer export: no {', '.join(missing)} column"
                    )
                rows = []
                for line, row in enumerate(reader, start=2):
                    try:
                        rows.append(self._row(row))
                    except (errors.ValidationError, ValueError) as exc:
                        message = exc.message if isinstance(exc, errors.CreditError) else str(exc)
                        self.problems.append({"table": "csv line", "id": line, "reason": message})
        except OSError as exc:
            raise errors.ValidationError(f"Cannot read {self.path}: {exc}") from None
        return sorted(rows, key=lambda r: (r.client_id, r.id))

    def _row(self, row: dict[str, str]) -> SourceCredit:
        admin = (row.get("Admin User") or "").strip()
        try:
            parsed = datetime.strptime(row["Date"].strip(), self.date_format)  # noqa: DTZ007 a day
            date = parsed.strftime("%Y-%m-%d")
        except ValueError:
            raise ValueError(
                f"date {row['Date']!r} does not match --date-format {self.date_format}"
            ) from None
        return SourceCredit(
            id=int(row["Credit ID"]),
            client_id=int(row["Client ID"]),
            admin_id=self.admins_by_name.get(admin.lower(), 0),
            date=date,
            description=row.get("Description") or "",
            amount_cents=parse_amount(row["Amount"]),
            relid=0,
        )

    def counts(self) -> tuple[int, int]:
        """Clients named and rows."""
        return len({r.client_id for r in self._rows}), len(self._rows)

    def default_currency(self) -> str:
        """Not used: clients already exist."""
        return "USD"

    def admins(self) -> list[SourceAdmin]:
        """None: admins are matched by name, never created."""
        return []

    def ids(self) -> tuple[list[int], Iterator[tuple[int, int]]]:
        """Client ids and (credit id, client id) pairs."""
        return sorted({r.client_id for r in self._rows}), ((r.id, r.client_id) for r in self._rows)

    def groups(self) -> Iterator[tuple[SourceClient | None, list[SourceCredit]]]:
        """The rows by client (the client record itself is the store's)."""
        current: list[SourceCredit] = []
        for row in self._rows:
            if current and current[0].client_id != row.client_id:
                yield _stub(current[0].client_id), current
                current = []
            current.append(row)
        if current:
            yield _stub(current[0].client_id), current

    def close(self) -> None:
        """Nothing to release."""


def _stub(client_id: int) -> SourceClient:
    return SourceClient(client_id, "", "", "", "", None, "", "", 0, {})


def _unneutralise(text: str) -> str:
    """Undo ``exports.safe_cell``: a ``'`` put before a formula character goes."""
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START else text


class CreditbookCsv:
    """A ``Source`` over ``creditbook export clients`` and ``export credits`` files: a whole
    Creditbook back in, ids kept (the rows go through a temporary SQLite file, so memory
    stays flat however big the export)."""

    actor = "import:creditbook-csv"
    CLIENTS = ("id", "firstname", "lastname", "companyname", "email", "status", "currency")
    CREDITS = ("id", "client_id", "date", "description", "amount", "admin_id", "relid")

    def __init__(self, clients_path: str, credits_path: str) -> None:
        import sqlite3
        import tempfile

        self.name = f"creditbook-csv:{clients_path}"
        self._dir = tempfile.TemporaryDirectory(prefix="creditbook-import-")
        self._db = sqlite3.connect(f"{self._dir.name}/rows.db")
        db = self._db
        db.execute(
            "CREATE TABLE clients (id INTEGER PRIMARY KEY, firstname, lastname, companyname,"
            " email, status, currency, balance INTEGER, created, details)"
        )
        db.execute(
            "CREATE TABLE credits (id INTEGER PRIMARY KEY, client_id INTEGER, date, description,"
            " amount INTEGER, admin_id INTEGER, relid INTEGER)"
        )
        self._load(clients_path, self.CLIENTS + ("balance", "created_at", "details"), "clients")
        self._load(credits_path, self.CREDITS, "credits")
        db.execute("CREATE INDEX credits_by_client ON credits (client_id, id)")

    def _load(self, path: str, columns: tuple[str, ...], table: str) -> None:
        try:
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                missing = [c for c in columns if c not in (reader.fieldnames or [])]
                if missing:
                    raise errors.ValidationError(
                        f"{path} is not a creditbook export of {table}: no {', '.join(missing)}"
                    )
                batch: list[tuple[Any, ...]] = []
                for row in reader:
                    batch.append(self._row(table, row))
                    if len(batch) >= 10_000:
                        self._insert(table, batch)
                        batch = []
                self._insert(table, batch)
        except OSError as exc:
            raise errors.ValidationError(f"Cannot read {path}: {exc}") from None
        except (KeyError, ValueError) as exc:
            raise errors.ValidationError(f"{path}: unreadable row ({exc})") from None

    def _row(self, table: str, row: dict[str, str]) -> tuple[Any, ...]:
        text = _unneutralise
        if table == "clients":
            return (
                int(row["id"]),
                text(row["firstname"]),
                text(row["lastname"]),
                text(row["companyname"]),
                text(row["email"]),
                row["status"],
                row["currency"],
                source_cents(row["balance"]),
                row["created_at"][:10],
                text(row["details"]) or "{}",
            )
        return (
            int(row["id"]),
            int(row["client_id"]),
            row["date"],
            text(row["description"]),
            source_cents(row["amount"]),
            int(row["admin_id"] or 0),
            int(row["relid"] or 0),
        )

    def _insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" * (10 if table == "clients" else 7))
        self._db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608

    def counts(self) -> tuple[int, int]:
        """Clients and credit rows in the files."""
        row = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM clients), (SELECT COUNT(*) FROM credits)"
        ).fetchone()
        return int(row[0]), int(row[1])

    def default_currency(self) -> str:
        """USD (each exported client names its currency)."""
        return "USD"

    def admins(self) -> list[SourceAdmin]:
        """None: exports hold no admins."""
        return []

    def ids(self) -> tuple[list[int], Iterator[tuple[int, int]]]:
        """Client ids and (credit id, client id) pairs."""
        clients = [int(r[0]) for r in self._db.execute("SELECT id FROM clients ORDER BY id")]
        return clients, (
            (int(a), int(b)) for a, b in self._db.execute("SELECT id, client_id FROM credits")
        )

    def groups(self) -> Iterator[tuple[SourceClient | None, list[SourceCredit]]]:
        """Clients by id with their rows."""
        from .streams import merge

        clients = (
            SourceClient(
                id=int(r[0]),
                firstname=r[1],
                lastname=r[2],
                companyname=r[3],
                email=r[4],
                currency=r[6] or None,
                status=r[5],
                created=source_day(r[8]),
                balance_cents=int(r[7]),
                details={k: str(v) for k, v in json.loads(r[9]).items()},
            )
            for r in self._db.cursor().execute("SELECT * FROM clients ORDER BY id")
        )
        credits = (
            SourceCredit(
                int(r[0]), int(r[1]), int(r[5]), source_day(r[2]), r[3], int(r[4]), int(r[6])
            )
            for r in self._db.cursor().execute("SELECT * FROM credits ORDER BY client_id, id")
        )
        return merge(clients, credits)

    def close(self) -> None:
        """Remove the temporary file."""
        self._db.close()
        self._dir.cleanup()
