"""Roles: named groups of users; `admin` and `user` are built in."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utc_now

if TYPE_CHECKING:
    from webapp.models.user import User

ADMIN_ROLE = "admin"
USER_ROLE = "user"
BUILTIN_ROLES = frozenset({ADMIN_ROLE, USER_ROLE})


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    description: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Its users must have a second factor, and admin pages need the device to have passed one.
    mfa_required: Mapped[bool] = mapped_column(default=False, server_default=false())

    users: Mapped[list[User]] = relationship(back_populates="role", passive_deletes="all")

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTIN_ROLES

    def __repr__(self) -> str:
        return f"<Role {self.name}>"
