"""Online backup and verified restore, on both stores, idle and under load."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import creditbook
from conftest import new_pg_database
from creditbook.audit import verify, verify_seal
from creditbook.cli import main
from creditbook.store.transfer import row_counts
from helpers import ACTOR, Seed, Server, seed
from test_crash import load


def _ledger(book: creditbook.Creditbook, s: Seed) -> None:
    for i in range(30):
        book.ledger.add_credit(
            clientid=str(s.client_id), amount=f"{i + 1}.25", description=f"d{i}", actor=ACTOR
        )
    book.ledger.add_credit(
        clientid=str(s.client_id), amount="3", description="r", type="remove", actor=ACTOR
    )
    book.ledger.put_role("reader", ["getcredits"], actor=ACTOR)
    book.ledger.add_credential("alice", roles=["reader"], actor=ACTOR)
    book.store.set_setting("ban_minutes", "30", ACTOR, book.ledger.now())


def _targets(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    return [
        f"sqlite:///{tmp_path}/restored.db",
        new_pg_database(request.getfixturevalue("postgres")),
    ]


def test_backup_then_restore_into_either_store(
    book: creditbook.Creditbook,
    seeded: Seed,
    database: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A backup verifies; restored into an empty SQLite or PostgreSQL store it verifies, holds
    the same rows and balances, keeps its seals, and goes on numbering after the copied ids."""
    _ledger(book, seeded)
    seal, _ = book.store.seal(book.ledger.now())
    dest = tmp_path / "backup.db"
    capsys.readouterr()
    assert main(["backup", str(dest), "--jobs", "2", "--database", database]) == 0
    assert "Backup verified" in capsys.readouterr().out
    source_rows = row_counts(book.store)  # type: ignore[arg-type]
    for target in _targets(request, tmp_path):
        assert main(["restore", str(dest), target, "--jobs", "1", "--database", database]) == 0
        assert "Restore verified" in capsys.readouterr().out
        with creditbook.open(target) as restored:
            assert row_counts(restored.store) == source_rows  # type: ignore[arg-type]
            assert verify(restored.store).ok
            assert verify_seal(restored.store, seal.digest) == []
            client = restored.ledger.get_client(str(seeded.client_id))
            assert (
                client.balance_cents == book.ledger.get_client(str(seeded.client_id)).balance_cents
            )
            new = restored.ledger.add_client(
                firstname="N", lastname="C", email="after@example.com", actor=ACTOR
            ).client_id
            assert new == seeded.client_id + 1
            restored.ledger.add_credit(
                clientid=str(new), amount="1", description="after", actor=ACTOR
            )
            assert verify(restored.store).ok
        assert main(["restore", str(dest), target, "--database", database]) == 1
        assert "not empty" in capsys.readouterr().err
    assert main(["backup", str(dest), "--database", database]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_backup_under_load_holds_everything_acknowledged_before_it(
    book: creditbook.Creditbook, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """32 connections keep writing while the backup runs: it verifies, restores, and holds
    every credit acknowledged before it began."""
    s = seed(book)
    clients = [s.client_id] + [
        book.ledger.add_client(
            firstname="b", lastname=str(i), email=f"load{i}@example.com", actor=ACTOR
        ).client_id
        for i in range(9)
    ]
    auth = {"identifier": s.identifier, "secret": s.secret}
    acked: dict[str, tuple[int, int]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    with Server(database, "--workers", "2") as server:
        workers = [
            threading.Thread(
                target=load, args=(server.api, auth, clients, stop, acked, lock, f"w{n}")
            )
            for n in range(32)
        ]
        for w in workers:
            w.start()
        time.sleep(1.5)
        with lock:
            before: dict[str, Any] = dict(acked)
        dest = tmp_path / "live.db"
        capsys.readouterr()
        assert main(["backup", str(dest), "--database", database]) == 0
        time.sleep(0.5)
        stop.set()
        for w in workers:
            w.join()
    assert "Backup verified" in capsys.readouterr().out
    assert len(before) > 100 and len(acked) > len(before)
    target = f"sqlite:///{tmp_path}/restored.db"
    assert main(["restore", str(dest), target, "--database", database]) == 0
    with creditbook.open(target) as restored:
        present = {}
        for client_id in clients:
            _, _, rows = restored.ledger.get_credits(str(client_id))
            present.update({e.description: (client_id, e.amount_cents) for e in rows})
    missing = [tag for tag, value in before.items() if present.get(tag) != value]
    assert missing == []
    print(f"\nbackup under load: {len(before)} acknowledged before it, all present")
