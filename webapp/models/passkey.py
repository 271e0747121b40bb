"""Passkeys (WebAuthn): registered credentials and the challenges issued for them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, LargeBinary, String, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utc_now

if TYPE_CHECKING:
    from webapp.models.user import User


class WebAuthnCredential(Base):
    """A passkey: a public key the user's authenticator signs challenges with.

    `credential_id` is the authenticator's raw credential id (bytes, unique:
    one credential belongs to one account). `backup_eligible` marks a synced
    passkey, whose sign count may stay 0 (or not move) from device to device;
    a count that goes backwards on any other key is refused.
    """

    __tablename__ = "webauthn_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True, index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(default=0)
    # Comma-separated hints for the browser ("internal,hybrid"), as the authenticator said.
    transports: Mapped[str | None] = mapped_column(String(255))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(default=False, server_default=false())
    backup_state: Mapped[bool] = mapped_column(default=False, server_default=false())
    name: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="passkeys")

    def __repr__(self) -> str:
        return f"<WebAuthnCredential {self.id} user={self.user_id}>"


class ChallengePurpose:
    REGISTER = "register"
    AUTHENTICATE = "authenticate"
    REAUTHENTICATE = "reauthenticate"


class WebAuthnChallenge(Base):
    """A challenge handed to a browser: single use, short-lived, kept on the server.

    Consumed by one conditional DELETE (challenge, purpose, user, not
    expired), so a response replayed with the same challenge finds nothing.
    `user_id` is NULL for a sign-in that does not know its user yet.
    """

    __tablename__ = "webauthn_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
