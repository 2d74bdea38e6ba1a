"""PostgreSQL's group commit on the event loop: a helper thread waits for each batch's commit
while the loop goes on serving, and what arrives meanwhile forms the next batch. A credit that
arrives alone is one statement, which writes what the batch function writes; a batch's arrays
travel as PostgreSQL's array text."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import Future
from typing import Any

import psycopg

import creditbook
from conftest import new_pg_database
from creditbook import errors
from creditbook.audit import verify
from creditbook.errors import InsufficientCredit
from creditbook.model import Actor
from creditbook.store import CreditOp
from creditbook.store.loop import OffloadCommitter
from creditbook.store.pg_credit import int_array, text_array
from creditbook.store.postgres import PostgresStore
from helpers import ACTOR, settled
from pgserver import PostgresServer

Units = list[tuple[int, Future[Any]]]


class Recorder:
    """A batch function: doubles each item, refuses negatives, fails a batch holding 13."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, units: Units) -> None:
        assert self.release.wait(5), "the loop never let the batch finish"
        self.batches.append([item for item, _ in units])
        self.threads.add(threading.current_thread().name)
        if 13 in self.batches[-1]:
            raise errors.StoreError("the server went away")
        for item, future in units:
            if item < 0:
                future.set_exception(errors.InsufficientCredit())
            else:
                future.set_result(item * 2)


def test_a_lone_write_commits_on_the_loop() -> None:
    """One write with nothing in flight is applied at once, without a thread hop."""
    process = Recorder()
    committer: OffloadCommitter[int] = OffloadCommitter(process)

    async def run() -> list[Any]:
        return await settled([committer.submit(4, asyncio.get_running_loop())])

    assert asyncio.run(run()) == [8]
    assert process.threads == {"MainThread"} and committer._pool is None
    committer.close()


def test_the_loop_serves_while_a_batch_is_in_flight() -> None:
    """While the helper waits for the commit, the loop runs on; writes queued meanwhile form
    the next batch, in order; refusals and a failed batch settle only their own futures."""
    process = Recorder()
    committer: OffloadCommitter[int] = OffloadCommitter(process)

    async def run() -> list[Any]:
        loop = asyncio.get_running_loop()
        process.release.clear()
        first = [committer.submit(i, loop) for i in (1, 2, -3)]
        ticks = 0
        for _ in range(10):  # the loop is free: other work runs while the batch waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 10 and not any(f.done() for f in first)
        second = [committer.submit(i, loop) for i in (4, 13)]
        third_later = [5, 6]
        process.release.set()
        outcomes = await settled(first + second)
        outcomes += await settled([committer.submit(i, loop) for i in third_later])
        return outcomes

    assert asyncio.run(run()) == [2, 4, "InsufficientCredit", "StoreError", "StoreError", 10, 12]
    assert process.batches == [[1, 2, -3], [4, 13], [5, 6]]
    assert any(name.startswith("creditbook-writer") for name in process.threads)
    committer.close()
    assert committer._pool is None


def test_postgres_credits_on_the_loop(postgres: PostgresServer) -> None:
    """On PostgreSQL, credits submitted on a loop commit together, in order, refusals apart,
    and each is visible to another connection when its future resolves."""
    url = new_pg_database(postgres)
    with creditbook.open(url) as book, creditbook.open(url) as other:
        store = book.store
        assert isinstance(store, PostgresStore) and store._on_loop is not None
        client = book.ledger.add_client(
            firstname="O", lastname="Loop", email="o@example.com", actor=ACTOR
        ).client_id

        def op(cents: int, text: str) -> CreditOp:
            return CreditOp(
                client, cents, "2026-01-01", text, 0, Actor("t"), "2026-01-01T00:00:00Z"
            )

        async def run() -> list[Any]:
            futures = [store.submit_credit(op(100, f"#{i}")) for i in range(40)]
            futures.append(store.submit_credit(op(-(10**9), "too much")))
            futures += [store.submit_credit(op(-50, f"late {i}")) for i in range(5)]
            outcomes: list[Any] = []
            for future in futures:
                outcomes += await settled([future])
                assert other.store.count_credits(client) >= len(
                    [o for o in outcomes if isinstance(o, int)]
                )
            return outcomes

        outcomes = asyncio.run(run())
        assert outcomes == [100 * (i + 1) for i in range(40)] + ["InsufficientCredit"] + [
            4000 - 50 * (i + 1) for i in range(5)
        ]
        assert store._on_loop.batches == 1  # submitted in one loop iteration: one commit
        assert [e.description for e in store.iter_credits(client, 0, None)][-1] == "late 4"


def test_a_credit_alone_writes_what_the_batch_function_writes(postgres: PostgresServer) -> None:
    """A lone grant (one statement) and the same grants in a batch (the function) leave the
    same entries, hash chains, activity lines and events (balance.recovered with them), and
    the same refusals (the batch function applies plain grants; removals take the row path)."""
    url = new_pg_database(postgres)
    book = creditbook.open(url)
    store = book.store
    assert isinstance(store, PostgresStore)
    alone, batched = (
        book.ledger.add_client(
            firstname="b", lastname=name, email=f"{name}@example.com", actor=ACTOR
        ).client_id
        for name in ("alone", "batched")
    )
    store.add_endpoint("http://127.0.0.1:9/hook", ("*",), "", ACTOR, "2026-01-01T00:00:00Z")
    amounts = [500, 200, 10**16, 1000, 1, 301]
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE clients SET low_below = 600")
    actor = Actor('api:k "q" \\', admin_id=3, ip="192.0.2.7")

    def credit(client_id: int, i: int, cents: int) -> CreditOp:
        text = f'#{i} crédit | ünïcode "q" \\ {{a,b}} NULL\t\n ,'
        return CreditOp(client_id, cents, "2026-02-03", text, 4, actor, "2026-02-03T04:05:06Z")

    one_by_one = [store._apply_batch([credit(alone, i, c)])[0] for i, c in enumerate(amounts)]
    together = store._apply_batch([credit(batched, i, c) for i, c in enumerate(amounts)])
    assert [row[1:] for row in one_by_one] == [row[1:] for row in together]
    assert [row[2] for row in together] == ["ok", "ok", "limit", "ok", "ok", "ok"]
    assert store._apply_batch([credit(10**9, 0, 1)]) == [(1, None, "notfound")]

    def written(client_id: int) -> list[list[Any]]:
        with psycopg.connect(url) as conn:
            return [
                conn.execute(sql, (client_id,)).fetchall()
                for sql in (
                    "SELECT seq, admin_id, date, description, amount_cents, balance_cents,"
                    " relid, created_at, actor, kind, category, expires, remaining"
                    " FROM credits WHERE client_id = %s ORDER BY seq",
                    "SELECT a.at, a.actor, a.admin_id, a.ip, a.action, a.detail, a.via_entry"
                    " FROM credits c JOIN activity a ON a.id = c.activity_id"
                    " AND a.client_id = c.client_id WHERE c.client_id = %s ORDER BY c.seq",
                    "SELECT type, seq, at, data FROM events WHERE client_id = %s ORDER BY id",
                    "SELECT balance_cents, entries, open_from FROM clients WHERE id = %s",
                )
            ]

    assert written(alone) == written(batched)
    assert len(written(alone)[1]) == 5
    kinds = ["credit.added"] * 2 + ["balance.recovered"] + ["credit.added"] * 3
    assert [e[0] for e in written(alone)[2]] == kinds
    assert written(alone)[2][2][3] == '{"previous_balance":"5.00","threshold":"6.00"}'
    assert written(alone)[3] == [(2002, 5, 1)]
    assert verify(store).problems == []
    book.close()


def test_array_text_reaches_postgresql_unchanged(postgres: PostgresServer) -> None:
    """The batch's arrays, sent as PostgreSQL's array text, arrive element for element."""
    rng = random.Random(7)
    alphabet = "ab ,{}\"\\'\t\n\r\u00e9\u20ac\U0001f600NUL()[]"
    texts = ["", " ", "NULL", "null", '"', "\\", "{}", "a,b", " lead", "trail ", '\\"']
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    numbers = [0, -1, 1, 2**63 - 1, -(2**63)] + [rng.randint(-(10**12), 10**12) for _ in range(50)]
    with psycopg.connect(postgres.url()) as conn:
        got = conn.execute(
            "SELECT %s::text[], %s::bigint[], %s::text[]",
            (text_array(texts), int_array(numbers), text_array([])),
        ).fetchone()
    assert got == (texts, numbers, [])


def test_lone_credits_racing_on_one_client_chain_in_order(postgres: PostgresServer) -> None:
    """Lone credits from many connections at once on one client, grants by the one statement
    and removals by the row path (which allocates): each locks the client, so balances run
    exactly, sequence numbers have no gap and the chain and the grants verify."""
    url = new_pg_database(postgres)
    store = PostgresStore(url, pool_size=8)
    store.migrate()
    book = creditbook.Creditbook(store)
    client_id = book.ledger.add_client(
        firstname="r", lastname="race", email="race@example.com", actor=ACTOR
    ).client_id
    outcomes: list[tuple[int, int | None, str]] = []

    def work(n: int) -> None:
        for i in range(25):
            cents = 300 if (n + i) % 3 else -500
            op = CreditOp(client_id, cents, "2026-01-01", f"{n}/{i}", 0, ACTOR, "2026-01-01")
            if cents > 0:
                outcomes.extend(store._apply_batch([op]))
                continue
            try:
                outcomes.append((1, int(store.apply_credit(op)), "ok"))  # type: ignore[arg-type]
            except InsufficientCredit:
                outcomes.append((1, None, "insufficient"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    applied = sorted(row[1] for row in outcomes if row[2] == "ok" and row[1] is not None)
    assert len(outcomes) == 200 and {row[2] for row in outcomes} <= {"ok", "insufficient"}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seq, amount_cents, balance_cents FROM credits WHERE client_id = %s"
            " ORDER BY seq",
            (client_id,),
        ).fetchall()
    assert [seq for seq, _, _ in rows] == list(range(1, len(applied) + 1))
    running = 0
    for _, amount, balance in rows:
        running += amount
        assert balance == running >= 0
    assert sorted(balance for _, _, balance in rows) == applied
    assert verify(store).problems == []
    book.close()
