"""Second factors: authenticator apps (TOTP) and recovery codes.

A passkey (next issue) is a further second factor with a table of its own;
`User.has_second_factor` is where it joins the others.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Uuid, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utc_now
from webapp.models.user import User


class TotpAuthenticator(Base):
    """A user's authenticator app: its secret, encrypted, and the last step accepted.

    At most one per user. A code is accepted only for a step later than
    `last_step`, set with a conditional UPDATE, so a code is never accepted
    twice, whichever process sees it.
    """

    __tablename__ = "totp_authenticators"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), unique=True, index=True
    )
    # A Fernet token (MFA_ENCRYPTION_KEY) of the base32 secret; never the secret itself.
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<TotpAuthenticator user={self.user_id}>"


class RecoveryCode(Base):
    """One single-use recovery code, stored as a keyed hash (HMAC-SHA256)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<RecoveryCode {self.id} user={self.user_id}>"


# Whether the account has a second factor, read in the same query that loads
# the user (every signed-in request loads device, user and role in one), so
# enforcing "your role requires two-factor" costs no query of its own.
# A passkey counts too (webapp/models/passkey.py adds its table in
# `second_factor_expression`, which models/__init__.py applies once both exist).
def second_factor_expression(*tables):
    """Return EXISTS (an authenticator app of the user) OR EXISTS (a row of `tables`)."""
    clauses = [select(TotpAuthenticator.id).where(TotpAuthenticator.user_id == User.id).exists()]
    clauses += [select(t.id).where(t.user_id == User.id).exists() for t in tables]
    return or_(*clauses)
