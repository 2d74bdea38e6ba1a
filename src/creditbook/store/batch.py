"""Group commit: one writer thread collects concurrent writes and commits them together.

Callers hand the writer a unit of work and get a future. The writer takes everything queued,
runs each unit in its own savepoint inside one transaction, commits once (one fsync), and only
then resolves the futures: nothing is acknowledged before it is durable. A unit refused with a
``CreditError`` is rolled back to its savepoint alone; if anything else fails (the database, a
unit's statement), each unit is retried in a transaction of its own so that one bad unit never
fails another. With nothing queued the writer sleeps on the queue, and a lone write is committed
at once: there is no batching delay.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from ..errors import CreditError

Cursor = Any
Item = TypeVar("Item")
Unit = tuple[Callable[[Cursor], Any], Future[Any]]

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
            with self._busy:
                if live:
                    self._process(live)
            with self._lock:
                self._pending -= len(batch)
            if stop:
                return


class GroupCommitter(Collector[Callable[[Cursor], Any]]):
    """Group commit of arbitrary units of work, each in its own savepoint."""

    def __init__(
        self, write: Callable[[], AbstractContextManager[Cursor]], max_batch: int = 512
    ) -> None:
        super().__init__(max_batch)
        self._write = write

    def _process(self, batch: list[Unit]) -> None:
        self._commit(batch)

    def _commit(self, batch: list[Unit]) -> None:
        if len(batch) == 1:
            self._commit_one(*batch[0])
            return
        results: list[tuple[Future[Any], bool, Any]] = []
        try:
            with self._write() as cur:
                for work, future in batch:
                    cur.execute("SAVEPOINT unit")
                    try:
                        value = work(cur)
                    except CreditError as exc:  # a refusal: this unit alone is undone
                        cur.execute("ROLLBACK TO unit")
                        results.append((future, False, exc))
                    else:
                        results.append((future, True, value))
                    cur.execute("RELEASE unit")
        except BaseException as exc:  # noqa: BLE001 the transaction failed as a whole
            log.warning("batch of %d failed (%s): retrying each write alone", len(batch), exc)
            for work, future in batch:
                self._commit_one(work, future)
            return
        self.batches += 1
        self.units += len(results)
        for future, ok, value in results:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _commit_one(self, work: Callable[[Cursor], Any], future: Future[Any]) -> None:
        """A lone write needs no savepoint: an error rolls back its own transaction."""
        if transact_into(future, self._write, work):
            self.batches += 1
            self.units += 1


def settle(future: Future[Any], fn: Callable[[], Any]) -> bool:
    """Run ``fn()`` and settle ``future`` with its value or its exception; True on success."""
    try:
        value = fn()
    except BaseException as exc:  # noqa: BLE001 handed to the caller through the future
        future.set_exception(exc)
        return False
    future.set_result(value)
    return True


def transact_into(
    future: Future[Any],
    write: Callable[[], AbstractContextManager[Cursor]],
    work: Callable[[Cursor], Any],
) -> bool:
    """Run ``work(cur)`` in one write transaction and settle ``future``; True when committed."""

    def run() -> Any:
        with write() as cur:
            return work(cur)

    return settle(future, run)
