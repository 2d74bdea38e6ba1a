"""Putting a source's rows together: clients with their credit rows, and chunks of them."""

from __future__ import annotations

from collections.abc import Iterator

from .model import SourceClient, SourceCredit

CHUNK = 1000


def chunks(
    groups: Iterator[tuple[SourceClient | None, list[SourceCredit]]],
) -> Iterator[tuple[list[tuple[SourceClient, list[SourceCredit]]], list[SourceCredit]]]:
    """Batch a source's groups: (clients with their credit rows, orphan rows) per chunk."""
    group: list[tuple[SourceClient, list[SourceCredit]]] = []
    orphans: list[SourceCredit] = []
    for client, rows in groups:
        if client is None:
            orphans.extend(rows)
            continue
        group.append((client, rows))
        if len(group) >= CHUNK:
            yield group, orphans
            group, orphans = [], []
    if group or orphans:
        yield group, orphans


def merge(
    clients: Iterator[SourceClient], credits: Iterator[SourceCredit]
) -> Iterator[tuple[SourceClient | None, list[SourceCredit]]]:
    """Pair a client stream (by id) with a credit stream (by client, then id); credits whose
    client is not in the stream come as (None, rows)."""
    pending: SourceCredit | None = next(credits, None)
    for client in clients:
        orphans: list[SourceCredit] = []
        while pending is not None and pending.client_id < client.id:
            orphans.append(pending)
            pending = next(credits, None)
        if orphans:
            yield None, orphans
        rows: list[SourceCredit] = []
        while pending is not None and pending.client_id == client.id:
            rows.append(pending)
            pending = next(credits, None)
        yield client, rows
    rest: list[SourceCredit] = []
    while pending is not None:
        rest.append(pending)
        pending = next(credits, None)
    if rest:
        yield None, rest
