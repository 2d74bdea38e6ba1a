"""A write in flight, and the outcome an idempotency key recorded: shared by the use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from . import errors
from .store import Replay, Waitable

T = TypeVar("T")
U = TypeVar("U")


def recorded(replay: Replay) -> int:
    """Return the value recorded under an idempotency key, or raise the recorded error."""
    if "error" in replay.outcome:
        exc = errors.CreditError(str(replay.outcome["error"]))
        exc.status = int(str(replay.outcome.get("status", 200)))
        exc.replayed = replay.replayed
        raise exc
    return int(str(replay.outcome["value"]))


class Deferred(Generic[T]):
    """A write in flight: the store's future, and how its value becomes the caller's result.

    HTTP awaits the future without blocking its event loop (so concurrent writes can share a
    commit); other callers simply call ``result()``.
    """

    def __init__(self, future: Waitable[Any], finish: Callable[[Any], T]) -> None:
        self.future = future
        self._finish = finish

    def result(self) -> T:
        """Wait for the write and return the result (or raise its error)."""
        return self._finish(self.future.result())

    def then(self, fn: Callable[[T], U]) -> Deferred[U]:
        """Return a Deferred whose result is ``fn`` applied to this one's."""
        return Deferred(self.future, lambda value: fn(self._finish(value)))
