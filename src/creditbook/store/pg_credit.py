"""PostgreSQL's group commit of plain grants: concurrent AddCredits become one call of the batch
function ``creditbook_apply_credits`` (migrations 0005, 0008 and 0016), a lone one the same work
as one statement (``ONE_CREDIT``); changes that spend grants take the row path in runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import errors
from .batch import Collector, Stats, commit_units
from .protocol import CreditOp
from .sql import credit_detail

if TYPE_CHECKING:
    from .postgres import PostgresStore

log = logging.getLogger("creditbook")
BATCH = """
SELECT op, balance, outcome FROM creditbook_apply_credits(
    %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::bigint[], %s::text[], %s::text[], %s::bigint)
"""
#: One credit alone (an idle service, one connection, a lone ``local_api`` call): the batch
#: function's work as one statement, which costs PostgreSQL and the caller about 230 us less
#: than the function's setup for a batch of one (bench/ANALYSIS.md, seventh pass). Its entry,
#: hash, activity line and event are the function's, character for character; the result row
#: is the client's balance before and after (no row: no such client; no after: refused).
ONE_CREDIT = """
WITH p AS (
    SELECT %s::bigint AS client, %s::bigint AS amount, %s::bigint AS admin, %s::text AS date,
           %s::text AS description, %s::text AS at, %s::text AS actor, %s::bigint AS actor_admin,
           %s::text AS ip, %s::text AS detail, %s::bigint AS max
), c AS MATERIALIZED (
    SELECT c.id, c.balance_cents, c.entries, c.head_hash, c.last_date, c.status, c.open_from,
           c.low_below
    FROM clients c, p WHERE c.id = p.client FOR UPDATE OF c
), n AS MATERIALIZED (
    SELECT c.id, c.balance_cents + p.amount AS bal, c.entries + 1 AS cnt, c.head_hash AS prev,
           GREATEST(c.last_date, p.date) AS last,
           encode(sha256(convert_to(concat_ws('|', 'creditbook-entry-v1', c.id::text,
               (c.entries + 1)::text, p.date, p.amount::text, p.admin::text, '0', p.at,
               length(p.actor)::text || ':' || p.actor,
               length(p.description)::text || ':' || p.description, c.head_hash), 'UTF8')),
               'hex') AS hash,
           nextval(pg_get_serial_sequence('activity', 'id')) AS act
    FROM c, p WHERE c.balance_cents + p.amount <= p.max AND c.status <> 'Closed'
), u AS (
    UPDATE clients SET balance_cents = n.bal, entries = n.cnt, head_hash = n.hash,
                       last_date = n.last,
                       open_from = CASE WHEN clients.open_from = 0 THEN n.cnt
                                        ELSE clients.open_from END
    FROM n WHERE clients.id = n.id
), e AS (
    INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                         balance_cents, relid, created_at, actor, prev_hash, hash, activity_id,
                         kind, category, expires, remaining)
    SELECT n.id, n.cnt, p.admin, p.date, p.description, p.amount, n.bal, 0, p.at, p.actor,
           n.prev, n.hash, n.act, 'grant', 'paid', '', p.amount
    FROM n, p
), l AS (
    INSERT INTO activity (id, at, actor, admin_id, client_id, ip, action, detail, via_entry)
    SELECT n.act, p.at, p.actor, p.actor_admin, n.id, p.ip, 'addcredit', p.detail, 1 FROM n, p
), v AS (
    INSERT INTO events (uid, type, client_id, seq, at)
    SELECT 'evt_' || replace(gen_random_uuid()::text, '-', ''), 'credit.added', n.id, n.cnt, p.at
    FROM n, p WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled = 1)
    RETURNING client_id
), w AS (
    -- After the entry's own event (it reads that one's row): a balance brought back to at or
    -- above the client's threshold.
    INSERT INTO events (uid, type, client_id, seq, data, at)
    SELECT 'evt_' || replace(gen_random_uuid()::text, '-', ''), 'balance.recovered', n.id, n.cnt,
           '{"previous_balance":"' || (c.balance_cents / 100)::text || '.'
           || lpad((c.balance_cents %% 100)::text, 2, '0') || '","threshold":"'
           || (c.low_below / 100)::text || '.' || lpad((c.low_below %% 100)::text, 2, '0') || '"}',
           p.at
    FROM v, n, p, c
    WHERE c.low_below >= 0 AND c.balance_cents < c.low_below AND n.bal >= c.low_below
)
SELECT c.balance_cents, n.bal, c.last_date, c.status FROM c LEFT JOIN n ON true
"""
REFUSALS: dict[str, type[errors.CreditError]] = {
    "notfound": errors.ClientIdNotFound,
    "insufficient": errors.InsufficientCredit,
    "limit": errors.BalanceLimitExceeded,
    "closed": errors.ClientClosed,
}


class CreditBatcher(Collector[CreditOp], Stats):
    """Group commit on PostgreSQL: concurrent plain grants become one function call (one round
    trip, one transaction, one update per touched client); other changes one transaction."""

    def __init__(self, store: PostgresStore) -> None:
        Collector.__init__(self)
        Stats.__init__(self)
        self.store = store

    def _process(self, batch: list[tuple[CreditOp, Future[Any]]]) -> None:
        # Runs in order: plain grants by the batch function; changes that spend grants (and
        # grants with a category or an expiry date) by the row path, which allocates, one
        # transaction per run.
        start = 0
        while start < len(batch):
            plain = batch[start][0].plain
            end = start + 1
            while end < len(batch) and batch[end][0].plain == plain:
                end += 1
            if plain:
                self._plain(batch[start:end])
            else:
                store = self.store
                units = [(partial(store._apply_credit, op=op), future)
                         for op, future in batch[start:end]]  # fmt: skip
                commit_units(store._write, units, self)
            start = end

    def _plain(self, batch: list[tuple[CreditOp, Future[Any]]]) -> None:
        try:
            rows = self.store._apply_batch([op for op, _ in batch])
        except errors.StoreError as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            log.warning("batch of %d failed (%s): retrying each credit alone", len(batch), exc)
            for unit in batch:
                self._plain([unit])
            return
        self.batches += 1
        self.units += len(batch)
        for index, balance, outcome in rows:
            future = batch[index - 1][1]
            if outcome == "ok" and balance is not None:
                future.set_result(int(balance))
            else:
                future.set_exception(REFUSALS[outcome]())


def credit_fields(op: CreditOp) -> tuple[int | str, ...]:
    """A credit's parameters, in the order of ``BATCH``'s arrays and ``ONE_CREDIT``'s values."""
    return (
        op.client_id,
        op.amount_cents,
        op.admin_id,
        op.date,
        op.description,
        op.at,
        op.actor.name,
        op.actor.admin_id,
        op.actor.ip,
        credit_detail(op),
    )


def int_array(values: Sequence[int]) -> str:
    """An array of integers as PostgreSQL's array text (``{1,-2}``), cast by the statement.

    psycopg adapts a list element by element, about 2.3 us each: built here, a batch of 16
    credits cost the caller 224 us of CPU instead of 378 (bench/ANALYSIS.md, eighth pass).
    """
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: Sequence[str]) -> str:
    """An array of text as PostgreSQL's array text: every element double-quoted, with ``\\``
    and ``"`` escaped by a backslash (so commas, braces, spaces and ``NULL`` stay text)."""
    return "{" + ",".join('"' + _escape(v) + '"' for v in values) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


#: How each of ``_fields`` travels in a batch.
ARRAYS: tuple[Callable[[Any], str], ...] = (
    int_array,
    int_array,
    int_array,
    text_array,
    text_array,
    text_array,
    text_array,
    int_array,
    text_array,
    text_array,
)
