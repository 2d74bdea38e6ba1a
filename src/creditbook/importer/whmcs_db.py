"""Read a live WHMCS database (MySQL or MariaDB) with PyMySQL.

Columns are read defensively: the source is asked which columns exist (``admin_id`` and
``relid`` are missing in old installations) and one of a few constant statements is chosen.
Dates are read as text, so a ``0000-00-00`` arrives as that and is reported, not mangled.
Password, card and bank columns are never selected. Large tables stream (unbuffered cursors).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

from .. import errors
from .model import SourceAdmin, SourceClient, SourceCredit, source_cents, source_day

CLIENTS = """
SELECT id, firstname, lastname, companyname, email, address1, address2, city, state, postcode,
       country, phonenumber, currency, credit, status, CAST(datecreated AS CHAR)
FROM tblclients ORDER BY id
"""
CREDITS = {
    (True, True): "SELECT id, clientid, admin_id, CAST(date AS CHAR), description, amount, relid"
    " FROM tblcredit ORDER BY clientid, id",
    (False, True): "SELECT id, clientid, 0, CAST(date AS CHAR), description, amount, relid"
    " FROM tblcredit ORDER BY clientid, id",
    (True, False): "SELECT id, clientid, admin_id, CAST(date AS CHAR), description, amount, 0"
    " FROM tblcredit ORDER BY clientid, id",
    (False, False): "SELECT id, clientid, 0, CAST(date AS CHAR), description, amount, 0"
    " FROM tblcredit ORDER BY clientid, id",
}
ADMINS = "SELECT id, username, firstname, lastname, email FROM tbladmins ORDER BY id"
CURRENCIES = "SELECT id, code, `default` FROM tblcurrencies ORDER BY id"
COUNTS = "SELECT (SELECT COUNT(*) FROM tblclients), (SELECT COUNT(*) FROM tblcredit)"
COLUMNS = (
    "SELECT LOWER(column_name) FROM information_schema.columns"
    " WHERE table_schema = DATABASE() AND table_name = %s"
)
CLIENT_IDS = "SELECT id FROM tblclients ORDER BY id"
CREDIT_IDS = "SELECT id, clientid FROM tblcredit"
DETAILS = ("address1", "address2", "city", "state", "postcode", "country", "phonenumber")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class WhmcsDatabase:
    """A ``Source`` over ``mysql://user:password@host:port/database``."""

    actor = "import:whmcs-db"

    def __init__(self, url: str) -> None:
        import pymysql

        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql") or not parts.path.strip("/"):
            raise errors.ValidationError("The source is mysql://user:password@host:port/database")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 3306
        self._user = urllib.parse.unquote(parts.username or "root")
        self._password = urllib.parse.unquote(parts.password or "")
        self._database = parts.path.strip("/")
        # The name never holds the password: it is stored as provenance and printed.
        self.name = f"whmcs-db:{self._host}:{self._port}/{self._database}"
        self._pymysql = pymysql
        self._open: list[Any] = []
        #: Rows not imported, with the reason (added to the report).
        self.problems: list[dict[str, Any]] = []
        try:
            self._conn = self._connect()
            self._credit_columns = self._columns("tblcredit")
            self._currencies = {
                int(r[0]): (_text(r[1]).upper(), bool(r[2])) for r in self._all(CURRENCIES)
            }
        except pymysql.MySQLError as exc:
            raise errors.StoreError(f"cannot read the WHMCS database {self.name}: {exc}") from exc

    def _connect(self, streaming: bool = False) -> Any:
        kind = self._pymysql.cursors.SSCursor if streaming else self._pymysql.cursors.Cursor
        conn = self._pymysql.connect(
            host=self._host,
            port=self._port,
            user=self._user,
            password=self._password,
            database=self._database,
            charset="utf8mb4",
            cursorclass=kind,
        )
        self._open.append(conn)
        return conn

    def _all(self, sql: str, *args: Any) -> list[Any]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, args or None)
                return list(cur.fetchall())
        except self._pymysql.MySQLError as exc:
            raise errors.StoreError(f"reading {self.name} failed: {exc}") from exc

    def _stream(self, sql: str) -> Iterator[Any]:
        try:
            conn = self._connect(streaming=True)
        except self._pymysql.MySQLError as exc:
            raise errors.StoreError(f"cannot connect to {self.name}: {exc}") from exc
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                while True:
                    rows = cur.fetchmany(5000)
                    if not rows:
                        return
                    yield from rows
        except self._pymysql.MySQLError as exc:
            raise errors.StoreError(f"reading {self.name} failed: {exc}") from exc
        finally:
            conn.close()
            self._open.remove(conn)

    def _columns(self, table: str) -> set[str]:
        return {_text(r[0]) for r in self._all(COLUMNS, table)}

    def counts(self) -> tuple[int, int]:
        """Clients and credit rows in the source."""
        row = self._all(COUNTS)[0]
        return int(row[0]), int(row[1])

    def default_currency(self) -> str:
        """The default currency's code (USD when the table is empty)."""
        codes = [code for code, default in self._currencies.values() if default]
        return codes[0] if codes else next(iter(c for c, _ in self._currencies.values()), "USD")

    def admins(self) -> list[SourceAdmin]:
        """Every admin (no password column is read)."""
        return [
            SourceAdmin(int(r[0]), _text(r[1]), _text(r[2]), _text(r[3]), _text(r[4]))
            for r in self._all(ADMINS)
        ]

    def groups(self) -> Iterator[tuple[SourceClient | None, list[SourceCredit]]]:
        """Clients with their credit rows, merged from two streams."""
        from .streams import merge

        return merge(self.clients(), self.credits())

    def clients(self) -> Iterator[SourceClient]:
        """Every client, by id."""
        for r in self._stream(CLIENTS):
            currency = self._currencies.get(int(r[12])) if r[12] is not None else None
            yield SourceClient(
                id=int(r[0]),
                firstname=_text(r[1]),
                lastname=_text(r[2]),
                companyname=_text(r[3]),
                email=_text(r[4]),
                currency=currency[0] if currency else None,
                status=_text(r[14]) or "Active",
                created=source_day(_text(r[15])),
                balance_cents=source_cents(_text(r[13]) or "0"),
                details={name: _text(r[5 + i]) for i, name in enumerate(DETAILS)},
            )

    def credits(self) -> Iterator[SourceCredit]:
        """Every credit row, by client then id."""
        key = ("admin_id" in self._credit_columns, "relid" in self._credit_columns)
        for r in self._stream(CREDITS[key]):
            if r[5] is None:
                self.problems.append(
                    {"table": "tblcredit", "id": int(r[0]), "reason": "its amount is NULL"}
                )
                continue
            try:
                amount = source_cents(_text(r[5]) or "0")
            except errors.ValidationError as exc:
                self.problems.append({"table": "tblcredit", "id": int(r[0]), "reason": exc.message})
                continue
            yield SourceCredit(
                id=int(r[0]),
                client_id=int(r[1] or 0),
                admin_id=int(r[2] or 0),
                date=source_day(_text(r[3])),
                description=_text(r[4]),
                amount_cents=amount,
                relid=int(r[6] or 0),
            )

    def ids(self) -> tuple[list[int], Iterator[tuple[int, int]]]:
        """Client ids, and a stream of (credit id, client id)."""
        clients = [int(r[0]) for r in self._all(CLIENT_IDS)]
        pairs = ((int(r[0]), int(r[1] or 0)) for r in self._stream(CREDIT_IDS))
        return clients, pairs

    def close(self) -> None:
        """Close every connection."""
        for conn in list(self._open):
            conn.close()
        self._open.clear()
