"""Prometheus metrics, correct across worker processes.

``creditbook serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker
imports this module: each process then counts into its own memory-mapped file and ``/metrics``
adds them up (``prometheus_client``'s multiprocess mode). Without that variable (an embedding
application, the tests' in-process app) the counters live in the process's default registry.
Gauges that describe the database (the webhook backlog) are read from the store at scrape time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "render"]

REQUESTS = Counter("creditbook_requests", "API requests by action and result", ["action", "result"])
LATENCY = Histogram(
    "creditbook_request_duration_seconds",
    "API request latency, from the whole request received to the reply",
    ["action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BATCH = Histogram(
    "creditbook_commit_batch_size",
    "Writes committed together by one group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
DATABASE_ERRORS = Counter("creditbook_database_errors", "Requests answered 503: database failed")
AUTH_FAILURES = Counter("creditbook_auth_failures", "Authentication failures counted for bans")
BANNED = Counter("creditbook_banned_requests", "Requests refused because the address is banned")
DELIVERIES = Counter(
    "creditbook_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered, retry, failed)",
    ["outcome"],
)
ENDPOINTS_DISABLED = Counter(
    "creditbook_webhook_endpoints_disabled",
    "Webhook endpoints disabled after failing for the whole retry window",
)

#: Per-action children, looked up once (``labels()`` costs more than the increment).
_children: dict[tuple[str, str], Any] = {}


def request(action: str, result: str, seconds: float) -> None:
    """Count one API request and its latency (``action`` must be a known action or "other")."""
    pair = (action, result)
    child = _children.get(pair)
    if child is None:
        child = _children[pair] = (REQUESTS.labels(action, result), LATENCY.labels(action))
    child[0].inc()
    child[1].observe(seconds)


class Backlog(Collector):
    """The webhook outbox backlog and the age of its oldest undelivered event, from the store."""

    def __init__(self, read: Callable[[], tuple[int, int, float | None, str | None]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the gauges (read from the store at each scrape)."""
        try:
            events, pending, oldest_delivery, oldest_event = self.read()
        except Exception:  # noqa: BLE001 a scrape must not fail because the database does
            return
        yield GaugeMetricFamily(
            "creditbook_webhook_backlog",
            "Events not yet delivered: new events plus pending deliveries",
            value=events + pending,
        )
        ages = [time.time() - oldest_delivery] if oldest_delivery is not None else []
        if oldest_event is not None:
            from datetime import datetime

            at = datetime.fromisoformat(oldest_event.replace("Z", "+00:00")).timestamp()
            ages.append(time.time() - at)
        yield GaugeMetricFamily(
            "creditbook_webhook_oldest_undelivered_seconds",
            "Age of the oldest event not yet delivered (0 when none)",
            value=max(ages + [0.0]),
        )


class Overdue(Collector):
    """Grants past their expiry day not expired yet, and the oldest one's age, from the store."""

    def __init__(self, read: Callable[[], tuple[int, float]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the gauges (read from the store at each scrape)."""
        try:
            count, age = self.read()
        except Exception:  # noqa: BLE001 a scrape must not fail because the database does
            return
        yield GaugeMetricFamily(
            "creditbook_grants_overdue",
            "Grants past their expiry day whose remaining amount has not expired yet",
            value=count,
        )
        yield GaugeMetricFamily(
            "creditbook_grants_oldest_overdue_seconds",
            "Time since the oldest overdue grant should have expired (0 when none)",
            value=age,
        )


def render(
    backlog: Callable[[], tuple[int, int, float | None, str | None]] | None,
    overdue: Callable[[], tuple[int, float]] | None = None,
) -> bytes:
    """The metrics of every worker process, in the Prometheus text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    if backlog is not None:
        registry.register(Backlog(backlog))
    if overdue is not None:
        registry.register(Overdue(overdue))
    return generate_latest(registry)


class _Default(Collector):
    """This process's own metrics (when not in multiprocess mode)."""

    def collect(self) -> Iterator[Any]:
        """Yield every metric of the default registry."""
        yield from REGISTRY.collect()
