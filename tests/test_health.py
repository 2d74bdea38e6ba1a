"""GET /healthz for load balancers: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

import psycopg
import pytest

from creditbook.config import Settings
from creditbook.errors import StoreError
from creditbook.http import create_app
from helpers import asgi


def test_healthz_ok_without_auth(sqlite_database: str) -> None:
    """A reachable database answers 200 with a small JSON body; nothing is written."""
    app = create_app(Settings(database=sqlite_database, access_log=False))
    app.store.migrate()
    response = asgi(app, "GET", "/healthz")
    assert (response.status, response.json()) == (200, {"status": "ok", "database": "sqlite"})
    app.store.close()


def test_healthz_503_when_postgres_is_gone(postgres: object) -> None:
    """When the database disappears, /healthz answers 503."""
    from conftest import new_pg_database

    url = new_pg_database(postgres)  # type: ignore[arg-type]
    app = create_app(Settings(database=url, access_log=False))
    assert asgi(app, "GET", "/healthz").status == 200
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    response = asgi(app, "GET", "/healthz")
    assert (response.status, response.json()) == (
        503,
        {"status": "unavailable", "database": "postgresql"},
    )
    with pytest.raises(StoreError):
        app.store.ping()
    app.store.close()


def test_listener_keeps_the_counters_fresh(postgres: object) -> None:
    """On PostgreSQL the invalidation counters follow changes made by other processes."""
    import time

    import creditbook
    from conftest import new_pg_database
    from helpers import ACTOR

    url = new_pg_database(postgres)  # type: ignore[arg-type]
    server_side = creditbook.open(url)
    cli_side = creditbook.open(url)
    before = server_side.store.versions()
    deadline = time.monotonic() + 10
    while server_side.store._listener.current is None and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert server_side.store._listener.current == before  # type: ignore[attr-defined]
    cli_side.ledger.add_admin("late", "pw-0123456789", actor=ACTOR)
    cli_side.store.record_auth_failure("192.0.2.1", time.time(), 0)
    expected = cli_side.store.versions()
    while server_side.store.versions() != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    after = server_side.store.versions()
    assert after[0] > before[0] and after[1] > before[1]
    assert after == expected
    server_side.close()
    cli_side.close()
    assert server_side.store._listener.current is None  # type: ignore[attr-defined]
