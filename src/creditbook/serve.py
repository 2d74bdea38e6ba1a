"""``creditbook serve``: run the HTTP API on uvicorn, optionally seeding a demo on first start."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
from typing import Any

from .accesslog import iso_millis
from .config import Settings, SettingsError
from .ledger import Ledger
from .model import Actor
from .store import store_from_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


#: Fields a log call may add with ``extra=`` that the JSON format carries.
JSON_FIELDS = ("request_id", "action", "client_id", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one line of JSON."""
        out: dict[str, object] = {
            "time": iso_millis(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JSON_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


#: uvicorn's own log lines in the JSON format too (``log_format=json``).
UVICORN_JSON_LOGS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "creditbook.serve.JsonFormatter"}},
    "handlers": {
        "json": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        name: {"handlers": ["json"], "level": "INFO", "propagate": False}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    },
}


def setup_logging(level: str, fmt: str = "text") -> None:
    """Send Creditbook's logs to stderr (once per process), as text or JSON lines."""
    logger = logging.getLogger("creditbook")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    # The multipart parser logs a warning per malformed body: clients could flood the log.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)


def seed_demo(ledger: Ledger, settings: Settings) -> str | None:
    """On an empty database, create a demo admin, credential and client; return what to print."""
    if ledger.list_admins():
        return None
    actor = Actor("cli:demo")
    password = secrets.token_urlsafe(12)
    ledger.add_admin(
        "demo",
        password,
        firstname="Demo",
        lastname="Admin",
        email="demo@example.com",
        access="owner",
        actor=actor,
    )
    identifier, secret = ledger.add_credential(
        "demo", description="created by serve --demo", actor=actor
    )
    client = ledger.add_client(
        firstname="Sample",
        lastname="Client",
        email="sample@example.com",
        companyname="Sample Co",
        actor=actor,
    )
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/includes/api.php"
    return "\n".join(
        [
            "Demo data created (shown once; secrets are stored only as hashes):",
            f"  admin:      demo / {password}  (console: http://{host}:{settings.port}/admin/)",
            f"  identifier: {identifier}",
            f"  secret:     {secret}",
            f"  client id:  {client.client_id}",
            "",
            "Try it:",
            f"  curl -s {url} -d action=AddCredit -d identifier={identifier} -d secret={secret} "
            f"-d clientid={client.client_id} -d amount=12.34 -d 'description=Demo credit' "
            "-d responsetype=json",
            "",
        ]
    )


METRICS_PREFIX = "creditbook-metrics-"


def _remove_orphaned_metrics() -> None:
    """Remove the metrics folders of servers that died without cleaning up (SIGKILL)."""
    folder = tempfile.gettempdir()
    for name in os.listdir(folder):
        pid = name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if not name.startswith(METRICS_PREFIX) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def serve(settings: Settings, *, demo: bool = False) -> int:
    """Migrate, optionally seed the demo, then serve until interrupted."""
    import uvicorn

    _tls(settings)  # a missing certificate is said before anything starts
    setup_logging(settings.log_level, settings.log_format)
    store = store_from_settings(settings)
    try:
        store.migrate()
        if demo:
            message = seed_demo(Ledger(store, timezone=settings.timezone or None), settings)
            print(message or "The database already has admins: no demo data created.", flush=True)
    finally:
        store.close()
    # Workers are separate processes: they rebuild the same settings from the environment.
    os.environ.update(settings.to_env())
    made = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts into its own files here; /metrics adds them up (metrics.py).
        _remove_orphaned_metrics()
        made = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    try:
        _run(uvicorn, settings)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


def _tls(settings: Settings) -> dict[str, str]:
    """uvicorn's TLS arguments: both files or neither."""
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise SettingsError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    if not settings.ssl_certfile:
        return {}
    for path in (settings.ssl_certfile, settings.ssl_keyfile):
        if not os.access(path, os.R_OK):
            raise SettingsError(f"cannot read {path}")
    return {"ssl_certfile": settings.ssl_certfile, "ssl_keyfile": settings.ssl_keyfile}


def _run(uvicorn: Any, settings: Settings) -> None:
    # uvicorn stops gracefully on SIGTERM, then raises the signal again with the handler it
    # found: an ignoring one lets the stop end as what it is, a clean exit (status 0).
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        "creditbook.http:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        access_log=False,
        # Deadlines and a connection cap against slow clients (transport.py).
        http="creditbook.transport:GuardedHttpProtocol",
        # Creditbook resolves X-Forwarded-For itself, from the trusted_proxies setting only.
        proxy_headers=False,
        log_level=settings.log_level.lower(),
        server_header=False,
        timeout_graceful_shutdown=settings.grace_seconds,
        **_tls(settings),
        **({"log_config": UVICORN_JSON_LOGS} if settings.log_format == "json" else {}),
    )
