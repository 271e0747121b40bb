"""Accounts: creating, finding and deleting users."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import ADMIN_ROLE, USER_ROLE, Role, User
from webapp.security import passwords
from webapp.security.identity import lookup_key


class DuplicateAccount(Exception):
    """The username or email is taken; `field` names which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def create_user(
    username: str,
    email: str,
    password: str | None,
    role_name: str = USER_ROLE,
    *,
    password_hash: str | None = None,
    language: str = "en",
    time_zone: str = "UTC",
) -> User:
    """Add a user with canonical `username` and `email`; the database decides uniqueness.

    Give the password, or its bcrypt `password_hash` when it was hashed
    already. Raises DuplicateAccount, after rolling the session back, when
    either is taken, including by a signup that committed a moment ago in
    another process. `language` and `time_zone` are the signup page's
    language and the zone the browser reported.
    """
    if password_hash is None:
        if password is None:
            raise ValueError("create_user needs a password or its hash")
        password_hash = passwords.hash_password(password)
    role = db.session.scalars(select(Role).where(Role.name == role_name)).one()
    user = User(
        username=username,
        email=email,
        password_hash=password_hash,
        role_id=role.id,
        language=language,
        time_zone=time_zone,
    )
    db.session.add(user)
    user.role = role
    try:
        db.session.flush()
    except IntegrityError:
        # The whole transaction goes: callers start over (the form shows the error).
        db.session.rollback()
        taken = db.session.scalars(select(User.username).where(User.username == username)).first()
        raise DuplicateAccount("username" if taken else "email") from None
    return user


def username_taken(username: str) -> bool:
    """Return whether an account has this canonical username."""
    return db.session.scalars(select(User.id).where(User.username == username)).first() is not None


def find_user(identifier: str) -> User | None:
    """Return the user whose username or email is `identifier`, any case (role loaded)."""
    key = lookup_key(identifier)
    return db.session.scalars(
        select(User).where(or_(User.username == key, User.email == key))
    ).first()


def delete_account(user: User) -> None:
    """Delete the user; the database deletes their devices with them."""
    db.session.delete(user)


def active_admin_ids(lock: bool = False) -> list[uuid.UUID]:
    """Return the ids of the active admins; `lock` locks their rows (PostgreSQL)."""
    stmt = select(User.id).join(User.role).where(Role.name == ADMIN_ROLE, User.is_active.is_(True))
    if lock:
        stmt = stmt.with_for_update(of=User)
    return list(db.session.scalars(stmt))


def is_last_active_admin(user: User) -> bool:
    """Return whether `user` is the only active admin."""
    return user.is_active and user.is_admin and active_admin_ids() == [user.id]


def set_preferences(user: User, language: str, time_zone: str) -> None:
    """Store the language and time zone `user` reads pages and mails in (the form checked both)."""
    user.language = language
    user.time_zone = time_zone
