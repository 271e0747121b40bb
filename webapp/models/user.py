"""User accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utc_now
from webapp.models.role import ADMIN_ROLE, Role

if TYPE_CHECKING:
    from webapp.models.passkey import WebAuthnCredential
    from webapp.models.refresh_token import RefreshToken


class User(UserMixin, Base):
    """An account. `username` and `email` are stored in canonical lower case,
    so the plain unique indexes make them unique regardless of case."""

    __tablename__ = "users"
    __table_args__ = (
        # Newest first, for the admin's users list, with what its search
        # reads: a search scans this index alone, not every row of the table.
        Index("ix_users_newest_first", "created_at", "id", "username", "email"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(50), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)
    # When the owner of `email` followed a link mailed to it; None until then.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The address a change waits to switch to, until its link expires. The
    # link itself is in email_tokens; this copy lets the account page show
    # it without a second query.
    pending_email: Mapped[str | None] = mapped_column(String(255))
    pending_email_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "Email me when a new browser signs in" on /account/security.
    new_browser_alerts: Mapped[bool] = mapped_column(default=True, server_default=true())
    # When the owner last took the account back (webapp.domain.recovery):
    # any step still pending from before is refused.
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The account's very first sign-in, the one that never mails a new-browser alert.
    first_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The language of their pages and mails ("en", "de") and the IANA zone
    # their times are shown in; both chosen on /account, first set at signup.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")

    # The WebAuthn user handle: random, made at the first passkey, never the id.
    webauthn_handle: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True, index=True)

    role: Mapped[Role] = relationship(back_populates="users", lazy="joined")
    devices: Mapped[list[RefreshToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    passkeys: Mapped[list[WebAuthnCredential]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    # The device this request is signed in through (a RefreshToken), set by
    # the user loader; a plain attribute, not a column.
    current_device = None

    @property
    def email_confirmed(self) -> bool:
        return self.email_verified_at is not None

    @property
    def pending_change(self) -> tuple[str, datetime] | None:
        """Return the address a change waits to switch to, and until when, if one does."""
        if self.pending_email and self.pending_email_until and self.pending_email_until > utc_now():
            return self.pending_email, self.pending_email_until
        return None

    @property
    def is_admin(self) -> bool:
        return self.role.name == ADMIN_ROLE

    def get_id(self) -> str:
        """Name the signed-in device, not only the user, so it can be revoked."""
        if self.current_device is None:
            raise RuntimeError("a user signs in through a device")
        device = self.current_device
        return f"{self.id}:{device.id}:{device.session_generation}"

    def __repr__(self) -> str:
        return f"<User {self.username}>"
