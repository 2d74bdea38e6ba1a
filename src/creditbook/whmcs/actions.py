"""The action table: each WHMCS action is parse -> call the ledger -> build the result dict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..clients import EDITABLE
from ..ledger import (
    CLIENT_DETAIL_FIELDS,
    ClientResult,
    CreditResult,
    Deferred,
    Ledger,
    parse_id,
)
from ..model import Actor, Client, CreditEntry
from ..money import format_cents
from ..store import IdempotencyKey
from .auth import Principal
from .params import Params, integer, scalar
from .render import Stream

Result = dict[str, Any]


@dataclass(slots=True)
class Context:
    """What a handler needs besides its parameters."""

    ledger: Ledger
    principal: Principal
    actor: Actor
    idem: IdempotencyKey | None = None
    replayed: bool = False
    #: The caller blocks on writes (``local_api``), rather than awaiting them on an event loop.
    blocking: bool = False


def add_credit(ctx: Context, p: Params) -> Deferred[Result]:
    """AddCredit: add or remove a client's credit (spec section 6)."""
    pending = ctx.ledger.submit_credit(
        clientid=scalar(p, "clientid"),
        amount=scalar(p, "amount"),
        description=scalar(p, "description"),
        type=scalar(p, "type"),
        date=scalar(p, "date"),
        adminid=scalar(p, "adminid"),
        category=scalar(p, "category"),
        expires=scalar(p, "expires"),
        actor=ctx.actor,
        idem=ctx.idem,
        inline=ctx.blocking,
    )

    def done(result: CreditResult) -> Result:
        ctx.replayed = result.replayed
        return {"result": "success", "newbalance": format_cents(result.balance_cents)}

    return pending.then(done)


def _credit(entry: CreditEntry) -> Result:
    found: Result = {
        "id": str(entry.id),
        "date": entry.date,
        "description": entry.description,
        "amount": format_cents(entry.amount_cents),
        "relid": str(entry.relid),
        "adminid": str(entry.admin_id),
        "balance": format_cents(entry.balance_cents),
    }
    # Creditbook's extensions (section 7): a grant's category, expiry and what is left of it;
    # what a removal or an expiry spent of which grants, what a restore gave back.
    if entry.is_grant:
        found.update(
            kind="grant",
            category=entry.category or "paid",
            expires=entry.expires,
            remaining=format_cents(entry.remaining),
        )
    else:
        found["kind"] = entry.kind or "removal"
        if entry.kind == "expiry":
            found["category"] = entry.category
        key = "restored" if entry.kind == "restore" else "spent"
        found[key] = [
            {"id": str(grant), "amount": format_cents(abs(cents))} for grant, cents in entry.spent
        ]
    return found


def get_credits(ctx: Context, p: Params) -> Result:
    """GetCredits: a client's credit log, oldest first, optionally paged."""
    paged = scalar(p, "limitstart") is not None or scalar(p, "limitnum") is not None
    offset = integer(p, "limitstart", 0) if paged else 0
    limit = integer(p, "limitnum", 25) if paged else None
    asof = scalar(p, "asof")
    if asof is None:
        total, count, entries = ctx.ledger.get_credits(scalar(p, "clientid"), offset, limit)
    else:
        total, count, balance, entries = ctx.ledger.get_credits_asof(
            scalar(p, "clientid"), asof, offset, limit
        )
    clientid = str(parse_id(scalar(p, "clientid")))
    result: Result = {"result": "success", "totalresults": total, "clientid": clientid}
    if asof is not None:  # Creditbook's extension: the history as it stood at the end of a day
        result.update(asof=asof, balance=format_cents(balance))
    if paged:
        result.update(startnumber=offset, numreturned=count)
    client_id = parse_id(clientid) or 0
    entries = ctx.ledger.with_allocations(client_id, entries)
    result["credits"] = {"credit": Stream(_credit(e) for e in entries) if count else []}
    return result


def _client_fields(client: Client) -> Result:
    return {
        "id": str(client.id),
        "userid": str(client.id),
        "client_id": str(client.id),
        "firstname": client.firstname,
        "lastname": client.lastname,
        "fullname": f"{client.firstname} {client.lastname}",
        "companyname": client.companyname,
        "email": client.email,
        "datecreated": client.created_at[:10],
        "status": client.status,
        "currency_code": client.currency_code,
        "credit": format_cents(client.balance_cents),
        **{f: client.details.get(f, "") for f in CLIENT_DETAIL_FIELDS},
    }


def get_clients_details(ctx: Context, p: Params) -> Result:
    """GetClientsDetails: one client by id or e-mail, fields also duplicated at top level."""
    client = ctx.ledger.get_client(scalar(p, "clientid"), scalar(p, "email"))
    fields = _client_fields(client)
    asof = scalar(p, "asof")
    if asof is not None:  # Creditbook's extension: the balance at the end of that day
        fields.update(credit=format_cents(ctx.ledger.balance_asof(client, asof)), asof=asof)
    else:  # Creditbook's extensions: the balance per category and the next expiry
        for category, cents in ctx.ledger.client_categories(client).items():
            fields[f"credit_{category}"] = format_cents(cents)
        upcoming = ctx.ledger.next_expiry(client.id)
        fields["next_expiry_date"] = upcoming[0] if upcoming else ""
        fields["next_expiry_amount"] = format_cents(upcoming[1] if upcoming else 0)
    return {"result": "success", **fields, "client": fields}


def add_client(ctx: Context, p: Params) -> Deferred[Result]:
    """AddClient: create a client (address and phone fields optional)."""
    details = {f: v for f in CLIENT_DETAIL_FIELDS if (v := scalar(p, f)) is not None}
    pending = ctx.ledger.submit_client(
        firstname=scalar(p, "firstname"),
        lastname=scalar(p, "lastname"),
        email=scalar(p, "email"),
        companyname=scalar(p, "companyname"),
        currency=scalar(p, "currency"),
        details=details,
        actor=ctx.actor,
        idem=ctx.idem,
        inline=ctx.blocking,
    )

    def done(result: ClientResult) -> Result:
        ctx.replayed = result.replayed
        return {"result": "success", "clientid": str(result.client_id)}

    return pending.then(done)


def _updated(client_id: int, future: Any) -> Result | Deferred[Result]:
    result: Result = {"result": "success", "clientid": str(client_id)}
    return result if future is None else Deferred(future, lambda _: result)


def update_client(ctx: Context, p: Params) -> Result | Deferred[Result]:
    """UpdateClient: change the fields given (empty means absent); WHMCS's card, bank,
    password, group, language and custom-field parameters are accepted and ignored."""
    clientid = scalar(p, "clientid")
    client = ctx.ledger.get_client(clientid, None if clientid else scalar(p, "clientemail"))
    changes = {f: v for f in EDITABLE if (v := scalar(p, f)) is not None}
    _, future = ctx.ledger.start_update(client, changes, actor=ctx.actor, inline=ctx.blocking)
    return _updated(client.id, future)


def close_client(ctx: Context, p: Params) -> Result | Deferred[Result]:
    """CloseClient: set the status to Closed (closing twice succeeds); the client's credit can
    still be removed, never added."""
    clientid = scalar(p, "clientid")
    if not clientid:
        raise errors.ClientLookupRequired()
    client = ctx.ledger.get_client(clientid)
    _, future = ctx.ledger.start_update(
        client, {"status": "Closed"}, actor=ctx.actor, inline=ctx.blocking
    )
    return _updated(client.id, future)


def get_clients(ctx: Context, p: Params) -> Result:
    """GetClients: a page of clients, with search and status filters."""
    offset, limit = integer(p, "limitstart", 0), integer(p, "limitnum", 25)
    page = ctx.ledger.list_clients(
        offset,
        limit,
        scalar(p, "search") or "",
        scalar(p, "status") or "",
        (scalar(p, "sorting") or "ASC").upper() == "DESC",
    )
    rows = [
        {
            "id": str(c.id),
            "firstname": c.firstname,
            "lastname": c.lastname,
            "companyname": c.companyname,
            "email": c.email,
            "datecreated": c.created_at[:10],
            "groupid": "0",
            "status": c.status,
        }
        for c in page.clients
    ]
    return {
        "result": "success",
        "totalresults": page.total,
        "startnumber": offset,
        "numreturned": len(rows),
        "clients": {"client": rows},
    }


def get_admin_details(ctx: Context, p: Params) -> Result:
    """GetAdminDetails: the authenticated admin and the actions it may call."""
    admin = ctx.principal.admin
    if admin is None:
        raise errors.AdminNotFound()
    allowed = ctx.principal.actions if ctx.principal.actions is not None else ACTIONS.keys()
    return {
        "result": "success",
        "adminid": str(admin.id),
        "username": admin.username,
        "name": f"{admin.firstname} {admin.lastname}".strip(),
        "email": admin.email,
        "allowedpermissions": ",".join(sorted(a for a in allowed if a in ACTIONS)),
    }


#: A handler returns its result, or a Deferred one when it started a write.
Handler = Callable[[Context, Params], Result | Deferred[Result]]

#: Normalised action name -> handler. Writes accept idempotency keys.
ACTIONS: dict[str, Handler] = {
    "addcredit": add_credit,
    "getcredits": get_credits,
    "getclientsdetails": get_clients_details,
    "addclient": add_client,
    "getclients": get_clients,
    "getadmindetails": get_admin_details,
    "updateclient": update_client,
    "closeclient": close_client,
}
IDEMPOTENT = frozenset({"addcredit", "addclient"})

#: Display names, for documentation and role listings.
ACTION_NAMES = {
    "addcredit": "AddCredit",
    "getcredits": "GetCredits",
    "getclientsdetails": "GetClientsDetails",
    "addclient": "AddClient",
    "getclients": "GetClients",
    "getadmindetails": "GetAdminDetails",
    "updateclient": "UpdateClient",
    "closeclient": "CloseClient",
}
