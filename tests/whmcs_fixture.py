"""WHMCS-shaped databases for import tests, built from the schema notes, with every quirk."""

from __future__ import annotations

from typing import Any

import pymysql

MODERN = [
    """CREATE TABLE tblcurrencies (id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY, code text,
       prefix text, suffix text, format int(1), rate decimal(10,5) DEFAULT 1.00000,
       `default` int(1) DEFAULT 0) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tbladmins (id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid varchar(255),
       roleid int(1), username text, password varchar(255), passwordhash varchar(255),
       firstname text, lastname text, email text, disabled int(1) DEFAULT 0)
       DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblclients (id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid varchar(255),
       firstname text NOT NULL, lastname text NOT NULL, companyname text NOT NULL,
       email text NOT NULL, address1 text, address2 text, city text, state text, postcode text,
       country text, phonenumber text, currency int(10), credit decimal(16,2) NOT NULL,
       status enum('Active','Inactive','Closed') DEFAULT 'Active', datecreated date,
       groupid int(10) DEFAULT 0, cardnum blob, bankacct blob,
       created_at timestamp NOT NULL DEFAULT '0000-00-00 00:00:00')
       DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblcredit (id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY, clientid int(10),
       admin_id int(10) unsigned DEFAULT 0, date date, description text,
       amount decimal(16,2), relid int(10) DEFAULT 0) DEFAULT CHARSET=utf8mb4""",
]
OLD = [
    MODERN[0],
    MODERN[1],
    MODERN[2].replace("decimal(16,2)", "decimal(10,2)"),
    # An old installation: no admin_id, no relid, decimal(10,2), and latin1 text.
    """CREATE TABLE tblcredit (id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY, clientid int(10),
       date date, description text, amount decimal(10,2)) DEFAULT CHARSET=latin1""",
]

CURRENCIES = [(1, "USD", 1), (2, "EUR", 0)]
ADMINS = [
    (1, "admin", "John", "Smith", "john@example.com", 0),
    (2, "jane.billing", "Jane", "Doe", "jane@example.com", 1),
    (3, "bad name!", "Bad", "Name", "bad@example.com", 0),
]
# id, first, last, company, email, currency, credit, status, datecreated
CLIENTS: list[tuple[Any, ...]] = [
    (1, "Ann", "Able", "Able Ltd", "ann@example.com", 1, "15.00", "Active", "2020-01-02"),
    (2, "Bob", "Baker", "", "bob@example.com", 2, "30.00", "Active", "2020-02-03"),
    (3, "Cat", "Cole", "", "cat@example.com", 1, "5.00", "Inactive", "2020-03-04"),
    (4, "Dan", "Dunn", "", "dan@example.com", 1, "0.00", "Active", "0000-00-00"),
    (5, "Eve", "Eton", "", "eve@example.com", 99, "7.00", "Active", "2021-05-06"),
    (6, "", "", "", "ANN@example.com", 1, "0.00", "Closed", "2021-06-07"),
    (
        7,
        "Zoë",
        "Müller",
        "Müller & Söhne GmbH",
        "zoe@example.com",
        2,
        "12.50",
        "Active",
        "2022-07-08",
    ),
    (8, "Hal", "Hart", "", "", 1, "1.00", "Active", "2022-08-09"),
    (9, "Ivy", "Ives", "", "ivy@example.com", 1, "0.00", "Active", "2022-09-10"),
]
# id, clientid, admin_id, date, description, amount, relid
CREDITS: list[tuple[Any, ...]] = [
    (1, 1, 1, "2020-01-05", "Goodwill", "20.00", 0),
    (2, 2, 0, "2020-02-05", "Overpayment", "10.00", 0),
    (3, 1, 1, "2020-01-06", "Credit Applied to Invoice #123", "-5.00", 123),
    (4, 3, 2, "2020-03-05", "Refund", "10.00", 0),
    (5, 4, 0, "0000-00-00", "Zero date", "3.00", 0),
    (6, 4, 0, "2020-04-05", "Used", "-3.00", 77),
    (7, 5, 0, "2021-05-07", "Promo", "7.00", 0),
    (8, 999, 1, "2021-01-01", "Client deleted since", "50.00", 0),
    (9, 7, 1, "2022-07-09", "Gutschrift für Rückerstattung €", "12.50", 0),
    (10, 8, 0, "2022-08-10", "Control\x01character", "1.00", 0),
    (11, 9, 0, "2022-09-11", "Applied before it was added", "-4.00", 9),
    (12, 2, 0, "2020-02-06", "A row without an amount", None, 0),
]


def connect(port: int, database: str | None = None) -> Any:
    return pymysql.connect(
        host="127.0.0.1", port=port, user="root", database=database, charset="utf8mb4"
    )


def build(port: int, database: str, old: bool = False) -> None:
    """Create a WHMCS-shaped database holding the fixture rows."""
    conn = connect(port)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {database}")
        cur.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
        cur.execute(f"USE {database}")
        cur.execute("SET SESSION sql_mode = ''")  # allow WHMCS's zero dates
        for ddl in OLD if old else MODERN:
            cur.execute(ddl)
        cur.executemany(
            "INSERT INTO tblcurrencies (id, code, prefix, suffix, format, `default`)"
            " VALUES (%s, %s, '', '', 1, %s)",
            CURRENCIES,
        )
        cur.executemany(
            "INSERT INTO tbladmins (id, username, password, firstname, lastname, email, disabled)"
            " VALUES (%s, %s, 'whmcs-hash', %s, %s, %s, %s)",
            ADMINS,
        )
        cur.executemany(
            "INSERT INTO tblclients (id, firstname, lastname, companyname, email, currency,"
            " credit, status, datecreated, cardnum) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'ENCRYPTED')",
            CLIENTS,
        )
        add_credits(cur, CREDITS, old)
    conn.commit()
    conn.close()


def add_credits(cur: Any, rows: list[tuple[Any, ...]], old: bool = False) -> None:
    if old:
        cur.executemany(
            "INSERT INTO tblcredit (id, clientid, date, description, amount)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(r[0], r[1], r[3], r[4].replace("€", "EUR"), r[5]) for r in rows],
        )
    else:
        cur.executemany(
            "INSERT INTO tblcredit (id, clientid, admin_id, date, description, amount, relid)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def run(port: int, database: str, *statements: str) -> None:
    """Run statements on a fixture database (to change the source between imports)."""
    conn = connect(port, database)
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        for sql in statements:
            cur.execute(sql)
    conn.commit()
    conn.close()
