"""Passkeys (WebAuthn) ceremonies with py_webauthn: options, challenges, verification.

The relying party is PUBLIC_URL, never the request: its host is the RP ID
and its scheme and host (with port) the origin the browser must report.
Challenges are random, kept in `webauthn_challenges` for 5 minutes, and
consumed by one conditional DELETE on (challenge, purpose, user, not
expired) before a response is verified: a replayed response finds no row.

What the library decides we keep: origin, RP ID hash, user presence and
verification, the signature. The sign count we decide ourselves, after the
signature is good: a synced passkey (backup eligible) may report 0 or not
move, which is accepted (keycloak/keycloak#8046); on any other key a count
that does not go up, once it has moved, is refused as a possible clone.

Nothing here audits or mails: failures raise PasskeyError with a reason
code, and the account domain turns them into messages and audit rows. The
library's own exception text is logged for developers, never shown.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from webapp.extensions import db
from webapp.logs import quoted
from webapp.models import ChallengePurpose, User, WebAuthnChallenge, WebAuthnCredential, utc_now

logger = logging.getLogger("webapp.passkeys")

CHALLENGE_SECONDS = 5 * 60
CHALLENGE_BYTES = 32
USER_HANDLE_BYTES = 32
RP_NAME = "Keystone"
# A browser's answer is a few kilobytes; anything far larger is not one.
MAX_RESPONSE_CHARS = 32 * 1024
_TRANSPORTS = {transport.value for transport in AuthenticatorTransport}


class PasskeyError(Exception):
    """A ceremony failed; `reason` says why, for messages and the audit log.

    Reasons: "malformed" (not a WebAuthn response), "expired" (no such
    challenge: used, expired, or for another purpose or user), "unknown"
    (no such credential, or not this user's), "verification" (the library
    refused it: origin, RP ID, user verification, signature), "sign_count"
    (a counter that went backwards), "duplicate" (already registered).
    """

    def __init__(self, reason: str, credential: WebAuthnCredential | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.credential = credential


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str


def relying_party() -> RelyingParty:
    """Return the RP ID (host of PUBLIC_URL) and the expected origin (no trailing slash)."""
    parts = urlsplit(current_app.config["PUBLIC_URL"])
    return RelyingParty(id=parts.hostname or "", origin=f"{parts.scheme}://{parts.netloc}")


# --- challenges --------------------------------------------------------------


def issue_challenge(purpose: str, user: User | None = None) -> bytes:
    """Store a new single-use challenge for `purpose` (and `user`), and return it.

    Expired challenges are deleted on the way, so the table holds only the
    last five minutes' worth.
    """
    now = utc_now()
    db.session.execute(
        delete(WebAuthnChallenge)
        .where(WebAuthnChallenge.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    db.session.add(
        WebAuthnChallenge(
            challenge=bytes_to_base64url(challenge),
            purpose=purpose,
            user_id=user.id if user is not None else None,
            created_at=now,
            expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
        )
    )
    db.session.flush()
    return challenge


def consume_challenge(challenge: bytes, purpose: str, user: User | None) -> bool:
    """Use up a challenge we issued for this purpose and user; False if there is none.

    One conditional DELETE: of two requests carrying the same challenge,
    exactly one deletes the row.
    """
    owner = (
        WebAuthnChallenge.user_id.is_(None)
        if user is None
        else WebAuthnChallenge.user_id == user.id
    )
    result = db.session.execute(
        delete(WebAuthnChallenge)
        .where(
            WebAuthnChallenge.challenge == bytes_to_base64url(challenge),
            WebAuthnChallenge.purpose == purpose,
            owner,
            WebAuthnChallenge.expires_at > utc_now(),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def void_challenges(user: User) -> int:
    """Delete every challenge issued to `user` (open ceremonies end); return how many."""
    result = db.session.execute(
        delete(WebAuthnChallenge)
        .where(WebAuthnChallenge.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


# --- options -----------------------------------------------------------------


def user_handle(user: User) -> bytes:
    """Return the user's WebAuthn user handle, making a random one the first time."""
    if user.webauthn_handle is None:
        user.webauthn_handle = secrets.token_bytes(USER_HANDLE_BYTES)
    return user.webauthn_handle


def user_credentials(user: User) -> list[WebAuthnCredential]:
    return list(
        db.session.scalars(
            select(WebAuthnCredential)
            .where(WebAuthnCredential.user_id == user.id)
            .order_by(WebAuthnCredential.id)
        )
    )


def _descriptors(credentials: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=credential.credential_id,
            transports=[
                AuthenticatorTransport(t)
                for t in (credential.transports or "").split(",")
                if t in _TRANSPORTS
            ]
            or None,
        )
        for credential in credentials
    ]


def registration_options(user: User) -> str:
    """Return the JSON options for adding a passkey to `user` (the view commits)."""
    rp = relying_party()
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_id=user_handle(user),
        user_name=user.username,
        user_display_name=user.username,
        challenge=issue_challenge(ChallengePurpose.REGISTER, user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(user_credentials(user)),
    )
    return options_to_json(options)


def authentication_options(purpose: str, user: User | None = None) -> str:
    """Return the JSON options for signing in (`user` None: any discoverable passkey)
    or for proving to be `user` with one of their passkeys (the view commits)."""
    rp = relying_party()
    allowed = _descriptors(user_credentials(user)) if user is not None else []
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=issue_challenge(purpose, user),
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


# --- verification ------------------------------------------------------------


def _challenge_of(client_data_json: bytes) -> bytes:
    return parse_client_data_json(client_data_json).challenge


def verify_registration(user: User, response: str, name: str) -> WebAuthnCredential:
    """Verify the browser's answer to `registration_options` and add the passkey.

    Raises PasskeyError. The challenge is used up whatever the outcome.
    """
    if not response or len(response) > MAX_RESPONSE_CHARS:
        raise PasskeyError("malformed")
    try:
        credential = parse_registration_credential_json(response)
        challenge = _challenge_of(credential.response.client_data_json)
    except Exception as exc:  # any defect in what the browser sent is a refusal
        logger.info("passkey registration refused: malformed (%s)", type(exc).__name__)
        raise PasskeyError("malformed") from None
    if not consume_challenge(challenge, ChallengePurpose.REGISTER, user):
        raise PasskeyError("expired")
    rp = relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
    except Exception as exc:
        logger.info("passkey registration refused: %s", quoted(exc))
        raise PasskeyError("verification") from None
    taken = db.session.scalar(
        select(WebAuthnCredential.id).where(
            WebAuthnCredential.credential_id == verified.credential_id
        )
    )
    if taken is not None:
        raise PasskeyError("duplicate")
    transports = [
        t.value if isinstance(t, AuthenticatorTransport) else str(t)
        for t in (credential.response.transports or [])
    ]
    passkey = WebAuthnCredential(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(t for t in transports if t in _TRANSPORTS)[:255] or None,
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        name=name,
        created_at=utc_now(),
    )
    db.session.add(passkey)
    db.session.flush()
    return passkey


def verify_authentication(
    response: str, purpose: str, user: User | None = None
) -> WebAuthnCredential:
    """Verify the browser's answer to `authentication_options` and return the passkey used.

    With `user`, the passkey must be that user's and the challenge issued to
    them: a passkey of user A never completes a step for user B. Without,
    the passkey names its owner (a discoverable credential), and the user
    handle it returns must be that owner's. Raises PasskeyError; the
    challenge is used up whatever the outcome. Updates the sign count and
    the last use (the view commits).
    """
    if not response or len(response) > MAX_RESPONSE_CHARS:
        raise PasskeyError("malformed")
    try:
        credential = parse_authentication_credential_json(response)
        challenge = _challenge_of(credential.response.client_data_json)
    except Exception as exc:  # any defect in what the browser sent is a refusal
        logger.info("passkey sign-in refused: malformed (%s)", type(exc).__name__)
        raise PasskeyError("malformed") from None
    if not consume_challenge(challenge, purpose, user):
        raise PasskeyError("expired")
    passkey = db.session.scalars(
        select(WebAuthnCredential).where(WebAuthnCredential.credential_id == credential.raw_id)
    ).first()
    if passkey is None or (user is not None and passkey.user_id != user.id):
        raise PasskeyError("unknown")
    handle = credential.response.user_handle
    if handle is not None and handle != passkey.user.webauthn_handle:
        raise PasskeyError("unknown", passkey)
    if user is None and handle is None:
        # A discoverable sign-in must say whose passkey it is.
        raise PasskeyError("unknown", passkey)
    rp = relying_party()
    try:
        # The count is judged below, once the signature is known to be good.
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except Exception as exc:
        logger.info("passkey sign-in refused: %s", quoted(exc))
        raise PasskeyError("verification", passkey) from None
    new_count = verified.new_sign_count
    if not passkey.backup_eligible and (new_count or passkey.sign_count):
        if new_count <= passkey.sign_count:
            raise PasskeyError("sign_count", passkey)
    passkey.sign_count = max(new_count, passkey.sign_count)
    passkey.backup_state = verified.credential_backed_up
    passkey.last_used_at = utc_now()
    return passkey
