"""The pending second step of an app's sign-in (`mfa_token`), kept server-side."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utc_now


class MfaToken(Base):
    """An `mfa_token`: issued after a right password, for a user with a second factor.

    Only the SHA-256 of the token is stored. It is single use (`used_at`,
    set by a conditional UPDATE, so one request wins across processes) and
    ends after `failures` reaches MFA_MAX_ATTEMPTS or at `expires_at`.
    """

    __tablename__ = "mfa_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    device_name: Mapped[str] = mapped_column(String(60))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<MfaToken user={self.user_id}>"
