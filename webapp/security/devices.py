"""Devices: revocable sign-ins backed by the `refresh_tokens` table.

Every sign-in creates a device row and the Flask session names it and the
device's session generation (see `User.get_id`).

"Remember this device" adds a long-lived cookie `series.secret` (the
improved Jaspan/Miller scheme, as a split token): `series` is a random
128-bit selector that names the device, `secret` a 256-bit verifier of
which only the SHA-256 is stored, compared in constant time and never
used in a WHERE clause. A cookie sign-in rotates the secret with one
conditional UPDATE (one racing request wins). How theft is decided:

- the current secret of a series: the browser is signed in, the secret rotates;
- the secret it just replaced, within REMEMBER_GRACE_SECONDS of the
  rotation: one browser's racing requests (or a browser whose rotation
  response was lost). It is signed in *provisionally* (the session ends
  with the grace period unless the browser then shows the current secret)
  and handed the current secret, which it can recompute: each successor
  secret is an HMAC of the one it replaces under a key derived from
  SECRET_KEY, so nothing but hashes is stored;
- any other secret of a known series (the replaced one after the grace
  period, or one replaced several rotations ago): two browsers hold copies
  of one cookie. The device is revoked as stolen, and the mechanism sends
  `signals.token_theft_detected` (the account domain audits and mails).

Re-keying a device (password change, "Sign out all other devices") bumps
its session generation and starts a new series, so every other browser
sharing the device (a copied session or cookie) is signed out, while the
browser that acted gets the new session id and cookie.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Response, current_app
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from webapp.extensions import db
from webapp.models import DeviceKind, RefreshToken, RevokeReason, Role, User, utc_now
from webapp.security import signals
from webapp.security.location import locate
from webapp.security.speedups.prepared import PooledConnection, Prepared
from webapp.security.speedups.rows import Hydrating

SERIES_BYTES = 16  # 128 bits: the selector
SECRET_BYTES = 32  # 256 bits: the verifier
_COOKIE_RE = re.compile(r"^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Core statements on the table skip the ORM's compile step (see below).
_DEVICES = RefreshToken.__table__


def new_token() -> tuple[str, str, str]:
    """Return a fresh remember cookie value, its series and the hash stored for its secret."""
    series = secrets.token_urlsafe(SERIES_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{series}.{secret}", series, hash_token(secret)


def hash_token(secret: str) -> str:
    """Return the SHA-256 of a secret; a 256-bit random value needs no stretching."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_cookie(raw: str) -> tuple[str, str] | None:
    """Return the (series, secret) of a remember cookie, or None if it is not one."""
    match = _COOKIE_RE.match(raw)
    return (match.group(1), match.group(2)) if match else None


def successor_secret(series: str, secret: str) -> str:
    """Return the secret that replaces `secret` when its series rotates.

    Derived rather than drawn at random, so a request that presents the
    secret just replaced, inside the grace period, can be handed the current
    one although only its hash is stored. Without SECRET_KEY nobody can
    compute it, and a secret's own holder gains nothing they could not get
    by presenting it.
    """
    key = _rotation_key(_settings()["SECRET_KEY"])
    mac = hmac.new(key, f"{series}.{secret}".encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=4)
def _rotation_key(secret_key: str) -> bytes:
    """Derive the rotation's HMAC key from SECRET_KEY (once per key)."""
    return hmac.new(secret_key.encode("utf-8"), b"remember-rotation", hashlib.sha256).digest()


def _settings() -> dict:
    return current_app.config


def idle_limits() -> tuple[timedelta, timedelta]:
    """Return how long a remembered device, and a session-only one, may sit unused."""
    config = _settings()
    return timedelta(days=config["REMEMBER_IDLE_DAYS"]), timedelta(
        hours=config["SESSION_IDLE_HOURS"]
    )


def idle_limit(device: RefreshToken) -> timedelta:
    config = _settings()
    if device.is_remembered:
        return timedelta(days=config["REMEMBER_IDLE_DAYS"])
    return timedelta(hours=config["SESSION_IDLE_HOURS"])


def is_live(device: RefreshToken, now: datetime | None = None) -> bool:
    """Return whether a device may still sign its browser in."""
    now = now or utc_now()
    return (
        not device.is_revoked
        and device.expires_at > now
        and device.last_used_at + idle_limit(device) > now
    )


def expires_at(device: RefreshToken) -> datetime:
    """Return when the device ends unless it is used again (idle or absolute)."""
    return min(device.expires_at, device.last_used_at + idle_limit(device))


def create_device(
    user: User,
    *,
    remember: bool,
    user_agent: str | None,
    ip_address: str | None,
    auth_method: str = "password",
    second_factor: bool = False,
    passkey_id: int | None = None,
    kind: str = DeviceKind.BROWSER,
    name: str | None = None,
) -> tuple[RefreshToken, str | None]:
    """Add a device for a new sign-in; return it and its remember token, if any.

    `auth_method` records how it signed in; `second_factor` that it passed
    one now; `passkey_id` the passkey it signed in with, if any. An app's
    device (`kind`, with the `name` it gave) is remembered: its refresh
    token is the remember token.
    """
    config = _settings()
    now = utc_now()
    token = series = token_hash = None
    if remember:
        token, series, token_hash = new_token()
        lifetime = timedelta(days=config["REMEMBER_DAYS"])
    else:
        lifetime = timedelta(hours=config["SESSION_MAX_HOURS"])
    # A user signing up in this request is written first (the device's key refers to it).
    db.session.flush()
    _evict_least_recently_used(
        db.session.connection(), user.id, keep=config["MAX_DEVICES_PER_USER"] - 1
    )
    where = locate(ip_address)  # shown on the device page; computed once, here
    device = RefreshToken(
        user_id=user.id,
        series=series,
        token_hash=token_hash,
        is_remembered=remember,
        expires_at=now + lifetime,
        created_at=now,
        last_used_at=now,
        user_agent=(user_agent or "")[:512] or None,
        ip_address=(ip_address or "")[:45] or None,
        auth_method=auth_method,
        mfa_at=now if second_factor else None,
        passkey_id=passkey_id,
        country=where.country,
        city=where.city,
        kind=kind,
        name=name,
    )
    db.session.add(device)
    db.session.flush()  # its id names the session
    set_committed_value(device, "user", user)
    return device, token


# A user's live devices (not revoked, not past their end) beyond the
# newest `keep`. Composed once: every sign-in runs the select (and, at the
# cap, the update), and building a statement costs more CPU than
# SQLAlchemy's cached execution of it.
_LEAST_RECENTLY_USED = (
    select(_DEVICES.c.id)
    .where(
        _DEVICES.c.user_id == bindparam("user_id"),
        _DEVICES.c.is_revoked.is_(False),
        _DEVICES.c.expires_at > bindparam("now"),
    )
    .order_by(_DEVICES.c.last_used_at.desc(), _DEVICES.c.id.desc())
    .offset(bindparam("keep"))
)
_EVICT = (
    update(_DEVICES)
    .where(_DEVICES.c.id.in_(bindparam("ids", expanding=True)))
    .values(is_revoked=True, revoked_at=bindparam("now"), revoked_reason=RevokeReason.EVICTED)
)


def _evict_least_recently_used(connection, user_id: uuid.UUID, keep: int) -> None:
    """Revoke the user's least recently used live devices beyond `keep`."""
    now = utc_now()
    ids = connection.scalars(
        _LEAST_RECENTLY_USED, {"user_id": user_id, "now": now, "keep": keep}
    ).all()
    if ids:
        connection.execute(_EVICT, {"ids": ids, "now": now})


def revoke_where(*criteria, reason: str) -> int:
    """Revoke every live device matching `criteria`; return how many."""
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.is_revoked.is_(False), *criteria)
        .values(is_revoked=True, revoked_at=utc_now(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def revoke_device(device: RefreshToken, reason: str) -> None:
    """Revoke one device; its browser is signed out at its next request."""
    revoke_where(RefreshToken.id == device.id, reason=reason)
    device.is_revoked = True
    device.revoked_reason = reason


def revoke_user_devices(user_id: uuid.UUID, reason: str, *, keep_id: int | None = None) -> int:
    """Revoke every device of a user, except `keep_id`; return how many."""
    criteria = [RefreshToken.user_id == user_id]
    if keep_id is not None:
        criteria.append(RefreshToken.id != keep_id)
    return revoke_where(*criteria, reason=reason)


# The statements of the two hot paths (every signed-in request, every
# remember-cookie sign-in) are composed once and run as `Prepared`
# statements on a `PooledConnection` (speedups/prepared.py). The writes are Core
# statements on the table (the ORM's bulk-update path costs more): the
# rotation on the connection that read the row, committed at once, since on
# SQLite it holds the write lock from its UPDATE to its COMMIT. The
# once-a-minute touch of `last_used_at` goes through the request's session.

# One row wins: only a request that still sees the presented token rotates it.
_ROTATE = Prepared(
    update(_DEVICES)
    .where(_DEVICES.c.id == bindparam("device_id"), _DEVICES.c.token_hash == bindparam("presented"))
    .values(
        token_hash=bindparam("new_hash"),
        previous_token_hash=bindparam("presented"),
        rotated_at=bindparam("now"),
        last_used_at=bindparam("now"),
    )
)
_TOUCH = (
    update(_DEVICES)
    .where(_DEVICES.c.id == bindparam("device_id"))
    .values(last_used_at=bindparam("now"))
)


def _device_user_role(*criteria) -> Hydrating:
    """The one select of a signed-in request (or cookie sign-in): a device, its user, the role."""
    users, roles = User.__table__, Role.__table__
    return Hydrating(
        (RefreshToken.__mapper__, User.__mapper__, Role.__mapper__),
        _DEVICES.join(users, _DEVICES.c.user_id == users.c.id).join(
            roles, users.c.role_id == roles.c.id
        ),
        *criteria,
    )


def _load_device(connection, statement: Hydrating, params: dict) -> RefreshToken | None:
    """Run a `_device_user_role` select; return its device, with `.user` and `.user.role` set.

    The read runs on a pooled connection of its own, and the instances are
    built from the row, not loaded by the ORM: a page that only reads never
    creates a session (`extensions.adopt`).
    """
    found = statement.first(connection, params)
    if found is None:
        return None
    device, user, role = found
    set_committed_value(device, "user", user)
    set_committed_value(user, "role", role)
    return device


_SESSION_DEVICE = _device_user_role(
    _DEVICES.c.id == bindparam("device_id"), _DEVICES.c.user_id == bindparam("user_id")
)
_REMEMBERED_DEVICE = _device_user_role(_DEVICES.c.series == bindparam("series"))


def load_session_user(alt_id: str) -> User | None:
    """Return the user a session names, if its device and account are still good.

    One query reads the device, the user and the role together.
    """
    user_part, _, rest = alt_id.partition(":")
    device_part, _, generation_part = rest.partition(":")
    try:
        user_id = uuid.UUID(user_part)
        device_id = int(device_part)
        generation = int(generation_part)
    except ValueError:
        return None
    with PooledConnection(db.engine) as connection:
        device = _load_device(
            connection, _SESSION_DEVICE, {"device_id": device_id, "user_id": user_id}
        )
    if device is None or device.session_generation != generation:
        return None
    user = device.user
    if not user.is_active or not is_live(device):
        return None
    touch(device)
    user.current_device = device
    return user


def load_token_user(user_id: uuid.UUID, device_id: int) -> User | None:
    """Return the user an access token names, if its app's device and account are still good.

    The same one query as a signed-in page's: a revoked, expired or idle
    device, or a deactivated user, stops the token at its next request.
    """
    with PooledConnection(db.engine) as connection:
        device = _load_device(
            connection, _SESSION_DEVICE, {"device_id": device_id, "user_id": user_id}
        )
    if device is None or device.kind != DeviceKind.APP:
        return None
    user = device.user
    if not user.is_active or not is_live(device):
        return None
    touch(device)
    user.current_device = device
    return user


def touch(device: RefreshToken) -> None:
    """Record use of the device, at most once a minute (no write per request)."""
    now = utc_now()
    if now - device.last_used_at < LAST_USED_RESOLUTION:
        return
    db.session.connection().execute(_TOUCH, {"device_id": device.id, "now": now})
    db.session.commit()
    # Committed already: recorded as loaded, so no later flush writes it again.
    set_committed_value(device, "last_used_at", now)


@dataclass
class Restored:
    """The outcome of presenting a remember cookie.

    `provisional_until` (epoch seconds) is set for a sign-in through the
    grace period: that session ends then unless its browser shows the
    current secret.
    """

    user: User | None = None
    new_token: str | None = None
    theft: bool = False
    provisional_until: float | None = None


def restore_from_cookie(raw: str, kind: str = DeviceKind.BROWSER) -> Restored:
    """Sign a browser in from its remember cookie, rotating the secret.

    Unknown, malformed, revoked and expired cookies give an empty result;
    a stale secret of a known series revokes its device as stolen. An app's
    refresh token is the same `series.secret` (`kind` APP): a token of one
    kind of device means nothing as the other.
    """
    parsed = parse_cookie(raw)
    if parsed is None:
        return Restored()
    series, secret = parsed
    with PooledConnection(db.engine) as connection:
        device = _load_device(connection, _REMEMBERED_DEVICE, {"series": series})
        if (
            device is None
            or device.kind != kind
            or not device.is_remembered
            or device.token_hash is None
        ):
            return Restored()
        now = utc_now()
        if not device.user.is_active or not is_live(device, now):
            return Restored()
        presented = hash_token(secret)
        successor = successor_secret(series, secret)
        if hmac.compare_digest(presented, device.token_hash):
            # Committed at once, before the page renders, on the connection
            # that read the row: on SQLite the write lock is held only for this.
            _ROTATE.execute(
                connection,
                {
                    "device_id": device.id,
                    "presented": presented,
                    "new_hash": hash_token(successor),
                    "now": now,
                },
            )
            device.user.current_device = device
            # Winner or not, every racing request hands out the same successor.
            return Restored(user=device.user, new_token=f"{series}.{successor}")

    grace = timedelta(seconds=_settings()["REMEMBER_GRACE_SECONDS"])
    if (
        device.previous_token_hash is not None
        and hmac.compare_digest(presented, device.previous_token_hash)
        and device.rotated_at is not None
        and now - device.rotated_at <= grace
    ):
        device.user.current_device = device
        current = hmac.compare_digest(hash_token(successor), device.token_hash)
        return Restored(
            user=device.user,
            new_token=f"{series}.{successor}" if current else None,
            provisional_until=(device.rotated_at + grace).timestamp(),
        )

    revoke_device(device, RevokeReason.THEFT)
    # The account domain audits and mails the owner, in this transaction.
    signals.token_theft_detected.send(current_app._get_current_object(), device=device)
    db.session.commit()
    return Restored(theft=True)


def presents_current_secret(device: RefreshToken, raw: str | None) -> bool:
    """Return whether a remember cookie holds the device's current secret."""
    parsed = parse_cookie(raw or "")
    if parsed is None or device.token_hash is None or parsed[0] != device.series:
        return False
    return hmac.compare_digest(hash_token(parsed[1]), device.token_hash)


def rekey(device: RefreshToken) -> str | None:
    """Start a new generation of the device's sessions and, if remembered, a new series.

    Every browser sharing the device is signed out at its next request;
    returns the new remember cookie value for the browser that acted.
    """
    values: dict = {"session_generation": device.session_generation + 1}
    token = None
    if device.is_remembered:
        token, series, token_hash = new_token()
        values.update(
            series=series, token_hash=token_hash, previous_token_hash=None, rotated_at=None
        )
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == device.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for name, value in values.items():
        set_committed_value(device, name, value)
    return token


def set_remember_cookie(response: Response, token: str) -> None:
    config = _settings()
    response.set_cookie(
        config["REMEMBER_DEVICE_COOKIE_NAME"],
        token,
        max_age=int(timedelta(days=config["REMEMBER_DAYS"]).total_seconds()),
        path="/",
        secure=config["COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def delete_remember_cookie(response: Response) -> None:
    """Expire the remember cookie with the attributes it was set with."""
    config = _settings()
    response.delete_cookie(
        config["REMEMBER_DEVICE_COOKIE_NAME"],
        path="/",
        secure=config["COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def purge_devices(older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete devices expired or revoked before `older_than` ago, in batches."""
    config = _settings()
    cutoff = utc_now() - older_than
    remembered_idle = timedelta(days=config["REMEMBER_IDLE_DAYS"])
    session_idle = timedelta(hours=config["SESSION_IDLE_HOURS"])
    stale = or_(
        RefreshToken.expires_at < cutoff,
        RefreshToken.is_revoked.is_(True) & (RefreshToken.revoked_at < cutoff),
        RefreshToken.is_remembered.is_(True)
        & (RefreshToken.last_used_at < cutoff - remembered_idle),
        RefreshToken.is_remembered.is_(False) & (RefreshToken.last_used_at < cutoff - session_idle),
    )
    total = 0
    while True:
        ids = db.session.scalars(select(RefreshToken.id).where(stale).limit(batch_size)).all()
        if not ids:
            return total
        db.session.execute(RefreshToken.__table__.delete().where(RefreshToken.id.in_(ids)))
        db.session.commit()
        total += len(ids)
