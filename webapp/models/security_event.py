"""Each user's security activity, and the browsers each account has used."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utc_now


class SecurityEvent(Base):
    """Something that happened to one account, as its owner reads it.

    Written in the same transaction as the action it records (see
    `webapp.domain.audit.record`). `device_id` names the browser the
    action came from (no foreign key: the event outlives a purged device,
    and device ids are never reused). `country` is an ISO 3166 alpha-2
    code, computed when the event is written. A `new_browser_login` event
    keeps the SHA-256 of its "This wasn't me" link and when it was used.
    """

    __tablename__ = "security_events"
    __table_args__ = (
        # The activity page: one user's events, newest first, keyset pages.
        Index("ix_security_events_user_id_created_at_id", "user_id", "created_at", "id"),
        # The new-browser alerts' hourly limit: only events that mailed a
        # link, so the count does not grow with the account's other events.
        Index(
            "ix_security_events_alerts",
            "user_id",
            "created_at",
            sqlite_where=text("alert_token_hash IS NOT NULL"),
            postgresql_where=text("alert_token_hash IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    device_id: Mapped[int | None] = mapped_column()
    ip_address: Mapped[str | None] = mapped_column(String(45))
    browser: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    alert_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    alert_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KnownBrowser(Base):
    """A browser this account has signed in from: the SHA-256 of its browser cookie."""

    __tablename__ = "known_browsers"
    __table_args__ = (UniqueConstraint("user_id", "browser_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    browser_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # The last sign-in from it; `purge-activity` forgets it SECURITY_LOG_DAYS later.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
