"""File sources: the Credits Reviewer CSV and Creditbook's own exports; shared helpers."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .. import errors
from ..exports import FORMULA_START
from ..money import parse_cents
from .model import (
    SourceAdmin,
    SourceClient,
    SourceCredit,
    source_cents,
    source_day,
    source_id,
)

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
#: Where a displayed amount may carry its currency: a symbol or a three-letter code, before
#: or after the number (``$1,234.56``, ``-£5.00``, ``1.234,56 EUR``).
_DISPLAYED = re.compile(
    r"(?P<open>\()?\s*(?P<lead>-)?\s*(?:[$€£¥]|[A-Za-z]{3}\s)?\s*(?P<sign>-)?\s*"
    r"(?P<number>[0-9][0-9.,]*)\s*(?:[$€£¥]|\s[A-Za-z]{3}|[A-Za-z]{3})?\s*(?P<close>\))?"
)
#: The number's forms that read one way only: plain (``1234.5``), a decimal comma (``12,50``),
#: or grouped thousands with a decimal part or more than one group (``1,234.56``,
#: ``1.234,56``, ``1.234.567``). A lone group (``1.567``, ``1,234``) could be either.
_FORMS = (
    (re.compile(r"[0-9]+(\.[0-9]{1,2})?"), "", "."),
    (re.compile(r"[0-9]+,[0-9]{1,2}"), "", ","),
    (re.compile(r"[0-9]{1,3}(,[0-9]{3})+\.[0-9]{1,2}|[0-9]{1,3}(,[0-9]{3}){2,}"), ",", "."),
    (re.compile(r"[0-9]{1,3}(\.[0-9]{3})+,[0-9]{1,2}|[0-9]{1,3}(\.[0-9]{3}){2,}"), ".", ","),
)


def parse_amount(text: str) -> int:
    """Cents from an amount as WHMCS displays it, read only where it reads one way.

    ``$1,234.56``, ``-£5.00``, ``(5.00)``, ``1.234,56 EUR``, ``12,50`` and plain ``1.5`` are
    accepted; the number then parses as the money module parses amounts (at most two decimals).
    Anything else (``1.567``, ``1e3``, ``abc``, an empty cell) raises ``ValidationError``.
    """
    match = _DISPLAYED.fullmatch(text.strip())
    if match is not None and bool(match["open"]) == bool(match["close"]):
        number = match["number"]
        for form, group, point in _FORMS:
            if form.fullmatch(number):
                plain = number.replace(group, "") if group else number
                negative = bool(match["open"] or match["lead"] or match["sign"])
                try:
                    cents = parse_cents(plain.replace(point, "."))
                except ValueError:
                    break
                if match["lead"] and match["sign"]:
                    break
                return -cents if negative else cents
    raise errors.ValidationError(
        f"the amount {text[:40]!r} is not an amount with at most two decimals "
        "(e.g. 12.50, $1,234.56 or 1.234,56 EUR)"
    )


class CreditsCsv:
    """A ``Source`` over the Credits Reviewer CSV, for clients that already exist.

    Every row is checked as it is read; a row that cannot be imported is a problem with its
    line number and reason (the importer applies nothing while there are problems, unless it
    is told to skip them).
    """

    actor = "import:credits-csv"

    def __init__(self, path: str, date_format: str, admins: dict[str, int]) -> None:
        self.name = f"credits-csv:{path}"
        self.path = path
        self.date_format = date_format
        self.admins_by_name = admins
        self.problems: list[dict[str, Any]] = []
        self._rows = self._read()

    def _problem(self, line: int, reason: str) -> None:
        self.problems.append({"table": "csv line", "id": line, "reason": reason})

    def _read(self) -> list[SourceCredit]:
        rows: dict[int, tuple[int, SourceCredit]] = {}
        conflicting: set[int] = set()
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as f:
                reader = csv.DictReader(f, strict=True)
                missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise errors.ValidationError(
                        f"Not a Credits Reviewer export: no {', '.join(missing)} column"
                    )
                rows_read = iter(reader)
                while True:
                    line = reader.line_num + 1
                    row = next(rows_read, None)
                    if row is None:
                        break
                    try:
                        credit = self._row(row)
                    except errors.ValidationError as exc:
                        self._problem(line, exc.message)
                        continue
                    first = rows.setdefault(credit.id, (line, credit))
                    if first[1] != credit:
                        conflicting.add(credit.id)
                        self._problem(
                            line,
                            f"Credit ID {credit.id} is also on line {first[0]} with other "
                            "values: neither is imported",
                        )
        except csv.Error as exc:
            raise errors.ValidationError(
                f"{self.path} is not valid CSV (line {reader.line_num}): {exc}"
            ) from None
        except UnicodeDecodeError:
            raise errors.ValidationError(f"{self.path} is not UTF-8 text") from None
        except OSError as exc:
            raise errors.ValidationError(f"Cannot read {self.path}: {exc}") from None
        for credit_id in conflicting:
            first_line = rows.pop(credit_id)[0]
            self._problem(first_line, f"Credit ID {credit_id} appears again with other values")
        self.problems.sort(key=lambda p: int(p["id"]))
        return sorted((c for _, c in rows.values()), key=lambda r: (r.client_id, r.id))

    def _row(self, row: dict[str | None, Any]) -> SourceCredit:
        if None in row or any(row.get(c) is None for c in CSV_COLUMNS):
            raise errors.ValidationError(
                "the row's cells do not match the header's columns "
                "(an unclosed quote, or a comma too many or too few?)"
            )
        cells = {c: str(row[c]) for c in CSV_COLUMNS}
        admin = cells["Admin User"].strip()
        try:
            parsed = datetime.strptime(cells["Date"].strip(), self.date_format)  # noqa: DTZ007 a day
            date = parsed.strftime("%Y-%m-%d")
        except ValueError:
            raise errors.ValidationError(
                f"date {cells['Date'][:40]!r} does not match --date-format {self.date_format}"
            ) from None
        return SourceCredit(
            id=source_id(cells["Credit ID"], "Credit ID"),
            client_id=source_id(cells["Client ID"], "Client ID"),
            admin_id=self.admins_by_name.get(admin.lower(), 0),
            date=date,
            description=cells["Description"],
            amount_cents=parse_amount(cells["Amount"]),
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


#: The largest id Creditbook's own exports hold (opening-balance adjustments sit above WHMCS's).
MAX_ID = 2**63 - 1


def _unneutralise(text: str) -> str:
    """Undo ``exports.safe_cell``: the ``'`` it put before a formula character (or before
    quotes that precede one) goes."""
    rest = text.lstrip("'")
    return text[1:] if text.startswith("'") and rest[:1] in FORMULA_START else text


def _details(text: str) -> str:
    """A client's address fields as exported (a JSON object of text), checked."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise errors.ValidationError("the details cell is not a JSON object of text fields")
    return text


class CreditbookCsv:
    """A ``Source`` over ``creditbook export clients`` and ``export credits`` files: a whole
    Creditbook back in, ids kept (the rows go through a temporary SQLite file, so memory
    stays flat however big the export)."""

    actor = "import:creditbook-csv"
    CLIENTS = ("id", "firstname", "lastname", "companyname", "email", "status", "currency")
    CREDITS = ("id", "client_id", "date", "description", "amount", "admin_id", "relid")

    def __init__(self, clients_path: str, credits_path: str) -> None:
        self.name = f"creditbook-csv:{clients_path}"
        self.problems: list[dict[str, Any]] = []
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
        orphans = (
            "SELECT id, client_id FROM credits WHERE client_id NOT IN (SELECT id FROM clients)"
        )
        for credit_id, client_id in db.execute(orphans).fetchall():
            self.problems.append(
                {
                    "table": "credits",
                    "id": credit_id,
                    "reason": f"its client {client_id} is not in {clients_path}",
                }
            )

    def _load(self, path: str, columns: tuple[str, ...], table: str) -> None:
        try:
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f, strict=True)
                missing = [c for c in columns if c not in (reader.fieldnames or [])]
                if missing:
                    raise errors.ValidationError(
                        f"{path} is not a creditbook export of {table}: no {', '.join(missing)}"
                    )
                batch: list[tuple[int, tuple[Any, ...]]] = []
                rows = iter(reader)
                while True:
                    line = reader.line_num + 1
                    row = next(rows, None)
                    if row is None:
                        break
                    try:
                        batch.append((line, self._row(table, row)))
                    except errors.ValidationError as exc:
                        self._problem(table, line, exc.message)
                    if len(batch) >= 10_000:
                        self._insert(table, batch)
                        batch = []
                self._insert(table, batch)
        except csv.Error as exc:
            raise errors.ValidationError(
                f"{path} is not valid CSV (line {reader.line_num}): {exc}"
            ) from None
        except UnicodeDecodeError:
            raise errors.ValidationError(f"{path} is not UTF-8 text") from None
        except OSError as exc:
            raise errors.ValidationError(f"Cannot read {path}: {exc}") from None

    def _problem(self, table: str, line: int, reason: str) -> None:
        self.problems.append({"table": f"{table} line", "id": line, "reason": reason})

    def _row(self, table: str, row: dict[str | None, Any]) -> tuple[Any, ...]:
        if None in row or any(v is None for v in row.values()):
            raise errors.ValidationError(
                "the row's cells do not match the header's columns "
                "(an unclosed quote, or a comma too many or too few?)"
            )
        text = _unneutralise
        if table == "clients":
            return (
                source_id(row["id"], "id", MAX_ID),
                text(row["firstname"]),
                text(row["lastname"]),
                text(row["companyname"]),
                text(row["email"]),
                row["status"],
                row["currency"],
                source_cents(row["balance"]),
                row["created_at"][:10],
                _details(text(row["details"]) or "{}"),
            )
        return (
            source_id(row["id"], "id", MAX_ID),
            source_id(row["client_id"], "client_id", MAX_ID),
            row["date"],
            text(row["description"]),
            source_cents(row["amount"]),
            int(row["admin_id"]) if str(row["admin_id"]).isdigit() else 0,
            int(row["relid"]) if str(row["relid"]).isdigit() else 0,
        )

    def _insert(self, table: str, rows: list[tuple[int, tuple[Any, ...]]]) -> None:
        marks = ", ".join("?" * (10 if table == "clients" else 7))
        sql = f"INSERT INTO {table} VALUES ({marks})"  # noqa: S608 constant table names
        try:
            with self._db:
                self._db.executemany(sql, [values for _, values in rows])
        except sqlite3.IntegrityError:  # an id given twice: find which, row by row
            for line, values in rows:
                try:
                    with self._db:
                        self._db.execute(sql, values)
                except sqlite3.IntegrityError:
                    self._problem(table, line, f"the id {values[0]} is given twice")

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
