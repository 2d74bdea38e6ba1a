"""Passkeys (WebAuthn, with ``webauthn`` from PyPI): registering one on an admin's Account page,
and using one as the second factor or, an owner's setting, instead of the password.

Each ceremony's challenge is kept with the console session that asked for it and used once.
The relying party is the host the console is reached at (its name without the port)."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

import webauthn
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from . import errors
from .model import Actor, Admin
from .store.factors import Passkey

if TYPE_CHECKING:
    from .ledger import Ledger

RP_NAME = "Creditbook"


class PasskeyRefused(errors.ValidationError):
    """A passkey ceremony that did not verify."""


class Passkeys:
    """Registration and use of passkeys over a ledger's store."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.store = ledger.store.factors

    def registration_options(self, admin: Admin, rp_id: str) -> tuple[str, str]:
        """Options for ``navigator.credentials.create`` (JSON) and their challenge."""
        challenge = secrets.token_bytes(32)
        options = webauthn.generate_registration_options(
            rp_id=rp_id,
            rp_name=RP_NAME,
            user_name=admin.username,
            user_id=f"creditbook-admin-{admin.id}".encode(),
            user_display_name=admin.username,
            challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=_descriptors(self.store.passkeys(admin.id)),
        )
        return webauthn.options_to_json(options), bytes_to_base64url(challenge)

    def register(
        self,
        admin: Admin,
        credential: str,
        challenge: str,
        rp_id: str,
        origin: str,
        name: str,
        actor: Actor,
    ) -> Passkey:
        """Verify a new credential against the challenge and keep it."""
        if not challenge:
            raise PasskeyRefused("The passkey request expired: try again")
        try:
            verified = webauthn.verify_registration_response(
                credential=_parsed(credential),
                expected_challenge=webauthn.base64url_to_bytes(challenge),
                expected_rp_id=rp_id,
                expected_origin=origin,
            )
        except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
            raise PasskeyRefused(f"The passkey was not accepted: {exc}"[:200]) from None
        label = (name or "").strip()[:60] or "Passkey"
        key = Passkey(
            0,
            bytes_to_base64url(verified.credential_id),
            bytes_to_base64url(verified.credential_public_key),
            int(verified.sign_count),
            label,
            "",
            "",
        )
        detail = f"Passkey {label!r} registered for {admin.username}"
        self.store.add_passkey(admin.id, key, actor, self.ledger.now(), detail)
        return key

    def authentication_options(self, admin: Admin, rp_id: str) -> tuple[str, str]:
        """Options for ``navigator.credentials.get`` (the admin's passkeys) and the challenge."""
        keys = self.store.passkeys(admin.id)
        challenge = secrets.token_bytes(32)
        options = webauthn.generate_authentication_options(
            rp_id=rp_id,
            challenge=challenge,
            allow_credentials=_descriptors(keys),
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return webauthn.options_to_json(options), bytes_to_base64url(challenge)

    def authenticate(
        self,
        admin: Admin,
        credential: str,
        challenge: str,
        rp_id: str,
        origin: str,
        verified_user: bool = False,
    ) -> bool:
        """Whether the assertion is from one of the admin's passkeys, for this challenge;
        ``verified_user``: the authenticator must have verified its user (a PIN, a fingerprint),
        as when the passkey stands in for the password too."""
        if not challenge:
            return False
        parsed = _parsed(credential)
        raw_id = str(parsed.get("rawId") or parsed.get("id") or "")
        key = next((k for k in self.store.passkeys(admin.id) if k.credential_id == raw_id), None)
        if key is None:
            return False
        try:
            verified = webauthn.verify_authentication_response(
                credential=parsed,
                expected_challenge=webauthn.base64url_to_bytes(challenge),
                expected_rp_id=rp_id,
                expected_origin=origin,
                credential_public_key=webauthn.base64url_to_bytes(key.public_key),
                credential_current_sign_count=key.sign_count,
                require_user_verification=verified_user,
            )
        except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError):
            return False
        return self.store.passkey_used(key.id, int(verified.new_sign_count), self.ledger.now())


def _descriptors(keys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(k.credential_id)) for k in keys
    ]


def _parsed(credential: str) -> dict[str, object]:
    try:
        value = json.loads(credential)
    except (ValueError, TypeError):
        raise PasskeyRefused("The passkey response is not JSON") from None
    if not isinstance(value, dict):
        raise PasskeyRefused("The passkey response is not an object")
    return value
