"""Many grants in one SQLite transaction, set-based: one read and one write of the clients.

The row-at-a-time path (``SqlStore._apply_credit``) runs a guarded ``UPDATE ... RETURNING`` per
grant. For a run of grants (a group commit, ``book.credit_many``) the clients they touch are
read once, every grant is checked and chained in Python against the balances the earlier ones
leave (the writer lock is held, so nothing else moves them), and each touched client is written
once. The entry, activity and outbox rows go through the transaction's usual deferred writes.
Changes that spend grants take the row path (``spend.py``), which allocates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .. import errors
from ..money import MAX_BALANCE_CENTS
from .protocol import CreditOp
from .sql import Cursor, Deferred, alert_for, credit_hash

CLIENTS_READ = """
SELECT id, balance_cents, entries, head_hash, last_date, status, open_from, low_below
FROM clients WHERE id IN (SELECT value FROM json_each(?))
"""
CLIENTS_WRITE = """
UPDATE clients SET balance_cents = ?, entries = ?, head_hash = ?, last_date = ?, open_from = ?
WHERE id = ?
"""


def apply_grants(
    cur: Cursor, ops: Sequence[CreditOp], deferred: list[Deferred], heads: dict[int, str]
) -> list[int | errors.CreditError]:
    """Apply grants (``ops``, all adding credit) in order in the current write transaction;
    each its balance or refusal.

    A refused grant changes nothing: the same outcomes as one AddCredit each, in order.
    ``heads`` holds the chain heads that earlier credits of the transaction moved but did not
    store yet (``_heads``): they are continued here, and the clients written here leave it
    with their heads stored.
    """
    ids = json.dumps(sorted({op.client_id for op in ops}))
    state = {
        row[0]: [row[1], row[2], heads.get(row[0], row[3]), row[4], row[6], row[5], row[7]]
        for row in cur.execute(CLIENTS_READ, (ids,))
    }
    outcomes: list[int | errors.CreditError] = []
    touched: set[int] = set()
    for op in ops:
        client = state.get(op.client_id)
        if client is None:
            outcomes.append(errors.ClientIdNotFound())
            continue
        before = client[0]
        balance = before + op.amount_cents
        if client[5] == "Closed":
            outcomes.append(errors.ClientClosed())
            continue
        if balance > MAX_BALANCE_CENTS:
            outcomes.append(errors.BalanceLimitExceeded())
            continue
        seq = client[1] + 1
        prev = client[2]
        digest = credit_hash(op, seq, prev)
        client[0], client[1], client[2] = balance, seq, digest
        client[3] = max(client[3], op.date)
        if client[4] == 0 and not op.expires:
            client[4] = seq
        if client[6] < 0:  # no threshold: no low-balance event
            deferred.append((op, seq, balance, prev, digest, "", "", ""))
        else:
            alert, data = alert_for(before, balance, client[6])
            deferred.append((op, seq, balance, prev, digest, "", alert, data))
        touched.add(op.client_id)
        outcomes.append(balance)
    cur.executemany(CLIENTS_WRITE, [(*state[c][:5], c) for c in touched])
    for c in touched:
        heads.pop(c, None)
    return outcomes
