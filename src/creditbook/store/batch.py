"""Group commit: concurrent writes are committed together, one transaction and one fsync.

Callers hand over a unit of work and get a future. Everything queued runs in one transaction,
which commits once, and only then are the futures resolved: nothing is acknowledged before it
is durable. A unit refuses with a ``CreditError`` *before it writes anything* (the contract every
unit keeps: credits refuse when their guarded UPDATE matches no row, AddClient checks the
address first), so a refusal needs no savepoint and the others in the batch commit. If anything
else fails (the database, a statement), the transaction rolls back and each unit is retried in
a transaction of its own, so one bad unit never fails another.

Three collectors share that commit:

- ``LoopCommitter`` for callers on an event loop (the HTTP server): writes submitted while the
  loop runs its ready callbacks are committed together by one callback scheduled with
  ``loop.call_soon``, and their futures are resolved on the loop. No thread hand-off, no
  cross-thread wake-up; the commit briefly holds the loop, which is when the next batch forms.
- ``OffloadCommitter`` for callers on an event loop when a batch is one round trip to a
  database server (PostgreSQL): a helper thread waits for the commit while the loop serves.
- ``GroupCommitter`` for blocking callers in threads (``local_api``, the CLI): a writer thread
  takes everything queued; a lone write from an idle writer commits in the caller's thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


def commit_units(write: Write, batch: Sequence[tuple[Work, Settleable]], stats: Stats) -> None:
    """Run every unit in one transaction, commit once, then settle each unit's future."""
    if len(batch) == 1:
        if transact_into(batch[0][1], write, batch[0][0]):
            stats.batches += 1
            stats.units += 1
        return
    results: list[tuple[Settleable, bool, Any]] = []
    try:
        with write() as cur:
            for work, future in batch:
                try:
                    results.append((future, True, work(cur)))
                except CreditError as exc:  # refused before writing: nothing to undo
                    results.append((future, False, exc))
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

    def __init__(self, write: Write, max_batch: int = 512) -> None:
        Collector.__init__(self, max_batch)
        Stats.__init__(self)
        self._write = write

    def _process(self, batch: list[tuple[Work, Future[Any]]]) -> None:
        commit_units(self._write, batch, self)


class Gate(Protocol):
    """A writer lock the loop takes without waiting, or waits for on another thread."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free (on the loop); False when someone else holds it."""

    def wait(self) -> None:
        """Block until the lock is taken for the loop (on a helper thread)."""

    def release(self) -> None:
        """Release the lock (on the loop)."""


class LoopCommitter(Generic[Item]):
    """Group commit on the caller's event loop: one ``call_soon`` callback per batch.

    ``process`` applies a batch and settles its futures: ``commit_units`` for SQL units, or a
    store's own batch call. With a ``gate`` (SQLite's writer lock, shared with other processes
    and the checkpointer), the loop never blocks on the lock: when it is held elsewhere, a
    helper thread waits for it while the loop goes on reading requests, and the batch, grown
    meanwhile, is applied on the loop once the lock is taken.
    """

    def __init__(
        self,
        process: Callable[[list[tuple[Item, Any]]], None],
        max_batch: int = 512,
        gate: Gate | None = None,
    ) -> None:
        self._process = process
        self._max = max_batch
        self._queue: list[tuple[Item, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._gate = gate
        self._waiting = False
        self._waiter: queue.SimpleQueue[asyncio.AbstractEventLoop | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, item: Item, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
        """Queue an item; its future resolves on the loop after the commit that includes it."""
        future = loop.create_future()
        self._queue.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        gate = self._gate
        if gate is None:
            self._drain()
            return
        if self._waiting:
            return  # the helper is waiting for the lock; the queue is drained when it has it
        self._locked(True)

    def _locked(self, free: bool) -> None:
        """Apply everything queued under the lock, or have the helper wait for it."""
        assert self._gate is not None
        self._waiting = False
        try:
            # Taken again here even after the helper's wait: a descriptor's lock can be
            # released by another write of the same thread in between (flock is per open file).
            taken = free and self._gate.try_acquire()
        except Exception:  # noqa: BLE001 each write takes the lock itself and reports it
            self._drain()
            return
        if not taken and free:
            self._waiting = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._wait, args=(self._gate,), name="creditbook-lock", daemon=True
                )
                self._thread.start()
            self._waiter.put(asyncio.get_running_loop())
            return
        if not taken:
            self._drain()  # the helper could not take it: each write tries and reports
            return
        try:
            self._drain()
        finally:
            self._gate.release()

    def _wait(self, gate: Gate) -> None:
        while (loop := self._waiter.get()) is not None:
            try:
                gate.wait()
            except Exception:  # noqa: BLE001 the loop then lets each write report it
                taken = False
            else:
                taken = True
            try:
                loop.call_soon_threadsafe(self._locked, taken)
            except RuntimeError:  # the loop is closed: nobody waits for these writes
                if taken:
                    gate.release()

    def _drain(self) -> None:
        queued, self._queue = self._queue, []
        live = [unit for unit in queued if not unit[1].cancelled()]
        for start in range(0, len(live), self._max):
            chunk = live[start : start + self._max]
            metrics.BATCH.observe(len(chunk))
            self._process(chunk)

    def close(self) -> None:
        """Stop the helper thread."""
        if self._thread is not None and self._thread.is_alive():
            self._waiter.put(None)
            self._thread.join(timeout=5)
        self._thread = None


class OffloadCommitter(Generic[Item]):
    """Group commit for a batch that is one round trip to a database server (PostgreSQL).

    Writes queue on the event loop; one batch at a time goes to a helper thread, which waits
    for the server's commit (without the GIL) while the loop goes on reading requests: what
    arrives meanwhile is the next batch, sent when the first returns. ``process`` applies a
    batch and settles ``concurrent.futures``; their outcomes are copied to the loop's futures
    on the loop.
    """

    def __init__(
        self, process: Callable[[list[tuple[Item, Future[Any]]]], None], max_batch: int = 512
    ) -> None:
        self._process = process
        self._max = max_batch
        self._queue: list[tuple[Item, asyncio.Future[Any]]] = []
        self._busy = False
        self._pool: ThreadPoolExecutor | None = None
        self.batches = 0

    def submit(self, item: Item, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
        """Queue an item; its future resolves on the loop after the commit that includes it."""
        future = loop.create_future()
        self._queue.append((item, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._send, loop)  # after this iteration's other requests queue
        return future

    def _send(self, loop: asyncio.AbstractEventLoop) -> None:
        live: list[tuple[Item, asyncio.Future[Any]]] = []
        while self._queue and not live:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            live = [unit for unit in batch if not unit[1].cancelled()]
        if not live:
            self._busy = False
            return
        metrics.BATCH.observe(len(live))
        units: list[tuple[Item, Future[Any]]] = [(item, Future()) for item, _ in live]
        if len(units) == 1:
            # A lone write (an idle service): the thread's two wake-ups would cost its caller
            # more than the loop, with nothing else to serve, loses by waiting.
            ran = loop.create_future()
            try:
                self._process(units)
            except Exception as exc:  # noqa: BLE001 settled below as the write's failure
                ran.set_exception(exc)
            else:
                ran.set_result(None)
            self._settle(loop, live, units, ran)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="creditbook-writer")
        try:
            done = loop.run_in_executor(self._pool, self._process, units)
        except RuntimeError as exc:  # the pool is shut down: the store is closing
            self._busy = False
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        done.add_done_callback(lambda ran: self._settle(loop, live, units, ran))

    def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        live: list[tuple[Item, asyncio.Future[Any]]],
        units: list[tuple[Item, Future[Any]]],
        ran: asyncio.Future[None],
    ) -> None:
        self.batches += 1
        failure = ran.exception() if not ran.cancelled() else None
        for (_, target), (_, source) in zip(live, units, strict=True):
            if target.done():
                continue  # cancelled by its caller
            if not source.done():
                target.set_exception(failure or RuntimeError("the batch was not applied"))
            elif (exc := source.exception()) is not None:
                target.set_exception(exc)
            else:
                target.set_result(source.result())
        self._send(loop)

    def close(self) -> None:
        """Finish the batch in flight and stop the helper thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


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
