"""Password-reset tokens: signed, timed, and single use.

A token is an itsdangerous URLSafeTimedSerializer payload under its own
salt, so no other signed value of the app (the session, a future
email-confirm link) can pass for one. The payload names the user and
carries a fingerprint of their current password hash: once the password
changes (by this reset or any other way) the fingerprint no longer
matches, so a token works once. The payload is signed, not encrypted, so
the fingerprint is an HMAC under the secret key, never the hash itself.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.models import User

SALT = "keystone.password-reset"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def fingerprint(password_hash: str) -> str:
    """Return a short keyed digest of a password hash; it reveals nothing of it."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    digest = hmac.new(secret, b"reset:" + password_hash.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:32]


def make_token(user: User) -> str:
    """Return a reset token for `user`, valid until the password changes or it expires."""
    return _serializer().dumps({"u": str(user.id), "f": fingerprint(user.password_hash)})


def user_for_token(token: str) -> User | None:
    """Return the active user a valid token names, or None (tampered, expired or used)."""
    try:
        payload = _serializer().loads(token, max_age=current_app.config["RESET_TOKEN_MAX_AGE"])
    except BadData:
        return None
    if not isinstance(payload, dict):
        return None
    raw_id, mark = payload.get("u"), payload.get("f")
    if not isinstance(raw_id, str) or not isinstance(mark, str):
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
    return user
