"""Two-factor login with an authenticator app (TOTP, RFC 6238): enrolment with a QR code and ten
one-time recovery codes, checking a code once (a replayed code is refused), and removal.

The secret is stored encrypted (AES-GCM) under a key derived from the server's key file, the one
webhook signing secrets come from; recovery codes are stored as SHA-256 digests. Neither is ever
logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import errors
from .keys import load_key
from .model import Actor, Admin

if TYPE_CHECKING:
    from .ledger import Ledger

ISSUER = "Creditbook"
RECOVERY_CODES = 10


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


class Factors:
    """An admin's second factor over a ledger's store and the key file."""

    def __init__(self, ledger: Ledger, key_file: str, clock: Callable[[], float] = time.time):
        self.ledger = ledger
        self.store = ledger.store.factors
        self._key_file = key_file
        self._aead: AESGCM | None = None
        self.clock = clock

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            if not self._key_file:
                raise errors.Conflict(
                    "Two-factor login needs the server's key file: the operator sets "
                    "CREDITBOOK_SECRET_KEY_FILE (the same file on every host)"
                )
            key = load_key(self._key_file, create=True)
            derived = hmac.new(key, b"creditbook-totp-v1", hashlib.sha256).digest()
            self._aead = AESGCM(derived)
        return self._aead

    def _seal(self, secret: str, admin_id: int) -> str:
        nonce = os.urandom(12)
        sealed = self._cipher().encrypt(nonce, secret.encode(), str(admin_id).encode())
        return "v1:" + base64.b64encode(nonce + sealed).decode()

    def _open(self, stored: str, admin_id: int) -> str:
        try:
            raw = base64.b64decode(stored.removeprefix("v1:"))
            plain = self._cipher().decrypt(raw[:12], raw[12:], str(admin_id).encode())
        except Exception:  # noqa: BLE001 - any failure means the key file is not the one used
            raise errors.StoreError(
                "The second-factor secret cannot be read with this server's key file"
            ) from None
        return plain.decode()

    def enabled(self, admin: Admin) -> bool:
        """Whether the admin has a second factor: a confirmed authenticator app or a passkey."""
        return self.totp_enabled(admin) or bool(self.store.passkeys(admin.id))

    def totp_enabled(self, admin: Admin) -> bool:
        """Whether the admin has a confirmed authenticator app."""
        found = self.store.totp(admin.id)
        return found is not None and found[1]

    def start(self, admin: Admin, actor: Actor) -> tuple[str, str]:
        """Begin enrolment: a new secret (kept unconfirmed); return it and its otpauth URI."""
        if self.totp_enabled(admin):
            raise errors.Conflict("A second factor is already set up: remove it first")
        secret = pyotp.random_base32()
        self.store.start(admin.id, self._seal(secret, admin.id), actor, self.ledger.now())
        return secret, self.uri(secret, admin)

    def pending_secret(self, admin: Admin) -> str | None:
        """The unconfirmed secret of an enrolment in progress."""
        found = self.store.totp(admin.id)
        if found is None or found[1]:
            return None
        return self._open(found[0], admin.id)

    def uri(self, secret: str, admin: Admin) -> str:
        """The ``otpauth://`` URI an authenticator app reads."""
        return pyotp.TOTP(secret).provisioning_uri(name=admin.username, issuer_name=ISSUER)

    def confirm(self, admin: Admin, code: str, actor: Actor) -> list[str]:
        """Finish enrolment with a code from the app; return the recovery codes (shown once)."""
        secret = self.pending_secret(admin)
        if secret is None:
            raise errors.ValidationError("Start again: there is no enrolment in progress")
        step = self._step(secret, code)
        if step is None:
            raise errors.ValidationError("That code is not right: use the app's current code")
        return self._finish(admin, step, actor)

    def enrol_confirmed(self, admin: Admin, actor: Actor) -> tuple[str, list[str]]:
        """Enrol at once (the operator's CLI): return the URI and the recovery codes."""
        self.store.remove(
            admin.id, actor, self.ledger.now(), f"Second factor reset for {admin.username}"
        )
        secret, uri = self.start(admin, actor)
        codes = self._finish(admin, 0, actor)
        return uri, codes

    def _finish(self, admin: Admin, step: int, actor: Actor) -> list[str]:
        codes = [
            "-".join(secrets.token_hex(5)[i : i + 5] for i in (0, 5)) for _ in range(RECOVERY_CODES)
        ]
        self.store.confirm(
            admin.id, step, [_digest(c) for c in codes], actor, self.ledger.now(),
            f"Authenticator enrolled for {admin.username}",
        )  # fmt: skip
        return codes

    def _step(self, secret: str, code: str) -> int | None:
        """The time step a code belongs to (this one or the one either side), or None."""
        digits = code.strip().replace(" ", "")
        if not (digits.isascii() and digits.isdigit() and len(digits) == 6):
            return None
        totp = pyotp.TOTP(secret)
        now = self.clock()
        for offset in (0, -1, 1):
            moment = now + offset * totp.interval
            if hmac.compare_digest(totp.at(moment), digits):
                return int(moment // totp.interval)
        return None

    def check(self, admin: Admin, code: str) -> bool:
        """Whether ``code`` is a valid code (once) or an unused recovery code (used now)."""
        found = self.store.totp(admin.id)
        if found is None or not found[1]:
            return False
        step = self._step(self._open(found[0], admin.id), code)
        if step is not None:
            return self.store.use_step(admin.id, step)
        text = code.strip()
        if len(text.replace("-", "")) == 10:
            return self.store.use_code(admin.id, _digest(text), self.ledger.now())
        return False

    def disable(self, admin: Admin, actor: Actor) -> bool:
        """Remove the admin's second factor and recovery codes."""
        detail = f"Second factor removed for {admin.username}"
        return self.store.remove(admin.id, actor, self.ledger.now(), detail)
