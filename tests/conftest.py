"""Fixtures: a real database per test (SQLite file, or a fresh PostgreSQL database)."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import creditbook  # noqa: E402
from creditbook.config import Settings  # noqa: E402
from creditbook.http import App, create_app  # noqa: E402
from helpers import Seed, missing, seed  # noqa: E402
from pgserver import PostgresServer, find_bindir  # noqa: E402

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole run, with a migrated template database."""
    bindir = find_bindir()
    if bindir is None:
        missing(
            "POSTGRESQL",
            "PostgreSQL binaries not found (/usr/lib/postgresql/*/bin): install postgresql",
        )
    server = PostgresServer(bindir)
    server.start()
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE template_creditbook")
    book = creditbook.open(server.url("template_creditbook"))
    book.close()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[Any]:
    """A throwaway MariaDB server for the whole run (for the WHMCS importer's tests)."""
    from mariadb import MariaDBServer, find_mariadbd

    binary = find_mariadbd()
    if binary is None:
        missing("MARIADB", "MariaDB not found (mariadbd): apt-get install mariadb-server")
    server = MariaDBServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_pg_database(server: PostgresServer) -> str:
    """Create a fresh migrated database from the template and return its URL."""
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template_creditbook")
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A database URL: every behaviour test runs on both stores."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    return new_pg_database(request.getfixturevalue("postgres"))


@pytest.fixture
def sqlite_database(tmp_path: object) -> str:
    """A SQLite database URL (for tests of SQLite-only behaviour)."""
    return f"sqlite:///{tmp_path}/test.db"


@pytest.fixture
def book(database: str) -> Iterator[creditbook.Creditbook]:
    """An open Creditbook on a fresh database."""
    b = creditbook.open(database)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def seeded(book: creditbook.Creditbook) -> Seed:
    """An admin with a full-access credential, and one client."""
    return seed(book)


@pytest.fixture
def app(database: str, book: creditbook.Creditbook) -> Iterator[App]:
    """The ASGI app on the same database as ``book``."""
    # In-process tests change access-control data and call the app at once: read the counters
    # on every request rather than wait for PostgreSQL's notification (tested on its own).
    application = create_app(Settings(database=database, access_log=False, pg_listen=False))
    try:
        yield application
    finally:
        application.store.close()
