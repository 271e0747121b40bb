"""The `mfa_token` of an app's sign-in: the API's second step, kept in the database.

The browser keeps its pending second step in its session; an app has no
session, so the step lives in `mfa_tokens`, where every process sees it.
The token is 256 random bits of which only the SHA-256 is stored. It is
single use (a conditional UPDATE of `used_at`: one request wins), lasts
MFA_PENDING_SECONDS, and ends after MFA_MAX_ATTEMPTS wrong codes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from webapp.extensions import db
from webapp.models import MfaToken, User, utc_now

TOKEN_BYTES = 32


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue(user: User, device_name: str) -> str:
    """Add a pending second step for `user`; return its token (the caller commits)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utc_now()
    db.session.add(
        MfaToken(
            token_hash=_hash(token),
            user_id=user.id,
            device_name=device_name,
            issued_at=now,
            expires_at=now + timedelta(seconds=current_app.config["MFA_PENDING_SECONDS"]),
        )
    )
    return token


def pending(token: str) -> MfaToken | None:
    """Return the step a token names if it is unused, unexpired and under its wrong codes."""
    if not token or len(token) > 100:
        return None
    step = db.session.scalars(select(MfaToken).where(MfaToken.token_hash == _hash(token))).first()
    if (
        step is None
        or step.used_at is not None
        or step.expires_at <= utc_now()
        or step.failures >= current_app.config["MFA_MAX_ATTEMPTS"]
    ):
        return None
    return step


def count_failure(step: MfaToken) -> int:
    """Count a wrong code against the step (atomically); return how many so far."""
    db.session.execute(
        update(MfaToken)
        .where(MfaToken.token_hash == step.token_hash)
        .values(failures=MfaToken.failures + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(step, ["failures"])
    return step.failures


def use(step: MfaToken) -> bool:
    """Spend the step; return False if another request spent it first."""
    won = db.session.execute(
        update(MfaToken)
        .where(MfaToken.token_hash == step.token_hash, MfaToken.used_at.is_(None))
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    return won == 1


def purge_mfa_tokens() -> int:
    """Delete the steps that have expired; return how many."""
    result = db.session.execute(delete(MfaToken).where(MfaToken.expires_at < utc_now()))
    return result.rowcount or 0
