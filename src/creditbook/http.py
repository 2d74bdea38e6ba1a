"""The ASGI app: ``/includes/api.php``, the console at ``/admin/``, ``/healthz``, ``/metrics``.

A raw ASGI callable rather than a framework: on this hot path it measured 5-25% faster than
Starlette with a database behind it. Starlette's parser is used only for multipart bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import logging
import os
import re
import time
from typing import TYPE_CHECKING

from . import errors, metrics
from .accesslog import AccessLog
from .asgi import Message, Receive, Scope, Send, form_items, read_body
from .config import Settings, SettingsError
from .ledger import Ledger
from .serve import setup_logging
from .store import Store, store_from_settings
from .whmcs import Api, Reply
from .whmcs.actions import ACTIONS
from .whmcs.api import Pending, error_result
from .whmcs.params import (
    MAX_PARAMS,
    Params,
    merge,
    parse_json_object,
    parse_pairs,
    parse_query,
)
from .whmcs.render import CONTENT_TYPES, render

if TYPE_CHECKING:
    from .console import Console
    from .expiry import Runner
    from .webhooks import Dispatcher


API_PATH = "/includes/api.php"
MAX_BODY = 1024 * 1024
log = logging.getLogger("creditbook")
#: A caller's X-Request-Id is echoed (and logged) when it looks like one; else one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class Note:
    """What the access log and the metrics need to know about one request."""

    __slots__ = ("request_id", "client_id")

    def __init__(self) -> None:
        self.request_id = ""
        self.client_id = ""


class App:
    """The Creditbook ASGI application."""

    def __init__(
        self, api: Api, store: Store, *, log_requests: bool = True, settings: Settings | None = None
    ) -> None:
        self.api = api
        self.store = store
        settings = settings or Settings()
        self.access_log = (
            AccessLog(json_lines=settings.log_format == "json") if log_requests else None
        )
        self._ids = itertools.count(1)
        self._id_prefix = f"{os.getpid():x}-{os.urandom(3).hex()}-"
        #: The web console, made on its first request.
        self.console: Console | None = None
        #: Started with the server (lifespan) when webhooks are on.
        self.dispatcher: Dispatcher | None = None
        #: Started with the server (lifespan) when expiry is on.
        self.expiry: Runner | None = None
        self._settings = settings
        # Read by the server's protocol (transport.py) for each connection.
        self.request_timeout = settings.request_timeout
        self.max_connections = settings.max_connections
        self.max_connections_per_address = settings.max_connections_per_address
        #: Requests in progress per forwarded client address, behind trusted proxies.
        self._forwarded: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path = scope["path"]
        note = Note()
        if path == API_PATH:
            peer = (scope.get("client") or ("", 0))[0]
            if self.api.policy.trusted_proxy(peer):
                reply = await self._forwarded_api(scope, receive, note, peer)
            else:
                reply = await self._api(scope, receive, note)
        elif path == "/healthz":
            reply = self._health()
        elif path == "/metrics":
            reply = self._metrics(scope)
        elif path.startswith("/admin") and path[6:7] in ("", "/"):
            status = await self._console(scope, receive, send)
            if self.access_log is not None:
                client = scope.get("client") or ("-", 0)
                seconds = time.perf_counter() - started
                self.access_log.request(
                    client[0], scope["method"], path, status, "console", seconds, "", ""
                )
            return
        else:
            body = render(error_result("Not Found: the API is at " + API_PATH), "json")
            reply = Reply(404, CONTENT_TYPES["json"], body)
        if reply is not None:
            if note.request_id:
                reply.headers.append(("x-request-id", note.request_id))
            await _send(send, reply)
        seconds = time.perf_counter() - started
        if reply is not None and path == API_PATH:
            metrics.request(
                reply.action if reply.action in ACTIONS else "other", reply.result, seconds
            )
        if self.access_log is not None:
            client = scope.get("client") or ("-", 0)
            self.access_log.request(
                client[0],
                scope["method"],
                path,
                str(reply.status) if reply is not None else "-",
                (reply.action or "-") if reply is not None else "incomplete request ignored",
                seconds,
                note.request_id,
                note.client_id,
            )

    async def _forwarded_api(
        self, scope: Scope, receive: Receive, note: Note, peer: str
    ) -> Reply | None:
        """An API request through a trusted proxy: capped per forwarded client address, as
        connections are per address without a proxy."""
        address = self.api.policy.client_ip(peer, _headers(scope))
        busy = self._forwarded.get(address, 0)
        if busy >= self.max_connections_per_address:
            body = render(error_result("Too many requests from your address, try again"), "json")
            return Reply(503, CONTENT_TYPES["json"], body, [("retry-after", "1")], "", "invalid")
        self._forwarded[address] = busy + 1
        try:
            return await self._api(scope, receive, note)
        finally:
            left = self._forwarded[address] - 1
            if left:
                self._forwarded[address] = left
            else:
                del self._forwarded[address]

    def trusted_proxy(self, peer: str) -> bool:
        """Whether a connection's peer is a trusted proxy (its connections are not capped per
        address: its clients' requests are, by their forwarded address)."""
        return self.api.policy.trusted_proxy(peer)

    async def _console(self, scope: Scope, receive: Receive, send: Send) -> str:
        """Hand a request to the web console (imported on first use: the API never loads it)."""
        if self.console is None:
            from .console import Console

            try:
                key_file = self._settings.key_file()
            except SettingsError:
                key_file = ""  # two-factor enrolment says what to set
            self.console = Console(self.api, key_file)
        status = "-"

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        await self.console(scope, receive, watch)
        return status

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                with contextlib.suppress(errors.StoreError):
                    self.api.policy.refresh()  # trusted proxies, before the first connection
                self._start_background()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                loop = asyncio.get_running_loop()
                if self.dispatcher is not None:
                    await loop.run_in_executor(None, self.dispatcher.stop)
                if self.expiry is not None:
                    await loop.run_in_executor(None, self.expiry.stop)
                if self.access_log is not None:
                    self.access_log.flush()
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start_background(self) -> None:
        """Deliver webhooks and expire grants on threads of this process (a lease each picks
        one process)."""
        from .expiry import Runner
        from .webhooks import dispatcher_for

        settings = self._settings
        if settings.webhooks:
            self.dispatcher = dispatcher_for(self.store, settings)
            if self.dispatcher is not None:
                self.dispatcher.start()
        if settings.expiry:
            self.expiry = Runner(
                self.api.ledger,
                interval=settings.expiry_interval,
                notice_days=settings.expiry_notice_days,
            )
            self.expiry.start()

    def _metrics(self, scope: Scope) -> Reply:
        """Prometheus metrics, for addresses on the API's allow-list only."""
        headers = _headers(scope)
        policy = self.api.policy
        try:
            policy.refresh()
            policy.check(policy.client_ip((scope.get("client") or ("", 0))[0], headers), None)
        except (errors.CreditError, errors.StoreError) as exc:
            return self.api.error(exc)
        backlog = getattr(self.store, "webhook_backlog", None)
        body = metrics.render(backlog, self._overdue)
        return Reply(200, metrics.CONTENT_TYPE_LATEST, iter([body]))

    def _overdue(self) -> tuple[int, float]:
        """Grants past their expiry day not expired yet, and seconds since the oldest's day
        ended (in the configured zone)."""
        ledger = self.api.ledger
        count, oldest = self.store.grants.overdue(ledger.today())
        if oldest is None:
            return count, 0.0
        day = datetime.date.fromisoformat(oldest) + datetime.timedelta(days=1)
        ended = datetime.datetime.combine(day, datetime.time(), ledger.tz).timestamp()
        return count, max(0.0, time.time() - ended)

    async def _api(self, scope: Scope, receive: Receive, note: Note) -> Reply | None:
        """Answer an API request; None when the request did not arrive whole (nothing done)."""
        if scope["method"] not in ("GET", "POST"):
            return Reply(
                405,
                CONTENT_TYPES["json"],
                render(error_result("Method Not Allowed: use GET or POST"), "json"),
                result="invalid",
            )
        headers = _headers(scope)
        given = headers.get("x-request-id", "")
        note.request_id = (
            given if _REQUEST_ID.fullmatch(given) else f"{self._id_prefix}{next(self._ids):x}"
        )
        query: Params = {}
        try:
            query = parse_query(scope.get("query_string", b""))
            body = await read_body(receive, headers, MAX_BODY)
            if body is None:
                return None
            params = merge(query, await _parse_body(scope, body, headers.get("content-type", "")))
        except errors.RequestError as exc:
            return self.api.error(exc, _format_or_json(query))
        client = scope.get("client") or ("", 0)
        client_id = params.get("clientid")
        if isinstance(client_id, str) and _DIGITS.fullmatch(client_id):
            note.client_id = client_id
        reply = self.api.handle(params, client[0], headers)
        while isinstance(reply, Pending):
            # Await without blocking the loop (concurrent writes then share a commit, and a
            # password hash runs on its thread); the outcome or error is read by complete().
            future = reply.future
            with contextlib.suppress(Exception):
                await (
                    future if isinstance(future, asyncio.Future) else asyncio.wrap_future(future)
                )
            reply = reply.complete()
        return reply

    def _health(self) -> Reply:
        try:
            self.store.ping()
        except errors.StoreError:
            body = {"status": "unavailable", "database": _kind(self.store)}
            return Reply(503, CONTENT_TYPES["json"], iter([json.dumps(body).encode()]))
        body = {"status": "ok", "database": _kind(self.store)}
        return Reply(200, CONTENT_TYPES["json"], iter([json.dumps(body).encode()]))


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; a header sent on several lines is one value,
    its lines joined by commas in order (so every X-Forwarded-For hop counts)."""
    raw = scope.get("headers", [])
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    if len(headers) < len(raw):  # a name on several lines (rare): join them, in order
        headers = {}
        for k, v in raw:
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _kind(store: Store) -> str:
    return "postgresql" if store.url.startswith("postgres") else "sqlite"


def _format_or_json(query: Params) -> str:
    value = query.get("responsetype")
    return value.lower() if isinstance(value, str) and value.lower() in CONTENT_TYPES else "json"


async def _parse_body(scope: Scope, body: bytes, content_type: str) -> Params:
    if not body:
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("", "application/x-www-form-urlencoded"):
        return parse_query(body)
    if kind == "application/json":
        return parse_json_object(body)
    if kind == "multipart/form-data":
        return await _parse_multipart(scope, body)
    return {}


async def _parse_multipart(scope: Scope, body: bytes) -> Params:
    from starlette.formparsers import MultiPartException

    try:
        items = await form_items(scope, body, max_files=MAX_PARAMS, max_fields=MAX_PARAMS)
        pairs = [(k, v) for k, v in items if isinstance(v, str)]
    except MultiPartException as exc:
        if exc.message.startswith("Too many"):
            raise errors.TooManyParameters() from None
        return {}
    except Exception:  # noqa: BLE001 a malformed multipart body is treated as no body
        return {}
    return parse_pairs(pairs)


async def _send(send: Send, reply: Reply) -> None:
    headers = [(b"content-type", reply.content_type.encode())]
    headers += [(k.encode(), v.encode()) for k, v in reply.headers]
    try:
        first = next(reply.body, b"")
        second = next(reply.body, None)
    except Exception:  # noqa: BLE001 the database failed before anything was sent
        log.exception("response failed")
        failed = render(error_result(errors.StoreError.public_message), "json")
        await _send(send, Reply(503, CONTENT_TYPES["json"], failed))
        return
    if second is None:
        headers.append((b"content-length", str(len(first)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": first})
        return
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": first + second, "more_body": True})
    try:
        for chunk in reply.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except Exception:  # noqa: BLE001 headers are sent; all we can do is log and end the body
        log.exception("response stream failed")
    await send({"type": "http.response.body", "body": b""})


def create_app(settings: Settings | None = None) -> App:
    """Build the ASGI app for the settings (from the environment when None)."""
    settings = settings or Settings.from_env()
    setup_logging(settings.log_level, settings.log_format)
    store = store_from_settings(settings)
    ledger = Ledger(store, timezone=settings.timezone or None)
    return App(Api(ledger), store, log_requests=settings.access_log, settings=settings)
