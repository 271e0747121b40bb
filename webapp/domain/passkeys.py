"""Passkeys as the pages share them: listing, adding, removing, signing in, confirming.

The ceremonies live in the mechanism (`webapp.security.passkeys`); here
their outcomes become audit rows, mail and the messages people read.
Services add and flush; the views commit, on refusals too, so a used
challenge stays used and the refusal stays in the audit log.

For two-factor authentication: `has_passkey` / `passkey_count` tell
whether a passkey counts as a second factor, and `verify_passkey_for`
checks a passkey answer for one given user (a passkey of user A never
completes a step for user B).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select

from webapp.domain.audit import record
from webapp.extensions import db
from webapp.i18n import _, _l
from webapp.models import ChallengePurpose, RefreshToken, RevokeReason, User, WebAuthnCredential
from webapp.security import devices
from webapp.security import passkeys as ceremony
from webapp.security.passkeys import PasskeyError
from webapp.templating import format_ago, format_datetime

NAME_MAX = 60
# MAX_PASSKEY_ID: ids past the INTEGER column (32 bits on PostgreSQL) name nothing.
MAX_PASSKEY_ID = 2**31 - 1

# What people read when a ceremony is refused: never the library's text.
MESSAGES = {
    "malformed": _l("Your browser did not send a passkey. Try again."),
    "expired": _l("That passkey request has expired or was already used. Try again."),
    "unknown": _l("That passkey is not registered here. Use another way to sign in."),
    "verification": _l("That passkey could not be verified. Try again."),
    "sign_count": _l(
        "That passkey was refused: its counter went backwards, so it may have been copied. "
        "Use another way in, and remove the passkey if you do not trust it."
    ),
    "duplicate": _l("That passkey is already registered."),
    "inactive": _l("That passkey cannot be used to sign in."),
}


class PasskeyRefused(Exception):
    """A passkey ceremony was refused; `message` is for the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = str(MESSAGES[reason])


@dataclass(frozen=True, slots=True)
class PasskeyRow:
    """What the security page shows for one passkey, ready to print."""

    id: int
    name: str
    added: str
    last_used: str
    synced: bool


def passkey_count(user: User) -> int:
    """Return how many passkeys the user has."""
    return db.session.scalar(
        select(func.count())
        .select_from(WebAuthnCredential)
        .where(WebAuthnCredential.user_id == user.id)
    )


def has_passkey(user: User) -> bool:
    """Return whether the user has a passkey (it counts as a second factor)."""
    return (
        db.session.scalar(
            select(WebAuthnCredential.id).where(WebAuthnCredential.user_id == user.id).limit(1)
        )
        is not None
    )


def passkey_rows(user: User) -> list[PasskeyRow]:
    """Return the user's passkeys, oldest first, described for display."""
    found = db.session.execute(
        select(
            WebAuthnCredential.id,
            WebAuthnCredential.name,
            WebAuthnCredential.created_at,
            WebAuthnCredential.last_used_at,
            WebAuthnCredential.backup_eligible,
        )
        .where(WebAuthnCredential.user_id == user.id)
        .order_by(WebAuthnCredential.created_at, WebAuthnCredential.id)
    ).all()
    return [
        PasskeyRow(
            id=row.id,
            name=row.name,
            added=format_datetime(row.created_at),
            # How long ago reads better in a short list of keys: "3 days ago".
            last_used=format_ago(row.last_used_at) if row.last_used_at else _("Never"),
            synced=row.backup_eligible,
        )
        for row in found
    ]


def own_passkey(user: User, passkey_id: int) -> WebAuthnCredential | None:
    """Return the user's passkey with this id; another user's is None."""
    if not 0 < passkey_id <= MAX_PASSKEY_ID:
        return None
    return db.session.scalars(
        select(WebAuthnCredential).where(
            WebAuthnCredential.id == passkey_id, WebAuthnCredential.user_id == user.id
        )
    ).first()


# --- options (each issues a challenge: the view commits) ---------------------


def registration_options(user: User) -> str:
    """Return the JSON options for adding a passkey to the user."""
    return ceremony.registration_options(user)


def login_options() -> str:
    """Return the JSON options for signing in with any discoverable passkey."""
    return ceremony.authentication_options(ChallengePurpose.AUTHENTICATE)


def confirm_options(user: User) -> str:
    """Return the JSON options for confirming it is the user, with one of their passkeys."""
    return ceremony.authentication_options(ChallengePurpose.REAUTHENTICATE, user)


def second_factor_options(user: User) -> str:
    """Return the JSON options for a passkey as the second factor of the user's login."""
    return ceremony.authentication_options(ChallengePurpose.AUTHENTICATE, user)


# --- changes -----------------------------------------------------------------


def add_passkey(user: User, response: str, name: str) -> WebAuthnCredential:
    """Verify a new passkey and add it to the user; raises PasskeyRefused."""
    try:
        passkey = ceremony.verify_registration(user, response, name.strip()[:NAME_MAX])
    except PasskeyError as exc:
        record(
            "passkey_refused",
            target_user=user,
            details={"ceremony": "register", "reason": exc.reason},
        )
        raise PasskeyRefused(exc.reason) from None
    record("passkey_added", target_user=user, details={"passkey": passkey.id, "name": passkey.name})
    return passkey


def rename_passkey(passkey: WebAuthnCredential, name: str) -> None:
    """Give a passkey a new name."""
    passkey.name = name.strip()[:NAME_MAX]


def remove_passkey(user: User, passkey: WebAuthnCredential, *, keep_device_id: int) -> int:
    """Remove one of the user's passkeys and sign out the devices it signed in; return how many.

    It signs in nowhere from now on, and nothing it signed in stays signed
    in, remember cookies included; the device removing it stays (it has
    just proved who it is).
    """
    signed_out = devices.revoke_where(
        RefreshToken.user_id == user.id,
        RefreshToken.passkey_id == passkey.id,
        RefreshToken.id != keep_device_id,
        reason=RevokeReason.PASSKEY_REMOVED,
    )
    record(
        "passkey_removed",
        target_user=user,
        details={"passkey": passkey.id, "name": passkey.name, "devices": signed_out},
    )
    db.session.delete(passkey)
    db.session.flush()
    return signed_out


def remove_all_passkeys(user: User) -> int:
    """Remove every passkey of the user (an admin's two-factor reset); return how many."""
    result = db.session.execute(
        delete(WebAuthnCredential)
        .where(WebAuthnCredential.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


# --- proving who you are -----------------------------------------------------


def _refused(
    action: str, exc: PasskeyError, ceremony_name: str, user: User | None = None
) -> PasskeyRefused:
    owner = user or (exc.credential.user if exc.credential is not None else None)
    details = {"method": "passkey", "ceremony": ceremony_name, "reason": exc.reason}
    if exc.credential is not None:
        details["passkey"] = exc.credential.id
    record(action, target_user=owner, details=details)
    return PasskeyRefused(exc.reason)


def passkey_login(response: str) -> WebAuthnCredential:
    """Return the discoverable passkey that answered, of an active user; raises PasskeyRefused.

    A refusal is audited as a failed login (method passkey), with the
    account when the passkey names one. The other rules of a sign-in
    (`credentials.admission`) are the caller's to apply.
    """
    try:
        passkey = ceremony.verify_authentication(response, ChallengePurpose.AUTHENTICATE)
    except PasskeyError as exc:
        raise _refused("login_failed", exc, "login") from None
    if not passkey.user.is_active:
        record(
            "login_failed",
            target_user=passkey.user,
            details={"method": "passkey", "ceremony": "login", "reason": "inactive"},
        )
        raise PasskeyRefused("inactive")
    return passkey


def confirm_with_passkey(user: User, response: str) -> WebAuthnCredential:
    """Check that the signed-in user answered with one of their passkeys; raises PasskeyRefused."""
    try:
        return ceremony.verify_authentication(response, ChallengePurpose.REAUTHENTICATE, user)
    except PasskeyError as exc:
        raise _refused("passkey_refused", exc, "reauthenticate", user) from None


def verify_passkey_for(user: User, response: str) -> WebAuthnCredential:
    """Check a passkey answer as the second factor of `user`'s login; raises PasskeyRefused.

    The challenge must have come from `second_factor_options(user)` and the
    passkey must be the user's own. A refusal is audited as a failed login.
    """
    try:
        return ceremony.verify_authentication(response, ChallengePurpose.AUTHENTICATE, user)
    except PasskeyError as exc:
        raise _refused("login_failed", exc, "second_factor", user) from None
