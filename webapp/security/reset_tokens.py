"""Password-reset tokens: signed, timed, and single use.

A token is an itsdangerous URLSafeTimedSerializer payload under its own
salt, so no other signed value of the app (the session, a future
email-confirm link) can pass for one. The payload names the user and
carries a fingerprint of their current password hash: once the password
changes (by this reset or any other way) the fingerprint no longer
matches, so a token works once. The payload is signed, not encrypted, so
the fingerprint is an HMAC under the secret key, never the hash itself.

The payload also carries a fingerprint of the address the link was mailed
to ("e"): once the account's email changes, every open link stops working,
and a reset through a link that is still good proves the owner reads that
address, so it confirms it. Links minted before "e" existed (valid an hour
at most) still work; they just confirm nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.models import User

SALT = "keystone.password-reset"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _digest(label: bytes, value: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(secret, label + value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def fingerprint(password_hash: str) -> str:
    """Return a short keyed digest of a password hash; it reveals nothing of it."""
    return _digest(b"reset:", password_hash)


def email_fingerprint(email: str) -> str:
    """Return a short keyed digest of an address, to bind a link to it."""
    return _digest(b"reset-email:", email)


def make_token(user: User) -> str:
    """Return a reset token for `user`, valid until the password or email changes or it expires."""
    return _serializer().dumps(
        {
            "u": str(user.id),
            "f": fingerprint(user.password_hash),
            "e": email_fingerprint(user.email),
        }
    )


@dataclass(frozen=True)
class ResetLink:
    """A valid reset link: its user, and whether it was mailed to their current address."""

    user: User
    address_bound: bool


def check_token(token: str) -> ResetLink | None:
    """Return what a valid token names, or None (tampered, expired, used or re-addressed)."""
    try:
        payload = _serializer().loads(token, max_age=current_app.config["RESET_TOKEN_MAX_AGE"])
    except BadData:
        return None
    if not isinstance(payload, dict):
        return None
    raw_id, mark, address = payload.get("u"), payload.get("f"), payload.get("e")
    if not isinstance(raw_id, str) or not isinstance(mark, str):
        return None
    if address is not None and not isinstance(address, str):
        return None
    try:
        user_id = uuid.UUID(raw_id)
    except ValueError:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    expected = fingerprint(user.password_hash).encode("ascii")
    if not hmac.compare_digest(mark.encode("utf-8"), expected):
        return None
    if address is not None:
        mailed_to = email_fingerprint(user.email).encode("ascii")
        if not hmac.compare_digest(address.encode("utf-8"), mailed_to):
            return None
    return ResetLink(user=user, address_bound=address is not None)
