"""Webhook delivery: the dispatcher that turns the outbox into signed HTTP POSTs.

At least once: an event is in the outbox because its change committed (same transaction), and
it leaves a delivery only when the receiver answered 2xx. Each pass of the dispatcher:

1. takes (or renews) the ``webhooks`` lease: exactly one process of all hosts delivers, and
   another takes over within a lease period when it dies;
2. fans new events out into one delivery per listening endpoint, in event order;
3. per endpoint, on a thread of its own (a slow endpoint never holds back another), sends
   the oldest pending delivery of each client that is due (so a failing event holds back its
   client's later events on that endpoint, nobody else's), a few at a time. An endpoint whose
   attempts all failed backs off as a whole and is then probed with one delivery; when the
   probe succeeds, the backlog follows in the next passes. Each attempt, connecting to the
   last header of the answer, is bounded by ``timeout`` as a whole (``Watchdog``);
4. records each outcome: a failure is retried after an exponential, jittered wait (first within
   ``retry_base`` seconds, never more than ``retry_cap`` apart) until ``retry_window`` has passed,
   then marked failed; an endpoint failing for the whole window is disabled and that is logged.

The dispatcher runs on its own thread (``serve``) or in the foreground (``webhook run``); it never
touches the request path.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import random
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

from . import errors, metrics
from .config import Settings, SettingsError
from .keys import endpoint_secret, load_key, sign
from .model import Actor
from .rules import check_text
from .store.webhooks import EVENT_TYPES, Due, Endpoint, Outcome, WebhookStore
from .version import __version__

log = logging.getLogger("creditbook.webhooks")
LEASE = "webhooks"
MAX_URL = 2000
#: Finished deliveries and their events are kept this long (for ``webhook deliveries``).
KEEP_SECONDS = 30 * 86400

#: ``post(url, body, headers, timeout)`` -> (HTTP status or 0, error text).
Sender = Callable[[str, bytes, dict[str, str], float], tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Policy:
    """Delivery timing (seconds)."""

    timeout: float = 10.0
    retry_base: float = 5.0
    retry_cap: float = 3600.0
    retry_window: float = 86400.0
    lease: float = 30.0
    interval: float = 0.5
    concurrency: int = 8


def backoff(retry: int, policy: Policy, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``retry`` (1 = the first): doubling, jittered down
    by up to half (so many failing deliveries spread out), capped at ``retry_cap``."""
    full = min(policy.retry_cap, policy.retry_base * 2.0 ** min(retry - 1, 40))
    return float(full * (0.5 + 0.5 * rand()))


def check_url(url: str) -> str:
    """Return a usable endpoint URL or raise ``InvalidWebhook``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise errors.InvalidWebhook("The URL must be an http:// or https:// URL with a host")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise errors.InvalidWebhook("The URL must not contain spaces or control characters")
    return url


def check_events(text: str | None) -> tuple[str, ...]:
    """Parse a comma-separated event list (all events when empty) or raise ``InvalidWebhook``."""
    if not text:
        return EVENT_TYPES
    chosen = tuple(dict.fromkeys(e.strip() for e in text.split(",") if e.strip()))
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown or not chosen:
        named = ", ".join(unknown) or repr(text)
        raise errors.InvalidWebhook(f"Unknown event {named}: use {', '.join(EVENT_TYPES)}")
    return chosen


def body_of(due: Due) -> bytes:
    """The JSON body of an event (the same bytes on every attempt)."""
    event = {"id": due.event_id, "type": due.event_type, "timestamp": due.at, "data": due.data}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


class Watchdog:
    """Bounds every delivery attempt as a whole: one thread closes the socket of an attempt
    that overruns its deadline (a receiver sending a byte a second cannot hold an attempt past
    it), and of every attempt in flight when the dispatcher stops (so a stop, and a server's
    SIGTERM, never waits for a receiver)."""

    TICK = 0.05

    def __init__(self) -> None:
        self._open: dict[http.client.HTTPConnection, float] = {}
        self._why: dict[http.client.HTTPConnection, str] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def watch(self, conn: http.client.HTTPConnection, deadline: float) -> None:
        """Watch an attempt's connection until ``release``."""
        with self._lock:
            if self._stopping:
                raise OSError("the dispatcher is stopping")
            self._open[conn] = deadline
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="creditbook-webhook-watchdog", daemon=True
                )
                self._thread.start()

    def release(self, conn: http.client.HTTPConnection) -> str:
        """Stop watching; return why the connection was cut ("" when it was not)."""
        with self._lock:
            self._open.pop(conn, None)
            return self._why.pop(conn, "")

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                due = [c for c, deadline in self._open.items() if now >= deadline]
                for conn in due:
                    self._cut(conn, "timed out")
                if not self._open:  # started again by the next ``watch``
                    self._thread = None
                    return

    def _cut(self, conn: http.client.HTTPConnection, why: str) -> None:
        self._why[conn] = why
        del self._open[conn]
        with contextlib.suppress(OSError):
            if conn.sock is not None:
                conn.sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Cut every attempt in flight, and refuse new ones."""
        with self._lock:
            self._stopping = True
            for conn in list(self._open):
                self._cut(conn, "stopped")


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    watchdog: Watchdog | None = None,
) -> tuple[int, str]:
    """POST ``body``; return (status, "") or (0, what went wrong). Redirects are not followed,
    the response body is not read, and with a ``watchdog`` the whole exchange (connecting,
    sending, the status line and headers) is bounded by ``timeout``."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "", parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    why = ""
    try:
        if watchdog is not None:
            watchdog.watch(conn, time.monotonic() + timeout)
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            status, reason = response.status, response.reason
        finally:
            if watchdog is not None:
                why = watchdog.release(conn)
    except TimeoutError:
        why = why or "timed out"
    except (OSError, http.client.HTTPException) as exc:
        if not why:
            return 0, f"{type(exc).__name__}: {exc}"[:300]
    finally:
        conn.close()
    if why == "timed out":  # whatever was read of the answer before the cut does not count
        return 0, f"timed out after {timeout:g} s"
    if why:
        return 0, "stopped: the dispatcher was shutting down"
    return status, "" if 200 <= status < 300 else reason[:200]


class Dispatcher:
    """Delivers the outbox of one store (see the module's docstring)."""

    def __init__(
        self,
        store: WebhookStore,
        key: Callable[[], bytes],
        policy: Policy | None = None,
        *,
        sender: Sender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._load_key = key
        self._key: bytes | None = None
        self.policy = policy or Policy()
        self.watchdog = Watchdog()
        self.sender: Sender = sender or partial(post, watchdog=self.watchdog)
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.leading = False
        self._lease_until = 0.0
        self._next_try = 0.0
        self._pruned = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(self.policy.concurrency, "creditbook-webhook")
        #: Endpoints deliver side by side, each on a thread of its own, so that a slow one
        #: never holds back another; an endpoint is delivered by one thread at a time.
        self._endpoints = ThreadPoolExecutor(16, "creditbook-endpoint")
        self._busy: set[int] = set()
        self._busy_lock = threading.Lock()

    def key(self) -> bytes:
        """The secret key, read from its file when first needed."""
        if self._key is None:
            self._key = self._load_key()
        return self._key

    # --- one pass --------------------------------------------------------------------------

    def _lead(self, now: float) -> bool:
        """Hold the lease: renew it when half spent; others try every third of a period."""
        if self.leading and now < self._lease_until - self.policy.lease / 2:
            return True
        if not self.leading and now < self._next_try:
            return False
        taken = self.store.take_lease(LEASE, self.holder, now, self.policy.lease)
        if taken != self.leading:
            log.info("webhook delivery %s by this process", "taken" if taken else "lost")
        self.leading = taken
        self._lease_until = now + self.policy.lease if taken else 0.0
        self._next_try = now + max(self.policy.lease / 3, 0.5)
        return taken

    def run_once(self, wait: bool = True) -> int:
        """One pass: lease, fan out, start delivering what is due, each endpoint on a thread
        of its own (an endpoint still busy from a pass before is left to it).

        With ``wait`` (by hand, the tests), return the attempts made once every endpoint is
        done; without (``run``), return how many endpoints were started at once.
        """
        now = self.clock()
        if not self._lead(now):
            return 0
        if now - self._pruned > 3600:
            self._pruned = now
            keep_at = datetime.fromtimestamp(now - KEEP_SECONDS, UTC).isoformat()
            self.store.prune_webhooks(now - KEEP_SECONDS, keep_at.replace("+00:00", "Z"))
        with self._busy_lock:
            busy = set(self._busy)
        endpoints = {e.id: e for e in self.store.list_endpoints() if e.enabled}
        ready = [
            e
            for e in endpoints.values()
            if e.id not in busy and not (e.failures and e.retry_at > now)
        ]
        if ready:
            # While every endpoint is backing off, new events stay in the outbox: fanning them
            # out would only write rows that wait (and hold SQLite's writer lock meanwhile).
            self.store.fan_out(now)
        started: list[Future[int]] = []
        for endpoint in ready:
            probe = endpoint.failures > 0
            dues = self.store.due_deliveries(endpoint.id, now, probe=probe)
            if dues:
                with self._busy_lock:
                    self._busy.add(endpoint.id)
                started.append(self._endpoints.submit(self._deliver_one, endpoint, dues))
        if not wait:
            return len(started)
        return sum(future.result() for future in started)

    def _deliver_one(self, endpoint: Endpoint, dues: list[Due]) -> int:
        """Deliver one endpoint's due deliveries, then free it for the next pass."""
        try:
            return self._deliver({endpoint.id: endpoint}, endpoint, dues)
        except Exception:
            log.exception("webhook delivery to endpoint %d failed", endpoint.id)
            raise
        finally:
            with self._busy_lock:
                self._busy.discard(endpoint.id)

    def _deliver(self, endpoints: dict[int, Endpoint], endpoint: Endpoint, dues: list[Due]) -> int:
        """Send an endpoint's due deliveries a few at a time; when a whole wave fails, leave
        the rest for later (a receiver that is down gets no flood). Return the attempts."""
        if not dues:
            return 0
        self.key()  # a missing key file fails the pass here, before any attempt is counted
        step = self.policy.concurrency
        for start in range(0, len(dues), step):
            wave = [(endpoint, due) for due in dues[start : start + step]]
            results = list(self._pool.map(lambda pair: self._attempt(*pair), wave))
            self._record(endpoints, wave, results, self.clock())
            if not any(200 <= status < 300 for status, _ in results):
                return start + len(wave)
            endpoints[endpoint.id] = replace(endpoint, failures=0, failing_since=None)
        return len(dues)

    def _attempt(self, endpoint: Endpoint, due: Due) -> tuple[int, str]:
        body = body_of(due)
        stamp = int(self.clock())
        secret = endpoint_secret(self.key(), endpoint.uid, endpoint.secret_version)
        headers = {
            "content-type": "application/json",
            "user-agent": f"Creditbook-Webhooks/{__version__}",
            "webhook-id": due.event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, due.event_id, stamp, body),
        }
        return self.sender(endpoint.url, body, headers, self.policy.timeout)

    def _record(
        self,
        endpoints: dict[int, Endpoint],
        batch: list[tuple[Endpoint, Due]],
        results: list[tuple[int, str]],
        now: float,
    ) -> None:
        outcomes: list[Outcome] = []
        succeeded: set[int] = set()
        failed: set[int] = set()
        for (endpoint, due), (status, error) in zip(batch, results, strict=True):
            ok = 200 <= status < 300
            give_up = not ok and now - due.created_at >= self.policy.retry_window
            retry_at = now + backoff(due.attempts + 1, self.policy)
            outcomes.append(Outcome(due, ok, status, error or f"HTTP {status}", retry_at, give_up))
            (succeeded if ok else failed).add(endpoint.id)
            metrics.DELIVERIES.labels("delivered" if ok else "failed" if give_up else "retry").inc()
            if not ok:
                log.warning(
                    "webhook %s to endpoint %d failed (attempt %d): %s",
                    due.event_id,
                    endpoint.id,
                    due.attempts + 1,
                    error or f"HTTP {status}",
                )
        states: dict[int, tuple[int, float | None, float]] = {}
        disable: dict[int, str] = {}
        for endpoint_id in succeeded:
            if endpoints[endpoint_id].failures:
                states[endpoint_id] = (0, None, 0.0)
        for endpoint_id in failed - succeeded:
            endpoint = endpoints[endpoint_id]
            since = endpoint.failing_since if endpoint.failing_since is not None else now
            failures = endpoint.failures + 1
            states[endpoint_id] = (failures, since, now + backoff(failures, self.policy))
            if now - since >= self.policy.retry_window:
                note = (
                    f"disabled at {datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M:%S} UTC after "
                    f"failing continuously for {now - since:.0f} s"
                )
                disable[endpoint_id] = note
                metrics.ENDPOINTS_DISABLED.inc()
                log.error("webhook endpoint %d (%s) %s", endpoint_id, endpoint.url, note)
        self.store.record_outcomes(outcomes, states, disable, now)

    # --- running ---------------------------------------------------------------------------

    def run(self) -> None:
        """Deliver until ``stop()``: passes back to back while there is work, else every
        ``interval`` seconds. A database failure is logged and retried."""
        while not self._stop.is_set():
            try:
                busy = self.run_once(wait=False)
            except errors.StoreError as exc:
                log.error("webhook delivery pass failed: %s", exc)
                busy = 0
                self._stop.wait(1.0)
            except Exception:  # noqa: BLE001 keep delivering whatever one pass ran into
                log.exception("webhook delivery pass failed")
                busy = 0
                self._stop.wait(1.0)
            if not busy:
                self._stop.wait(self.policy.interval)
        if self.leading:
            try:
                self.store.release_lease(LEASE, self.holder)
            except errors.StoreError:
                pass  # it expires by itself
            self.leading = False

    def start(self) -> None:
        """Run on a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="creditbook-webhooks", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """Ask ``run`` to return after the current pass (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """Cut the attempts in flight (they are retried later, at least once), give up the
        lease and stop: never waiting for a receiver."""
        self._stop.set()
        self.watchdog.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._endpoints.shutdown(wait=True)
        self._pool.shutdown(wait=True)


def add_endpoint(
    store: WebhookStore,
    key: bytes,
    url: str,
    events: str | None,
    description: str,
    actor: Actor,
    at: str,
) -> tuple[Endpoint, str]:
    """Validate and create an endpoint; return it and its signing secret (shown once)."""
    check_text(description, "description")
    if len(description) > 255:
        raise errors.FieldTooLong("description")
    endpoint = store.add_endpoint(check_url(url), check_events(events), description, actor, at)
    return endpoint, endpoint_secret(key, endpoint.uid, endpoint.secret_version)


def dispatcher_for(store: object, settings: Settings) -> Dispatcher | None:
    """A dispatcher for a store with the settings' timing and key file (read when needed)."""
    if not isinstance(store, WebhookStore):
        return None
    try:
        path: str | None = settings.key_file()
        problem = ""
    except SettingsError as exc:
        path, problem = None, str(exc)

    def key() -> bytes:
        if path is None:
            raise errors.StoreError(problem)
        return load_key(path)

    policy = Policy(
        timeout=settings.webhook_timeout,
        retry_base=settings.webhook_retry_base,
        retry_cap=settings.webhook_retry_cap,
        retry_window=settings.webhook_retry_window,
        lease=settings.webhook_lease,
    )
    return Dispatcher(store, key, policy)
