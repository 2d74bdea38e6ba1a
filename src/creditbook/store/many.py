"""Many credits in one SQLite transaction, set-based: one read and one write of the clients.

The row-at-a-time path (``SqlStore._apply_credit``) runs a guarded ``UPDATE ... RETURNING`` per
credit. For a batch call (``book.credit_many``) the clients it touches are read once, every
credit is checked and chained in Python against the balances the earlier ones leave (the
writer lock is held, so nothing else moves them), and each touched client is written once.
The entry, activity and outbox rows go through the transaction's usual deferred writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from .. import errors
from ..money import MAX_BALANCE_CENTS, format_cents
from .protocol import CreditOp
from .sql import Cursor, Deferred, credit_hash

CLIENTS_READ = """
SELECT id, balance_cents, entries, head_hash, last_date, status FROM clients
WHERE id IN (SELECT value FROM json_each(?))
"""
CLIENTS_WRITE = (
    "UPDATE clients SET balance_cents = ?, entries = ?, head_hash = ?, last_date = ? WHERE id = ?"
)
#: ``lowest(client_id, date, balance)``: the lowest end-of-day balance from a day on, and its
#: day, for a client whose balance is ``balance`` now (``SqlStore._lowest_from``).
Lowest = Callable[[int, str, int], tuple[str, int]]


def apply_credits(
    cur: Cursor,
    ops: Sequence[CreditOp],
    deferred: list[Deferred],
    heads: dict[int, str],
    lowest: Lowest,
) -> list[int | errors.CreditError]:
    """Apply ``ops`` in order in the current write transaction; each its balance or refusal.

    A refused credit changes nothing, and the credits after it see the balances as if it had
    not been sent: the same outcomes as one AddCredit each, in order. ``heads`` holds the chain
    heads that earlier credits of the transaction moved but did not store yet (``_heads``):
    they are continued here, and the clients written here leave it with their heads stored.
    """
    ids = json.dumps(sorted({op.client_id for op in ops}))
    state = {
        row[0]: [row[1], row[2], heads.get(row[0], row[3]), row[4], row[5]]
        for row in cur.execute(CLIENTS_READ, (ids,))
    }
    outcomes: list[int | errors.CreditError] = []
    touched: set[int] = set()
    for op in ops:
        client = state.get(op.client_id)
        if client is None:
            outcomes.append(errors.ClientIdNotFound())
            continue
        balance = client[0] + op.amount_cents
        if op.amount_cents > 0 and client[4] == "Closed":
            outcomes.append(errors.ClientClosed())
            continue
        if balance < 0:
            outcomes.append(errors.InsufficientCredit())
            continue
        if balance > MAX_BALANCE_CENTS:
            outcomes.append(errors.BalanceLimitExceeded())
            continue
        if op.amount_cents < 0 and op.date < client[3]:
            day, low = lowest(op.client_id, op.date, client[0])
            if low + op.amount_cents < 0:
                outcomes.append(errors.BackdatedOverdraw(op.date, day, format_cents(low)))
                continue
        seq = client[1] + 1
        prev = client[2]
        digest = credit_hash(op, seq, prev)
        client[0], client[1], client[2] = balance, seq, digest
        client[3] = max(client[3], op.date)
        deferred.append((op, seq, balance, prev, digest, ""))
        touched.add(op.client_id)
        outcomes.append(balance)
    cur.executemany(CLIENTS_WRITE, [(*state[c][:4], c) for c in touched])
    for c in touched:
        heads.pop(c, None)
    return outcomes
