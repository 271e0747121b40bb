"""Single-use links mailed to an address: confirm it, switch to it, or cancel a switch."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utc_now

if TYPE_CHECKING:
    from webapp.models.user import User


class EmailPurpose:
    # Confirms `email`, the account's address (signup, "Send confirmation email").
    VERIFY = "verify"
    # Switches the account to `email`, the new address.
    CHANGE = "change"
    # Gives `email`, the address being replaced, a way back.
    CANCEL = "cancel"


class EmailToken(Base):
    """A link mailed to `email`. Only the SHA-256 of its random token is stored."""

    __tablename__ = "email_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set when the link is used, or voided by a newer one: either way it is spent.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<EmailToken {self.id} {self.purpose} user={self.user_id}>"
