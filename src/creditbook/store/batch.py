"""Group commit: concurrent writes are committed together, one transaction and one fsync.

Callers hand over a unit of work and get a future. Everything queued runs in one transaction,
which commits once, and only then are the futures resolved: nothing is acknowledged before it
is durable. A unit refuses with a ``CreditError`` *before it writes anything* (the contract every
unit keeps: credits refuse when their guarded UPDATE matches no row, AddClient checks the
address first), so a refusal needs no savepoint and the others in the batch commit. If anything
else fails (the database, a statement), the transaction rolls back and each unit is retried in
a transaction of its own, so one bad unit never fails another.

Three collectors share that commit:

- ``loop.LoopCommitter`` for callers on an event loop (the HTTP server): writes submitted while
  the loop runs its ready callbacks are committed together by one callback scheduled with
  ``loop.call_soon``, and their futures are resolved on the loop. No thread hand-off, no
  cross-thread wake-up; the commit briefly holds the loop, which is when the next batch forms.
- ``loop.OffloadCommitter`` for callers on an event loop when a batch is one round trip to a
  database server (PostgreSQL): a helper thread waits for the commit while the loop serves.
- ``GroupCommitter`` for blocking callers in threads (``local_api``, the CLI): a writer thread
  takes everything queued; a lone write from an idle writer commits in the caller's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Generic, Protocol, TypeVar

from .. import metrics
from ..errors import CreditError

Cursor = Any
Item = TypeVar("Item")

log = logging.getLogger("creditbook")


class Collector(Generic[Item]):
    """A writer thread that hands everything queued to ``_process`` as one batch."""

    def __init__(self, max_batch: int = 512) -> None:
        self._max = max_batch
        self._queue: queue.SimpleQueue[tuple[Item, Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy = threading.Lock()  # held while a batch is being applied
        self._pending = 0  # queued and not yet applied
        self.batches = 0
        self.units = 0

    def submit(self, item: Item, *, inline: bool = False) -> Future[Any]:
        """Queue an item; its future resolves after the commit that includes it.

        ``inline`` is for callers that will block on the future anyway (threads, not an event
        loop): when nothing is queued or being applied, the item is committed at once in the
        caller's thread, saving the hand-off to the writer. Queued items keep their order.
        """
        future: Future[Any] = Future()
        if inline and self._pending == 0 and self._busy.acquire(blocking=False):
            try:
                future.set_running_or_notify_cancel()
                metrics.BATCH.observe(1)
                self._process([(item, future)])
            finally:
                self._busy.release()
            return future
        if self._thread is None or not self._thread.is_alive():
            self._start()
        with self._lock:
            self._pending += 1
        self._queue.put((item, future))
        return future

    def process(self, batch: list[tuple[Item, Future[Any]]]) -> None:
        """Apply a batch in the caller's thread and resolve every future in it."""
        self._process(batch)

    def _process(self, batch: list[tuple[Item, Future[Any]]]) -> None:
        """Apply a batch and resolve every future in it."""
        raise NotImplementedError

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="creditbook-writer", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Finish queued work and stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            live = [unit for unit in batch if unit[1].set_running_or_notify_cancel()]
            metrics.BATCH.observe(len(live))
            with self._busy:
                if live:
                    self._process(live)
            with self._lock:
                self._pending -= len(batch)
            if stop:
                return


class Settleable(Protocol):
    """A future of either kind (``concurrent.futures`` or ``asyncio``)."""

    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


Write = Callable[[], AbstractContextManager[Cursor]]
Work = Callable[[Cursor], Any]


class Stats:
    """Counters of committed batches and units (for tests, the benchmark and metrics)."""

    def __init__(self) -> None:
        self.batches = 0
        self.units = 0


Unit = tuple[Work, Settleable]
#: A unit's future, whether the unit was applied, and its value or refusal.
Outcome = tuple[Settleable, bool, Any]
#: Runs a batch's units in order in the open transaction (a store may apply runs of like
#: units together).
Apply = Callable[[Cursor, Sequence[Unit]], list[Outcome]]


def apply_each(cur: Cursor, batch: Sequence[Unit]) -> list[Outcome]:
    """Run each unit in turn; a refusal (``CreditError``) is its outcome, not a failure."""
    results: list[Outcome] = []
    for work, future in batch:
        try:
            results.append((future, True, work(cur)))
        except CreditError as exc:  # refused before writing: nothing to undo
            results.append((future, False, exc))
    return results


def commit_units(
    write: Write, batch: Sequence[Unit], stats: Stats, apply: Apply = apply_each
) -> None:
    """Run every unit in one transaction, commit once, then settle each unit's future."""
    if len(batch) == 1:
        if transact_into(batch[0][1], write, batch[0][0]):
            stats.batches += 1
            stats.units += 1
        return
    try:
        with write() as cur:
            results = apply(cur, batch)
    except BaseException as exc:  # noqa: BLE001 the transaction failed as a whole
        log.warning("batch of %d failed (%s): retrying each write alone", len(batch), exc)
        for work, future in batch:
            if transact_into(future, write, work):
                stats.batches += 1
                stats.units += 1
        return
    stats.batches += 1
    stats.units += len(results)
    for future, ok, value in results:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class GroupCommitter(Collector[Work], Stats):
    """Group commit of units of work from blocking callers, on a writer thread."""

    def __init__(self, write: Write, apply: Apply = apply_each, max_batch: int = 512) -> None:
        Collector.__init__(self, max_batch)
        Stats.__init__(self)
        self._write = write
        self._apply = apply

    def _process(self, batch: list[tuple[Work, Future[Any]]]) -> None:
        commit_units(self._write, batch, self, self._apply)


def outcomes(futures: Sequence[Future[Any]]) -> list[Any]:
    """The values of settled futures, a refusal (``CreditError``) standing in for its value.

    Any other failure is raised.
    """
    out: list[Any] = []
    for future in futures:
        try:
            out.append(future.result())
        except CreditError as exc:
            out.append(exc)
    return out


def settle(future: Settleable, fn: Callable[[], Any]) -> bool:
    """Run ``fn()`` and settle ``future`` with its value or its exception; True on success."""
    try:
        value = fn()
    except BaseException as exc:  # noqa: BLE001 handed to the caller through the future
        future.set_exception(exc)
        return False
    future.set_result(value)
    return True


def transact_into(future: Settleable, write: Write, work: Work) -> bool:
    """Run ``work(cur)`` in one write transaction and settle ``future``; True when committed."""

    def run() -> Any:
        with write() as cur:
            return work(cur)

    return settle(future, run)
