"""Single-use links mailed to an address (the `email_tokens` table).

A link carries a random 256-bit token; only its SHA-256 is stored, under
a unique index, so a database dump holds no usable link. A link is spent
by one conditional UPDATE (`... WHERE used_at IS NULL AND expires_at > now`):
of two clicks at the same moment, in one process or several, exactly one
changes the row and wins (heartcombo/devise#1948 and #5783 are the races
this rules out). Issuing a confirm or change link voids the user's older
live ones of the same purpose, so only the newest link works.

Cancel links are the exception: each is the way back of the address it
was mailed to, so a later link (sent, say, by whoever took the account)
must not void it. Using one voids the newer ones (see
`domain.addresses.cancel_change`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from webapp.extensions import db
from webapp.models import EmailPurpose, EmailToken, User, utc_now

TOKEN_BYTES = 32  # 256 bits
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def issue(user: User, purpose: str, email: str, lifetime: timedelta) -> str:
    """Add a link for `user` to `email`, void older live ones; return its token."""
    if purpose != EmailPurpose.CANCEL:
        void(user, purpose)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utc_now()
    db.session.add(
        EmailToken(
            purpose=purpose,
            user_id=user.id,
            email=email,
            token_hash=_hash(token),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    db.session.flush()
    return token


def void(user: User, *purposes: str, newer_than: int | None = None) -> int:
    """Spend the user's live links of these purposes (only those issued after
    link `newer_than`, if given); return how many."""
    criteria = [EmailToken.user_id == user.id, EmailToken.purpose.in_(purposes)]
    if newer_than is not None:
        criteria.append(EmailToken.id > newer_than)
    result = db.session.execute(
        update(EmailToken)
        .where(EmailToken.used_at.is_(None), *criteria)
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _live(token_hash: str, purposes: tuple[str, ...]):
    return (
        EmailToken.token_hash == token_hash,
        EmailToken.purpose.in_(purposes),
        EmailToken.used_at.is_(None),
        EmailToken.expires_at > utc_now(),
    )


def peek(token: str, *purposes: str) -> EmailToken | None:
    """Return the live link a token names, without spending it (a GET)."""
    if not _TOKEN_RE.match(token):
        return None
    return db.session.scalars(select(EmailToken).where(*_live(_hash(token), purposes))).first()


def consume(token: str, *purposes: str) -> EmailToken | None:
    """Spend a live link and return it; None if it is unknown, used, voided or expired.

    The caller acts in the same transaction and commits once, so the link
    is spent exactly when its action is stored.
    """
    if not _TOKEN_RE.match(token):
        return None
    token_hash = _hash(token)
    won = db.session.execute(
        update(EmailToken)
        .where(*_live(token_hash, purposes))
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        return None
    return db.session.scalars(
        select(EmailToken)
        .where(EmailToken.token_hash == token_hash)
        .execution_options(populate_existing=True)
    ).one()


def purge(older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete links that expired or were spent before `older_than` ago; return how many."""
    cutoff = utc_now() - older_than
    stale = (EmailToken.expires_at < cutoff) | (EmailToken.used_at < cutoff)
    total = 0
    while True:
        ids = db.session.scalars(select(EmailToken.id).where(stale).limit(batch_size)).all()
        if not ids:
            return total
        db.session.execute(EmailToken.__table__.delete().where(EmailToken.id.in_(ids)))
        db.session.commit()
        total += len(ids)
