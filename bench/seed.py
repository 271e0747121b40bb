"""Seed the benchmark database through the app's own code (in an app context)."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta

from sqlalchemy import func, insert, select

from webapp.extensions import db
from webapp.models import ADMIN_ROLE, USER_ROLE, RefreshToken, Role, User, utc_now
from webapp.security.devices import create_device

PASSWORD = "Bench-Pa55word-horse"
# The bench admin's authenticator secret (the admin role requires two-factor).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
OTHER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    USER_AGENT,
]
MAX_DEVICES = 100  # a user keeps at most this many live devices


@functools.cache
def password_hash() -> str:
    """Hash the benchmark password once, at the cost the app is configured for."""
    from webapp.security.passwords import hash_password

    return hash_password(PASSWORD)


@functools.cache
def role_id(name: str) -> int:
    return db.session.scalar(select(Role.id).where(Role.name == name))


def make_user(username: str, role: str = USER_ROLE) -> User:
    """Create one account with the benchmark password (one shared bcrypt hash)."""
    user = User(
        username=username,
        email=f"{username}@example.com",
        password_hash=password_hash(),
        role_id=role_id(role),
    )
    db.session.add(user)
    db.session.commit()
    if role == ADMIN_ROLE:
        from webapp.security.two_factor import add_authenticator

        add_authenticator(user, TOTP_SECRET, accepted_step=0)
        db.session.commit()
    return user


def base_accounts() -> dict[str, User]:
    """Create the accounts the scenarios sign in as."""
    return {
        "session": make_user("bench"),
        "login": make_user("bench-login"),
        "devices": make_user("devices50"),
        "admin": make_user("bench-admin", ADMIN_ROLE),
        "probe": make_user("bench-probe"),
    }


def other_devices(user: User, count: int) -> None:
    """Give `user` `count` more signed-in browsers, half of them remembered."""
    for i in range(count):
        create_device(
            user,
            remember=i % 2 == 0,
            user_agent=OTHER_AGENTS[i % len(OTHER_AGENTS)],
            ip_address=f"192.0.2.{i % 250 + 1}",
        )
    db.session.commit()


def many_users(count: int, chunk: int = 10_000) -> None:
    """Insert `count` members quickly: one precomputed bcrypt hash for all."""
    shared_hash = password_hash()
    member_role = role_id(USER_ROLE)
    start = utc_now() - timedelta(days=400)
    for first in range(0, count, chunk):
        rows = [
            {
                "id": uuid.uuid4(),
                "username": f"member{n:06d}",
                "email": f"member{n:06d}@example.com",
                "password_hash": shared_hash,
                "role_id": member_role,
                "is_active": n % 50 != 0,
                "created_at": start + timedelta(minutes=5 * n),
                "updated_at": start + timedelta(minutes=5 * n),
            }
            for n in range(first, min(first + chunk, count))
        ]
        db.session.execute(insert(User), rows)
        db.session.commit()


def remember_tokens(count: int, prefix: str = "remember", kind: str = "browser") -> list[str]:
    """Create `count` remembered devices, 100 per user; return their tokens.

    With `kind="app"`, apps' devices, whose tokens are refresh tokens.
    """
    tokens: list[str] = []
    owner = None
    for i in range(count):
        if i % MAX_DEVICES == 0:
            db.session.commit()
            owner = make_user(f"{prefix}{i // MAX_DEVICES:05d}")
        _, token = create_device(
            owner,
            remember=True,
            user_agent=USER_AGENT,
            ip_address="127.0.0.1",
            kind=kind,
            name="Bench app" if kind == "app" else None,
        )
        tokens.append(token)
    db.session.commit()
    return tokens


def rotated_devices(prefix: str = "remember") -> int:
    """Count the remembered devices of the token owners that were rotated."""
    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(RefreshToken)
        .join(RefreshToken.user)
        .where(User.username.like(f"{prefix}%"), RefreshToken.rotated_at.is_not(None))
    )


def devices_of(username: str) -> int:
    """Count every device row of a user (each login adds one)."""
    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(RefreshToken)
        .join(RefreshToken.user)
        .where(User.username == username)
    )
