"""Group commit on the caller's event loop (the HTTP server): the two committers for loops.

``LoopCommitter`` applies each batch on the loop itself (SQLite, whose writes are Python work
under one file lock); ``OffloadCommitter`` hands each batch to a helper thread that waits for a
database server (PostgreSQL) while the loop goes on. ``batch`` has the commit they share.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, Protocol

from .. import metrics
from .batch import Item


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
