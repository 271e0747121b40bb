"""Mail waiting to be sent: the transactional outbox (see webapp/mail.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utc_now


class MailStatus:
    WAITING = "waiting"
    SENT = "sent"
    FAILED = "failed"


class OutboxMail(Base):
    """One mail, written in the transaction of the change it announces.

    `body` is a Fernet token of the subject and the template's context
    (their links are credentials), deleted once the mail is sent or has
    failed; the row stays for the counts on /admin/mail until the purge.
    While waiting, `next_attempt_at` is when a sender may take it; a sender
    that takes it moves it past the time it needs (its lease) and sets
    `claim`, so no other sender takes it meanwhile.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The senders' claim and the oldest waiting mail: only waiting rows.
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            sqlite_where=text("status = 'waiting'"),
            postgresql_where=text("status = 'waiting'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255))
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(64))
    # The reader's language and time zone, for rendering at delivery (issue 28).
    locale: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=MailStatus.WAITING)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim: Mapped[str | None] = mapped_column(String(32))
    # When it was sent or given up: the counts of the last 24 hours, and the purge.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        return f"<OutboxMail {self.id} {self.template} {self.status}>"
