"""The event loop never blocks on SQLite's writer lock: a helper thread waits for it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from typing import Any

import pytest

import creditbook
from creditbook import errors
from creditbook.model import Actor
from creditbook.store import CreditOp
from creditbook.store.loop import LoopCommitter
from creditbook.store.sqlite import SQLiteStore
from helpers import ACTOR, settled


def op(client_id: int, cents: int, text: str = "g") -> CreditOp:
    return CreditOp(client_id, cents, "2026-01-01", text, 0, Actor("t"), "2026-01-01T00:00:00Z")


@pytest.fixture
def book(sqlite_database: str) -> Any:
    b = creditbook.open(sqlite_database)
    yield b
    b.close()


def test_the_loop_goes_on_while_another_writer_holds_the_lock(book: creditbook.Creditbook) -> None:
    """Another process (here: another descriptor) holds the writer lock: the loop keeps running
    and queueing; once the lock is free every queued write commits in one batch, in order."""
    store = book.store
    assert isinstance(store, SQLiteStore) and store._committer is not None
    client = book.ledger.add_client(
        firstname="G", lastname="Gate", email="g@example.com", actor=ACTOR
    ).client_id
    other = os.open(store.path + "-writer.lock", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    # Should the loop block on the lock after all, this frees it, and the test fails instead
    # of hanging.
    rescue = threading.Timer(3.0, fcntl.flock, (other, fcntl.LOCK_UN))
    rescue.start()

    async def run() -> list[Any]:
        before = store._committer.batches  # type: ignore[union-attr]
        futures = [store.submit_credit(op(client, 100, f"#{i}")) for i in range(20)]
        ticks = 0
        for _ in range(20):  # the loop is free: other work runs while the writes wait
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 20 and not any(f.done() for f in futures)  # type: ignore[union-attr]
        futures += [store.submit_credit(op(client, -50, f"late {i}")) for i in range(10)]
        futures.append(store.submit_credit(op(client, -(10**9), "too much")))
        fcntl.flock(other, fcntl.LOCK_UN)
        outcomes = await settled(futures)
        assert store._committer.batches - before == 1  # type: ignore[union-attr]
        return outcomes

    try:
        outcomes = asyncio.run(run())
    finally:
        rescue.cancel()
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    assert outcomes == [100 * (i + 1) for i in range(20)] + [
        2000 - 50 * (i + 1) for i in range(10)
    ] + ["InsufficientCredit"]
    entries = list(store.iter_credits(client, 0, None))
    assert [e.description for e in entries][:2] == ["#0", "#1"]
    assert entries[-1].description == "late 9" and entries[-1].balance_cents == 1500
    # The loop's lock was released: another writer gets it (once the checkpointer, which also
    # takes it after writes, is done).
    probe = os.open(store.path + "-writer.lock", os.O_RDWR)
    try:
        for _ in range(200):
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.01)
        else:
            pytest.fail("the writer lock was never released")
    finally:
        os.close(probe)


class FakeGate:
    """A lock that is busy for the first ``busy`` attempts to take it without waiting."""

    def __init__(self, busy: int, fail: bool = False) -> None:
        self.busy = busy
        self.fail = fail
        self.held = False
        self.waits = 0
        self.releases = 0
        self.threads: set[str] = set()

    def try_acquire(self) -> bool:
        if self.fail:
            raise errors.StoreError("cannot open the database")
        if self.busy:
            self.busy -= 1
            return False
        self.held = True
        return True

    def wait(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.waits += 1

    def release(self) -> None:
        assert self.held
        self.held = False
        self.releases += 1


def run_batches(gate: FakeGate) -> list[list[int]]:
    batches: list[list[int]] = []

    def process(batch: list[tuple[int, Any]]) -> None:
        assert gate.fail or gate.held  # applied under the lock
        batches.append([item for item, _ in batch])
        for item, future in batch:
            future.set_result(item)

    committer: LoopCommitter[int] = LoopCommitter(process, gate=gate)

    async def run() -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(committer.submit(i, loop) for i in range(5))))

    try:
        assert asyncio.run(run()) == list(range(5))
    finally:
        committer.close()
    return batches


def test_a_lock_lost_after_the_wait_is_waited_for_again() -> None:
    """flock belongs to the descriptor: if another write of the loop's thread released it after
    the helper took it, the loop does not assume it holds it, and the helper waits again."""
    gate = FakeGate(busy=2)
    assert run_batches(gate) == [[0, 1, 2, 3, 4]]
    assert gate.waits == 2 and gate.threads == {"creditbook-lock"}
    assert gate.releases == 1 and not gate.held


def test_a_free_lock_is_taken_on_the_loop_without_a_helper() -> None:
    gate = FakeGate(busy=0)
    assert run_batches(gate) == [[0, 1, 2, 3, 4]]
    assert gate.waits == 0 and gate.releases == 1


def test_a_broken_lock_leaves_each_write_to_report_it() -> None:
    """When the lock cannot be taken at all, the batch is still applied (each write then takes
    the lock itself, and reports its failure through its own future)."""
    gate = FakeGate(busy=0, fail=True)
    assert run_batches(gate) == [[0, 1, 2, 3, 4]]
    assert gate.releases == 0
