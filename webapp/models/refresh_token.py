"""Devices: one row per signed-in browser (the `refresh_tokens` table)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utc_now

if TYPE_CHECKING:
    from webapp.models.user import User


class RevokeReason:
    LOGOUT = "logout"
    USER = "user"
    # A revoke reason, not a password (bandit's B105 reads the name).
    PASSWORD = "password"  # nosec B105
    THEFT = "theft"
    ADMIN = "admin"
    EVICTED = "evicted"
    RESET = "reset"
    # The old address cancelled an email change: whoever made it is signed out.
    EMAIL_CANCELLED = "email_cancel"
    NOT_ME = "not_me"
    # The passkey it signed in with was removed.
    PASSKEY_REMOVED = "passkey_removed"


class DeviceKind:
    """What signed in: a browser (session and remember cookies) or an app (API tokens)."""

    BROWSER = "browser"
    APP = "app"


class RefreshToken(Base):
    """A signed-in browser, or an app signed in through the token API.

    A remembered device's cookie is `series.secret`: `series` is a random
    selector that names the device for its whole life (until re-keyed), and
    `token_hash` is the SHA-256 of the current secret (NULL for a device
    that is not remembered); secrets are never stored. `session_generation`
    is carried by every session of the device (see `User.get_id`); bumping
    it signs out every browser sharing the device but the one that acted.
    """

    __tablename__ = "refresh_tokens"
    # Ids are never reused (SQLite would otherwise reuse the highest id after
    # a purge), so an old session naming a device id cannot wake a new device.
    __table_args__ = (
        # A user's live devices (the device cap at each sign-in, "sign out
        # everywhere", the device page), and by user alone (the cascade).
        # No index on is_revoked alone: on SQLite it led the planner to
        # read every live device of every user (migration 0013).
        Index("ix_refresh_tokens_user_id_is_revoked", "user_id", "is_revoked"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    # Not indexed: a device is found by its series (or id), and the hashes
    # are only compared on that row; an index would be rewritten at every
    # rotation for nothing (migration 0010 dropped it).
    token_hash: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    is_revoked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    # Added by the devices migration.
    previous_token_hash: Mapped[str | None] = mapped_column(String(64))
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_remembered: Mapped[bool] = mapped_column(default=False, server_default=false())
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(60))
    notice_dismissed: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Added by the security activity migration: where the sign-in came from.
    country: Mapped[str | None] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(100))

    # Added by the device-series migration.
    series: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # Added by the two-factor migration: when this browser passed a second
    # factor (NULL: never) and how it signed in ("password", "password+totp",
    # "password+recovery"; NULL for devices from before).
    mfa_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    auth_method: Mapped[str | None] = mapped_column(String(32))
    # Added by the recovery migration: the passkey this device signed in
    # with, if it did (removing the passkey signs the device out). No
    # foreign key: the removal revokes the device first.
    passkey_id: Mapped[int | None] = mapped_column(index=True)
    # Added by the token API migration: "browser" or "app". An app's device is
    # remembered (its refresh token is the `series.secret` of the remember
    # cookie) and `name` starts as the name the app gave; the owner may rename it.
    kind: Mapped[str] = mapped_column(
        String(8), default=DeviceKind.BROWSER, server_default=DeviceKind.BROWSER
    )

    user: Mapped[User] = relationship(back_populates="devices")

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= utc_now()

    @property
    def is_valid(self) -> bool:
        return not self.is_revoked and not self.is_expired

    def __repr__(self) -> str:
        return f"<RefreshToken {self.id} user={self.user_id}>"
