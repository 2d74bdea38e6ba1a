"""Group commit changes no behaviour: order, per-operation errors, and acknowledgement only
after commit."""

from __future__ import annotations

import random
import threading
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

import pytest

import creditbook
from creditbook import errors
from creditbook.audit import verify
from creditbook.model import Actor
from creditbook.store import CreditOp
from creditbook.store.base import SqlStore
from creditbook.store.sqlite import SQLiteStore
from creditbook.store.sqlite_writer import Checkpointer
from helpers import ACTOR, Seed, settled


def op(client_id: int, cents: int, text: str = "b") -> CreditOp:
    return CreditOp(client_id, cents, "2026-01-01", text, 0, Actor("t"), "2026-01-01T00:00:00Z")


@pytest.fixture
def store(sqlite_database: str) -> SQLiteStore:
    book = creditbook.open(sqlite_database)
    assert isinstance(book.store, SQLiteStore)
    return book.store


def clients(store: SQLiteStore, n: int) -> list[int]:
    book = creditbook.Creditbook(store)
    return [
        book.ledger.add_client(
            firstname="b", lastname=str(i), email=f"b{i}@example.com", actor=ACTOR
        ).client_id
        for i in range(n)
    ]


@pytest.fixture
def any_store(database: str) -> Any:
    """The store of either kind, with group commit on."""
    book = creditbook.open(database)
    yield book.store
    book.close()


def test_order_is_preserved_within_a_batch(any_store: Any) -> None:
    """Writes submitted in order are applied in order, with exact running balances."""
    store = any_store
    (client_id,) = clients(store, 1)
    futures = [store.submit_credit(op(client_id, 100, f"#{i}")) for i in range(300)]
    futures += [
        store.submit_credit(op(client_id, -100 * 300, "all")),
        store.submit_credit(op(client_id, -1, "too much")),
    ]
    results: list[Any] = []
    for f in futures:
        try:
            results.append(f.result())
        except errors.InsufficientCredit as exc:
            results.append(exc.message)
    assert results == [100 * (i + 1) for i in range(300)] + [
        0,
        "Amount exceeds customer credit balance",
    ]
    entries = list(store.iter_credits(client_id, 0, None))
    assert [e.description for e in entries] == [f"#{i}" for i in range(300)] + ["all"]
    assert [e.balance_cents for e in entries] == [100 * (i + 1) for i in range(300)] + [0]


def test_refusals_in_a_batch_fail_alone(any_store: Any) -> None:
    """Per-operation refusals inside one batch; the others apply, several clients at once."""
    store = any_store
    a, b = clients(store, 2)
    futures = [
        store.submit_credit(op(c, cents))
        for c, cents in [
            (a, 500),
            (b, -1),
            (999, 5),
            (a, -200),
            (b, 700),
            (a, 10**16),
            (b, -700),
            (a, -301),
        ]
    ]
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result())
        except errors.CreditError as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == [
        500,
        "InsufficientCredit",
        "ClientIdNotFound",
        300,
        700,
        "BalanceLimitExceeded",
        0,
        "InsufficientCredit",
    ]
    assert [e.amount_cents for e in store.iter_credits(a, 0, None)] == [500, -200]
    assert [e.balance_cents for e in store.iter_credits(b, 0, None)] == [700, 0]


def test_one_failing_operation_never_affects_another(store: SQLiteStore) -> None:
    """In one batch, refusals and a database error fail alone; the rest commit."""
    a, b = clients(store, 2)
    assert store._committer is not None
    gate = threading.Event()
    blocker: Future[Any] = store._committer.submit(lambda cur: gate.wait(5))

    def broken(cur: Any) -> None:
        cur.execute("INSERT INTO no_such_table VALUES (1)")

    futures = [
        store.submit_credit(op(a, 500)),
        store.submit_credit(op(b, -1)),  # refused: balance is 0
        store.submit_credit(op(999, 5)),  # refused: no such client
        store._committer.submit(broken),  # fails the transaction: everyone is retried alone
        store.submit_credit(op(a, -200)),
        store.submit_credit(op(b, 700)),
    ]
    gate.set()
    blocker.result()
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result())
        except (errors.CreditError, errors.StoreError) as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == [500, "InsufficientCredit", "ClientIdNotFound", "StoreError", 300, 700]
    assert [e.amount_cents for e in store.iter_credits(a, 0, None)] == [500, -200]
    assert [e.amount_cents for e in store.iter_credits(b, 0, None)] == [700]


def test_many_threads_share_commits(store: SQLiteStore) -> None:
    """Concurrent callers are committed together, and every one gets its own answer."""
    ids = clients(store, 4)
    assert store._committer is not None
    before = store._committer.batches
    answers: dict[int, list[int]] = {cid: [] for cid in ids}
    lock = threading.Lock()

    def worker(n: int) -> None:
        cid = ids[n % 4]
        for _ in range(100):
            balance = store.apply_credit(op(cid, 1))
            with lock:
                answers[cid].append(int(balance))  # type: ignore[arg-type]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cid in ids:
        assert sorted(answers[cid]) == list(range(1, 401))
    assert store._committer.batches - before < 1600


def test_acknowledged_only_after_commit(store: SQLiteStore, sqlite_database: str) -> None:
    """When a future resolves, a fresh connection already sees the write."""
    (client_id,) = clients(store, 1)
    other = creditbook.open(sqlite_database)
    for i in range(20):
        balance = store.submit_credit(op(client_id, 1)).result()
        assert other.ledger.get_client(str(client_id)).balance_cents == balance == i + 1
    other.close()


def test_group_commit_can_be_turned_off(sqlite_database: str) -> None:
    """group_commit=False writes in the caller's thread with the same results."""
    store = SQLiteStore(sqlite_database.removeprefix("sqlite:///"), group_commit=False)
    store.migrate()
    (client_id,) = clients(store, 1)
    assert store.apply_credit(op(client_id, 250)) == 250
    with pytest.raises(errors.InsufficientCredit):
        store.apply_credit(op(client_id, -251))
    store.close()


def test_http_writes_are_batched(book: creditbook.Creditbook, seeded: Seed) -> None:
    """The ledger's Deferred results resolve to the same answers as direct calls."""
    pending = [
        book.ledger.submit_credit(
            clientid=str(seeded.client_id), amount="1.00", description="d", actor=ACTOR
        )
        for _ in range(50)
    ]
    assert [p.result().balance_cents for p in pending] == [100 * (i + 1) for i in range(50)]


# --- group commit on the event loop (the HTTP server's path) -----------------------------------


def test_loop_writes_commit_together_in_order(store: SQLiteStore, sqlite_database: str) -> None:
    """Writes submitted during one loop iteration share one commit; order and refusals hold;
    a fresh connection sees every write when its future resolves; no thread is involved."""
    import asyncio

    a, b = clients(store, 2)
    assert store._on_loop is not None
    other = creditbook.open(sqlite_database)

    async def run() -> list[Any]:
        before = store._committer.batches  # type: ignore[union-attr]
        futures = [store.submit_credit(op(a, 100, f"#{i}")) for i in range(50)]
        futures += [
            store.submit_credit(op(b, -1)),  # refused: nothing to remove
            store.submit_credit(op(999, 5)),  # refused: no such client
            store.submit_credit(op(a, -5000, "all")),
        ]
        assert all(isinstance(f, asyncio.Future) and not f.done() for f in futures)
        outcomes: list[Any] = []
        for f in futures:
            try:
                outcomes.append(await f)  # type: ignore[misc]
            except errors.CreditError as exc:
                outcomes.append(type(exc).__name__)
            # The whole batch is committed before any of its futures resolves.
            assert other.store.count_credits(a) == 51
        assert store._committer.batches - before == 1  # type: ignore[union-attr]
        return outcomes

    outcomes = asyncio.run(run())
    other.close()
    assert outcomes == [100 * (i + 1) for i in range(50)] + [
        "InsufficientCredit",
        "ClientIdNotFound",
        0,
    ]
    assert [e.description for e in store.iter_credits(a, 0, None)][-2:] == ["#49", "all"]
    assert store._committer is not None and store._committer._thread is None  # no writer thread


def test_loop_batch_with_a_failing_unit_retries_each_alone(store: SQLiteStore) -> None:
    """A database error inside a loop batch fails that unit alone; the others commit."""
    import asyncio

    (a,) = clients(store, 1)
    assert store._on_loop is not None

    def broken(cur: Any) -> None:
        cur.execute("INSERT INTO no_such_table VALUES (1)")

    async def run() -> list[Any]:
        loop = asyncio.get_running_loop()
        futures = [
            store.submit_credit(op(a, 500)),
            store._on_loop.submit(broken, loop),  # type: ignore[union-attr]
            store.submit_credit(op(a, -200)),
        ]
        return await settled(futures)

    assert asyncio.run(run()) == [500, "StoreError", 300]
    assert [e.amount_cents for e in store.iter_credits(a, 0, None)] == [500, -200]


def test_a_loop_batch_applies_runs_of_credits_set_based(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of grants in one batch are applied together (``many``), between credits
    with an idempotency key and other writes on the same clients: the outcomes, entries and
    chains are those of one write at a time, in order."""
    import asyncio

    from creditbook.store import many
    from creditbook.store.protocol import IdempotencyKey

    a, b = clients(store, 2)
    assert store._on_loop is not None
    runs: list[int] = []
    apply_grants = many.apply_grants

    def spy(cur: Any, ops: Any, deferred: Any, heads: Any) -> Any:
        runs.append(len(ops))
        return apply_grants(cur, ops, deferred, heads)

    monkeypatch.setattr(many, "apply_grants", spy)

    def keyed(n: int) -> IdempotencyKey:
        return IdempotencyKey("t", f"k{n}", "f", 1.0e9, 3600.0)

    def touch(cur: Any) -> str:
        cur.execute("SELECT 1")
        return "other"

    async def run() -> list[Any]:
        loop = asyncio.get_running_loop()
        before = store._committer.batches  # type: ignore[union-attr]
        futures = [
            store.submit_credit(op(a, 100, "#1")),
            store.submit_credit(op(a, 200, "#2")),
            store.submit_credit(op(b, -1, "refused")),
            store.submit_credit(op(a, 50, "keyed"), keyed(1)),  # after a run, before one
            store.submit_credit(op(a, -350, "#3")),
            store.submit_credit(op(b, 700, "#4")),
            store.submit_credit(op(999, 5, "no client")),
            store._on_loop.submit(touch, loop),  # type: ignore[union-attr]
            store.submit_credit(op(a, 1, "alone")),
            store.submit_credit(op(b, 10, "keyed"), keyed(2)),
            store.submit_credit(op(b, -(10**9), "too much")),
            store.submit_credit(op(a, -1, "#5")),
            store.submit_credit(op(b, -700, "#6")),
        ]
        outcomes = await settled(futures)
        assert store._committer.batches - before == 1  # type: ignore[union-attr]
        return outcomes

    outcomes = asyncio.run(run())
    assert outcomes == [
        100,
        300,
        "InsufficientCredit",
        350,
        0,
        700,
        "ClientIdNotFound",
        "other",
        1,
        710,
        "InsufficientCredit",
        0,
        10,
    ]
    # Runs of grants only ("alone" stays a guarded UPDATE; removals take the row path).
    assert runs == [2, 2]
    assert [e.description for e in store.iter_credits(a, 0, None)] == [
        "#1",
        "#2",
        "keyed",
        "#3",
        "alone",
        "#5",
    ]
    assert [e.balance_cents for e in store.iter_credits(b, 0, None)] == [700, 710, 10]
    assert verify(store).ok


def test_credit_many_commits_once_and_checks_each(
    book: creditbook.Creditbook, seeded: Seed
) -> None:
    """book.credit_many: AddCredit's rules and results per item, in order, one commit."""
    cid = seeded.client_id
    items: list[dict[str, Any]] = [
        {"clientid": cid, "amount": "10", "description": "a"},
        {"clientid": cid, "amount": "x", "description": "bad amount"},
        {"clientid": cid, "amount": "4.5", "description": "b", "type": "remove"},
        {"clientid": cid, "amount": "100", "description": "too much", "type": "remove"},
        {"clientid": 9999, "amount": "1", "description": "nobody"},
        {"clientid": cid, "amount": "0.25", "description": "c"},
    ]
    assert book.credit_many(items) == [
        {"result": "success", "newbalance": "10.00"},
        {"result": "error", "message": "Amount must be in decimal format: ### or ###.##"},
        {"result": "success", "newbalance": "5.50"},
        {"result": "error", "message": "Amount exceeds customer credit balance"},
        {"result": "error", "message": "Client ID Not Found"},
        {"result": "success", "newbalance": "5.75"},
    ]
    _, _, entries = book.ledger.get_credits(str(cid))
    assert [e.description for e in entries] == ["a", "b", "c"]
    assert book.credit_many([{"clientid": cid}], admin_username="nobody") == [
        {"result": "error", "message": "Administrator Not Found"}
    ]
    assert book.credit_many([]) == []


def test_credit_many_equals_one_addcredit_each(book: creditbook.Creditbook) -> None:
    """Random credits and removals on a few clients: ``credit_many`` (one set-based commit on
    SQLite) gives every item, balance, entry and activity line that one AddCredit each gives."""
    rng = random.Random(7)
    pairs = [
        tuple(
            book.ledger.add_client(
                firstname="P", lastname=str(i), email=f"p{i}{side}@example.com", actor=ACTOR
            ).client_id
            for side in "ab"
        )
        for i in range(4)
    ]
    plan = [
        (
            rng.randrange(5),  # 4 is a client that does not exist
            rng.choice(["1", "2.50", "7", "0.01", "99999999999999.99", "x", "0"]),
            rng.choice(["add", "add", "remove", "Remove", "bad"]),
            rng.choice(["", "2026-01-31"]),
        )
        for _ in range(300)
    ]

    def item(side: int, n: int, amount: str, kind: str, date: str) -> dict[str, Any]:
        client = pairs[n][side] if n < 4 else 99_999
        fields = {"clientid": client, "amount": amount, "description": f"d{amount}", "type": kind}
        return {**fields, "date": date} if date else fields

    many = book.credit_many([item(0, *p) for p in plan])
    single = [book.local_api("AddCredit", item(1, *p)) for p in plan]
    assert many == single
    assert len({str(r) for r in many}) > 5  # successes and several kinds of refusal
    for a, b in pairs:
        one, two = book.store.get_client(a), book.store.get_client(b)
        assert one is not None and two is not None
        assert one.balance_cents == two.balance_cents
        assert book.store.count_credits(a) == book.store.count_credits(b)
        history = [book.store.iter_credits(c, 0, None) for c in (a, b)]
        assert [(e.amount_cents, e.balance_cents, e.date, e.description) for e in history[0]] == [
            (e.amount_cents, e.balance_cents, e.date, e.description) for e in history[1]
        ]
        lines = [len(book.ledger.activity(client_id=c, limit=1000)) for c in (a, b)]
        assert lines[0] == lines[1] > 0
    assert verify(book.store).ok


def test_credit_many_reads_values_as_local_api_does(
    book: creditbook.Creditbook, seeded: Seed
) -> None:
    """Numbers, Decimals, booleans, lists and empty text in an item mean what they mean to
    ``local_api``."""
    other = book.ledger.add_client(
        firstname="O", lastname="Other", email="other@example.com", actor=ACTOR
    ).client_id

    def items(cid: int) -> list[dict[str, Any]]:
        return [
            {"clientid": cid, "amount": Decimal("1.10"), "description": "decimal"},
            {"clientid": str(cid), "amount": 2, "description": "int"},
            {"clientid": cid, "amount": 1.25, "description": "float text"},
            {"clientid": cid, "amount": ["1"], "description": "list"},
            {"clientid": cid, "amount": "1", "description": ""},
            {"clientid": cid, "amount": "1", "description": True},
            {"clientid": cid, "amount": "1", "description": "nul\x00"},
            {"clientid": cid, "amount": "1", "description": "ok", "date": None},
        ]

    many = book.credit_many(items(seeded.client_id))
    assert many == [book.local_api("AddCredit", i) for i in items(other)]
    not_a_mapping: Any = [["clientid", seeded.client_id]]
    assert book.credit_many(not_a_mapping) == [book.local_api("AddCredit", {})]
    assert [r["result"] for r in many].count("success") == 5


def test_a_failed_change_stamp_does_not_fail_the_commit(store: SQLiteStore) -> None:
    """The stamp is written after the commit: when it cannot be, the change still stands."""
    import os

    os.mkdir(store.path + "-stamp")  # opening it for writing fails
    book = creditbook.Creditbook(store)
    book.ledger.add_admin("stampless", "pw-0123456789", actor=ACTOR)
    assert book.ledger.find_admin("stampless") is not None


def test_a_change_is_seen_by_another_process_at_once(sqlite_database: str) -> None:
    """Another store on the file (another process) sees a bumped counter on its next read,
    through the shared stamp, and reads the counters only when the stamp moved."""
    server_side, cli_side = creditbook.open(sqlite_database), creditbook.open(sqlite_database)
    before = server_side.store.versions()
    assert server_side.store.versions() == before
    cli_side.ledger.add_admin("late", "pw-0123456789", actor=ACTOR)
    cli_side.store.record_auth_failure("192.0.2.1", 1.0, 0)
    after = server_side.store.versions()
    assert after == cli_side.store.versions()
    assert after[0] > before[0] and after[1] > before[1]
    reads = []
    original = SqlStore.versions

    def counted(self: Any) -> tuple[int, int]:
        reads.append(1)
        return original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SqlStore, "versions", counted)
        assert [server_side.store.versions() for _ in range(3)] == [after] * 3
    assert reads == []  # nothing moved: the cached counters, no query
    server_side.close()
    cli_side.close()


def test_loop_batches_on_both_stores(any_store: Any) -> None:
    """On an event loop, both stores batch credits on the loop itself: order and refusals hold."""
    import asyncio

    a, b = clients(any_store, 2)

    async def run() -> list[Any]:
        futures = [any_store.submit_credit(op(a, 100)) for _ in range(20)]
        futures += [any_store.submit_credit(op(b, -1)), any_store.submit_credit(op(a, -2000))]
        assert all(isinstance(f, asyncio.Future) for f in futures)
        return await settled(futures)

    assert asyncio.run(run()) == [100 * (i + 1) for i in range(20)] + ["InsufficientCredit", 0]


def paused_checkpointer(store: SQLiteStore) -> Checkpointer:
    """The store's checkpointer, its connection open and its thread stopped: the test drives
    it (``store.checkpoint()``) and no background pass touches the WAL meanwhile."""
    store.checkpoint()  # opens the checkpointer's connection
    checkpointer = store._checkpointer
    assert checkpointer is not None and checkpointer._conn is not None
    checkpointer._stop.set()
    checkpointer._thread.join()
    return checkpointer


def test_a_checkpoint_copies_its_backlog_without_the_writer_lock(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL is copied while writers can commit; only the last, short pass holds their lock."""
    import fcntl
    import os
    from types import SimpleNamespace

    (client_id,) = clients(store, 1)
    checkpointer = paused_checkpointer(store)
    for i in range(200):
        store.submit_credit(op(client_id, 1, f"c{i}")).result()
    passes: list[tuple[bool, tuple[int, int, int]]] = []
    conn = checkpointer._conn

    def watched(sql: str) -> SimpleNamespace:
        fd = os.open(store.path + "-writer.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            free = True
        except BlockingIOError:
            free = False
        finally:
            os.close(fd)
        row = conn.execute(sql).fetchone()
        passes.append((free, row))
        return SimpleNamespace(fetchone=lambda: row)

    monkeypatch.setattr(checkpointer, "_conn", SimpleNamespace(execute=watched, close=conn.close))
    frames = store.checkpoint()
    (free1, (busy1, log1, copied1)), (free2, (busy2, log2, copied2)) = passes
    assert free1 and busy1 == 0 and copied1 == log1 > 200  # the whole backlog, writers free
    assert not free2 and busy2 == 0 and copied2 == log2 == log1 == frames  # nothing left


def test_a_checkpoint_found_busy_is_tried_again(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When another process's checkpoint is copying, the locked pass is retried next time."""
    from types import SimpleNamespace

    clients(store, 1)  # the first write starts the checkpointer
    checkpointer = paused_checkpointer(store)
    conn = checkpointer._conn
    busy = SimpleNamespace(fetchone=lambda: (1, -1, -1))  # SQLite's answer when blocked
    monkeypatch.setattr(
        checkpointer, "_conn", SimpleNamespace(execute=lambda sql: busy, close=conn.close)
    )
    store.checkpoint()
    assert checkpointer.pending == 1


def test_checkpoints_run_off_the_commit_path(store: SQLiteStore) -> None:
    """Commits never checkpoint; the background checkpointer keeps the WAL from growing."""
    import os

    (client_id,) = clients(store, 1)
    frames = []
    for _ in range(6):
        for i in range(300):
            store.submit_credit(op(client_id, 1, f"c{i}")).result()
        frames.append(store.checkpoint())  # also done by the thread, ten times a second
    # 1,800 commits write about 10,000 WAL frames; restarted after each checkpoint, the WAL
    # holds only what came since the last one.
    assert 0 < max(frames) < 4000
    assert os.path.getsize(store.path + "-wal") < 64 * 1024 * 1024
    conn = store._conn()[0]
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert store._checkpointer is not None and store._checkpointer._thread.is_alive()
    store.close()
    assert store._checkpointer is None
