"""``creditbook webhook ...``: endpoints, deliveries, and a standalone dispatcher."""

from __future__ import annotations

import argparse
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

from .. import errors
from ..keys import load_key
from ..ledger import Ledger
from ..serve import setup_logging
from ..store.webhooks import EVENT_TYPES, Delivery, Endpoint, WebhookStore
from ..webhooks import add_endpoint, dispatcher_for
from .common import MAX_ID, bounded, cli_actor, print_json, settings_for, table


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``webhook`` command group to the top-level parser."""
    w = sub.add_parser("webhook", help="signed webhooks: endpoints and deliveries").add_subparsers(
        dest="webhook_command", required=True, metavar="ACTION"
    )
    s = w.add_parser("add", parents=[common], help="add an endpoint (its secret is shown once)")
    s.add_argument("url", help="http:// or https:// URL that receives POSTs")
    s.add_argument("--events", help=f"comma-separated, default all: {','.join(EVENT_TYPES)}")
    s.add_argument("--description", default="")
    s.set_defaults(func=webhook_add)
    w.add_parser("list", parents=[common], help="list endpoints").set_defaults(func=webhook_list)
    for name, text in (
        ("disable", "stop delivering to an endpoint (its pending deliveries wait)"),
        ("enable", "deliver to an endpoint again (clears its failure streak)"),
        ("remove", "delete an endpoint and its deliveries"),
    ):
        s = w.add_parser(name, parents=[common], help=text)
        s.add_argument("id", type=bounded(1, MAX_ID))
        s.set_defaults(func=webhook_change)
    s = w.add_parser("deliveries", parents=[common], help="recent deliveries, newest first")
    s.add_argument("--endpoint", type=bounded(1, MAX_ID), default=0, help="only this endpoint")
    s.add_argument("--failed", action="store_true", help="only deliveries that gave up")
    s.add_argument("--limit", type=bounded(1, 100_000), default=100)
    s.set_defaults(func=webhook_deliveries)
    s = w.add_parser("redeliver", parents=[common], help="send a delivery's event again")
    s.add_argument("delivery_id", type=bounded(1, MAX_ID))
    s.set_defaults(func=webhook_redeliver)
    w.add_parser(
        "run", parents=[common], help="deliver in the foreground (instead of, or beside, serve)"
    ).set_defaults(func=webhook_run)


def _store(ledger: Ledger) -> WebhookStore:
    store = ledger.store
    if not isinstance(store, WebhookStore):
        raise errors.StoreError("this store has no webhooks")
    return store


def _time(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _endpoint_json(e: Endpoint) -> dict[str, object]:
    return {
        "id": e.id,
        "url": e.url,
        "events": list(e.events),
        "description": e.description,
        "enabled": e.enabled,
        "created_at": e.created_at,
        "failures": e.failures,
        "failing_since": _time(e.failing_since) or None,
        "disabled_note": e.disabled_note,
    }


def _delivery_json(d: Delivery) -> dict[str, object]:
    return {
        "id": d.id,
        "endpoint_id": d.endpoint_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "client_id": d.client_id,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt": _time(d.next_at) if d.status == "pending" else None,
        "created_at": _time(d.created_at),
        "last_attempt": _time(d.last_at) or None,
        "last_status": d.last_status or None,
        "last_error": d.last_error,
    }


def webhook_add(args: argparse.Namespace, ledger: Ledger) -> int:
    """Create an endpoint and print its signing secret once."""
    path = settings_for(args).key_file()
    existed = os.path.exists(path)
    key = load_key(path, create=True)
    endpoint, secret = add_endpoint(
        _store(ledger),
        key,
        args.url,
        args.events,
        args.description,
        cli_actor(args),
        ledger.now(),
    )
    if args.json:
        print_json({**_endpoint_json(endpoint), "secret": secret})
        return 0
    print(f"Created webhook endpoint {endpoint.id}: {endpoint.url} ({', '.join(endpoint.events)})")
    print(f"Signing secret (shown once, verify with any Standard Webhooks library): {secret}")
    if not existed:
        print(f"Created the key file {path} (mode 0600): keep it safe, and back it up")
    return 0


def webhook_list(args: argparse.Namespace, ledger: Ledger) -> int:
    """List endpoints."""
    endpoints = _store(ledger).list_endpoints()
    if args.json:
        print_json([_endpoint_json(e) for e in endpoints])
        return 0
    rows = [
        (
            e.id,
            e.url,
            ",".join(e.events),
            "yes" if e.enabled else "no",
            f"since {_time(e.failing_since)}" if e.failing_since else "",
            e.disabled_note or e.description,
        )
        for e in endpoints
    ]
    table(("ID", "URL", "EVENTS", "ENABLED", "FAILING", "NOTE"), rows)
    return 0


def webhook_change(args: argparse.Namespace, ledger: Ledger) -> int:
    """Disable, enable or remove an endpoint."""
    store, actor, at = _store(ledger), cli_actor(args), ledger.now()
    if args.webhook_command == "remove":
        store.remove_endpoint(args.id, actor, at)
        print(f"Removed webhook endpoint {args.id}")
    else:
        enable = args.webhook_command == "enable"
        store.set_endpoint_enabled(args.id, enable, actor, at, "" if enable else "disabled by CLI")
        print(f"{'Enabled' if enable else 'Disabled'} webhook endpoint {args.id}")
    return 0


def webhook_deliveries(args: argparse.Namespace, ledger: Ledger) -> int:
    """List deliveries."""
    found = _store(ledger).list_deliveries(args.endpoint, args.failed, args.limit)
    if args.json:
        print_json([_delivery_json(d) for d in found])
        return 0
    rows = [
        (
            d.id,
            d.endpoint_id,
            d.event_type,
            d.client_id,
            d.status,
            d.attempts,
            _time(d.last_at),
            d.last_error if d.status != "delivered" else d.last_status,
        )
        for d in found
    ]
    table(("ID", "ENDPOINT", "EVENT", "CLIENT", "STATUS", "ATTEMPTS", "LAST", "RESULT"), rows)
    return 0


def webhook_redeliver(args: argparse.Namespace, ledger: Ledger) -> int:
    """Queue a delivery's event again (same webhook-id, so receivers can de-duplicate)."""
    store = _store(ledger)
    new_id = store.redeliver(args.delivery_id, time.time(), cli_actor(args), ledger.now())
    print(f"Queued delivery {new_id} (the same event as delivery {args.delivery_id})")
    return 0


def webhook_run(args: argparse.Namespace, ledger: Ledger) -> int:
    """Deliver until interrupted (SIGINT or SIGTERM); shares the lease with ``serve``."""
    settings = settings_for(args)
    setup_logging(settings.log_level, settings.log_format)
    dispatcher = dispatcher_for(_store(ledger), settings)
    if dispatcher is None:
        raise errors.StoreError("this store has no webhooks")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: dispatcher.halt())
    print("Delivering webhooks; Ctrl-C to stop", flush=True)
    dispatcher.run()
    dispatcher.stop()
    return 0
