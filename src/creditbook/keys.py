"""The server's secret key. Webhook signing secrets are derived from it and never stored.

An endpoint's secret is HMAC-SHA256(key, endpoint uid and secret version), shown once as
``whsec_<base64>`` (the Standard Webhooks form). The database and its backups hold no secret;
the key file (mode 0600) is the one thing to keep safe and, on PostgreSQL, to give every host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from .errors import StoreError

KEY_BYTES = 32


def load_key(path: str, *, create: bool = False) -> bytes:
    """Read the key file; with ``create``, write a new random key there first if it is missing."""
    if create and not os.path.exists(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        except OSError as exc:
            raise StoreError(f"cannot create the key file {path}: {exc}") from exc
        else:
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(KEY_BYTES).hex() + "\n")
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError as exc:
        raise StoreError(f"cannot read the key file {path}: {exc}") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise StoreError(f"the key file {path} does not hold a key of {KEY_BYTES} bytes in hex")
    return key


def endpoint_secret(key: bytes, uid: str, version: int) -> str:
    """The signing secret of a webhook endpoint, in the Standard Webhooks ``whsec_`` form."""
    raw = hmac.new(key, f"creditbook-webhook|{uid}|{version}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(raw).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt (Standard Webhooks ``v1``)."""
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(raw, signed, hashlib.sha256).digest()).decode()
