"""Two-factor login's store part (``store.factors``): TOTP secrets (encrypted by the caller)
and hashed recovery codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Actor

if TYPE_CHECKING:
    from .base import SqlStore

TOTP_OF = "SELECT secret, confirmed, last_step FROM admin_totp WHERE admin_id = :admin_id"
TOTP_SET = """
INSERT INTO admin_totp (admin_id, secret, confirmed, last_step, created_at)
VALUES (:admin_id, :secret, :confirmed, 0, :at)
ON CONFLICT (admin_id) DO UPDATE SET secret = excluded.secret, confirmed = excluded.confirmed,
    last_step = 0, created_at = excluded.created_at
"""
TOTP_CONFIRM = "UPDATE admin_totp SET confirmed = 1, last_step = :step WHERE admin_id = :admin_id"
#: A code's time step is used once: only a later step moves it on.
TOTP_STEP = """
UPDATE admin_totp SET last_step = :step
WHERE admin_id = :admin_id AND confirmed = 1 AND last_step < :step
"""
TOTP_DELETE = "DELETE FROM admin_totp WHERE admin_id = :admin_id"
CODES_DELETE = "DELETE FROM recovery_codes WHERE admin_id = :admin_id"
CODE_INSERT = "INSERT INTO recovery_codes (admin_id, hash) VALUES (:admin_id, :hash)"
CODE_USE = """
UPDATE recovery_codes SET used_at = :at WHERE admin_id = :admin_id AND hash = :hash AND used_at = ''
"""
CODES_LEFT = "SELECT COUNT(*) FROM recovery_codes WHERE admin_id = :admin_id AND used_at = ''"
PASSKEYS_OF = """
SELECT id, credential_id, public_key, sign_count, name, created_at, last_used FROM passkeys
WHERE admin_id = :admin_id ORDER BY id
"""
PASSKEY_INSERT = """
INSERT INTO passkeys (admin_id, credential_id, public_key, sign_count, name, created_at)
VALUES (:admin_id, :credential_id, :public_key, :sign_count, :name, :at)
"""
#: A use moves the signature counter on; an authenticator that counts must count up.
PASSKEY_USED = """
UPDATE passkeys SET sign_count = :sign_count, last_used = :at
WHERE id = :id AND (sign_count < :sign_count OR (sign_count = 0 AND :sign_count = 0))
"""
PASSKEY_DELETE = "DELETE FROM passkeys WHERE admin_id = :admin_id AND id = :id"
PASSKEYS_DELETE = "DELETE FROM passkeys WHERE admin_id = :admin_id"


@dataclass(frozen=True, slots=True)
class Passkey:
    """A registered passkey (``credential_id`` and ``public_key`` in base64url)."""

    id: int
    credential_id: str
    public_key: str
    sign_count: int
    name: str
    created_at: str
    last_used: str


class FactorStore:
    """Secrets and recovery codes, with activity lines for every change."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def totp(self, admin_id: int) -> tuple[str, bool, int] | None:
        """An admin's encrypted secret, whether it is confirmed, and the last step used."""
        with self._store._read() as cur:
            row = self._store._run(cur, TOTP_OF, admin_id=admin_id).fetchone()
        return None if row is None else (row[0], bool(row[1]), int(row[2]))

    def codes_left(self, admin_id: int) -> int:
        """Recovery codes not used yet."""
        with self._store._read() as cur:
            return int(self._store._run(cur, CODES_LEFT, admin_id=admin_id).fetchone()[0])

    def start(self, admin_id: int, secret: str, actor: Actor, at: str) -> None:
        """Keep a new, unconfirmed secret (replacing any unconfirmed one)."""
        self._store._transact(
            lambda cur: self._store._run(
                cur, TOTP_SET, admin_id=admin_id, secret=secret, confirmed=0, at=at
            )
        )

    def confirm(
        self, admin_id: int, step: int, hashes: list[str], actor: Actor, at: str, detail: str
    ) -> None:
        """Confirm the secret and store fresh recovery codes (hashed)."""

        def work(cur: object) -> None:
            self._store._run(cur, TOTP_CONFIRM, admin_id=admin_id, step=step)
            self._store._run(cur, CODES_DELETE, admin_id=admin_id)
            self._store._run_many(
                cur, CODE_INSERT, [{"admin_id": admin_id, "hash": h} for h in hashes]
            )
            self._store._activity(cur, actor, at, "2fa-enrolled", detail)

        self._store._transact(work)

    def use_step(self, admin_id: int, step: int) -> bool:
        """Claim a time step (False: it, or a later one, was used already)."""
        return bool(
            self._store._transact(
                lambda cur: self._store._run(cur, TOTP_STEP, admin_id=admin_id, step=step).rowcount
            )
        )

    def use_code(self, admin_id: int, digest: str, at: str) -> bool:
        """Use a recovery code once (False: unknown or used)."""
        return bool(
            self._store._transact(
                lambda cur: (
                    self._store._run(cur, CODE_USE, admin_id=admin_id, hash=digest, at=at).rowcount
                )
            )
        )

    def passkeys(self, admin_id: int) -> list[Passkey]:
        """An admin's passkeys, oldest first."""
        with self._store._read() as cur:
            rows = self._store._run(cur, PASSKEYS_OF, admin_id=admin_id).fetchall()
        return [Passkey(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5], r[6]) for r in rows]

    def add_passkey(self, admin_id: int, key: Passkey, actor: Actor, at: str, detail: str) -> None:
        """Register a passkey (an activity line says so)."""

        def work(cur: object) -> None:
            self._store._run(
                cur, PASSKEY_INSERT, admin_id=admin_id, credential_id=key.credential_id,
                public_key=key.public_key, sign_count=key.sign_count, name=key.name, at=at,
            )  # fmt: skip
            self._store._activity(cur, actor, at, "2fa-enrolled", detail)

        self._store._transact(work)

    def passkey_used(self, key_id: int, sign_count: int, at: str) -> bool:
        """Record a use (False: the counter went back, a cloned authenticator)."""
        return bool(
            self._store._transact(
                lambda cur: (
                    self._store._run(
                        cur, PASSKEY_USED, id=key_id, sign_count=sign_count, at=at
                    ).rowcount
                )
            )
        )

    def remove_passkey(self, admin_id: int, key_id: int, actor: Actor, at: str) -> bool:
        """Remove one of an admin's passkeys."""

        def work(cur: object) -> bool:
            gone = self._store._run(cur, PASSKEY_DELETE, admin_id=admin_id, id=key_id).rowcount
            if gone:
                detail = f"Passkey #{key_id} removed"
                self._store._activity(cur, actor, at, "2fa-removed", detail)
            return bool(gone)

        return bool(self._store._transact(work))

    def remove(
        self, admin_id: int, actor: Actor, at: str, detail: str, passkeys: bool = False
    ) -> bool:
        """Remove an admin's authenticator app and recovery codes (and passkeys, with
        ``passkeys``); False when there was none."""

        def work(cur: object) -> bool:
            gone = self._store._run(cur, TOTP_DELETE, admin_id=admin_id).rowcount
            if passkeys:
                gone += self._store._run(cur, PASSKEYS_DELETE, admin_id=admin_id).rowcount
            self._store._run(cur, CODES_DELETE, admin_id=admin_id)
            if gone:
                self._store._activity(cur, actor, at, "2fa-removed", detail)
            return bool(gone)

        return bool(self._store._transact(work))

    def log(self, actor: Actor, at: str, action: str, detail: str) -> None:
        """An activity line of its own (a failed code, a login)."""
        self._store._transact(lambda cur: self._store._activity(cur, actor, at, action, detail))
