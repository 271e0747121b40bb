"""Describing a user's devices for display: on their device page and to admins."""

from __future__ import annotations

import functools
from typing import NamedTuple

from sqlalchemy import and_, bindparam, or_, select
from ua_parser import parse

from webapp.extensions import db, read_connection
from webapp.i18n import N_, _, language
from webapp.models import DeviceKind, RefreshToken, RevokeReason, User, utc_now
from webapp.security import devices
from webapp.security.location import describe as describe_location
from webapp.templating import format_datetime, link


class DeviceRow(NamedTuple):
    """What the device page shows for one browser, ready to print.

    A named tuple, cheap to build, which devices.html unpacks in this field
    order: each `row.field` in a template is a Python call, 22 a row.
    """

    id: int
    path: str  # the device's URL; its forms post below it
    label: str
    browser: str
    named: bool
    ip_address: str
    location: str
    signed_in: str
    last_active: str
    ends: str
    remembered: bool
    current: bool
    stolen: bool
    app: bool  # an app signed in through the token API; `label` is its name


UNKNOWN_BROWSER = N_("Unknown browser")


def describe_user_agent(user_agent: str | None) -> str:
    """Return "Browser on OS" from a user agent, or "Unknown browser", in the reader's language."""
    return translate_browser(stored_browser(user_agent))


@functools.lru_cache(maxsize=1024)
def stored_browser(user_agent: str | None) -> str:
    """Return the browser's description in English, as events store it."""
    if not user_agent:
        return UNKNOWN_BROWSER
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else None
    system = result.os.family if result.os else None
    if not browser or browser == "Other":
        return UNKNOWN_BROWSER
    if not system or system == "Other":
        return browser
    return f"{browser} on {system}"


def translate_browser(stored: str) -> str:
    """Return a stored (English) description in the reader's language: "Chrome unter Linux"."""
    return _translated_browser(stored, language())


@functools.lru_cache(maxsize=1024)
def _translated_browser(stored: str, language_code: str) -> str:
    if stored == UNKNOWN_BROWSER:
        return _(UNKNOWN_BROWSER)
    browser, on, system = stored.rpartition(" on ")
    if not on:
        return stored
    return _("%(browser)s on %(system)s", browser=browser, system=system)


# The columns the page shows: rows, not ORM objects, for a page that can list 100.
# device_rows unpacks them in this order.
_DEVICE_COLUMNS = (
    RefreshToken.id,
    RefreshToken.name,
    RefreshToken.user_agent,
    RefreshToken.ip_address,
    RefreshToken.created_at,
    RefreshToken.last_used_at,
    RefreshToken.expires_at,
    RefreshToken.is_remembered,
    RefreshToken.is_revoked,
    RefreshToken.revoked_reason,
    RefreshToken.country,
    RefreshToken.city,
    RefreshToken.kind,
)


# Composed once: building this select (columns, two ORs, the order) cost
# more CPU than SQLAlchemy's cached execution of it.
_DEVICE_ROWS = (
    select(*_DEVICE_COLUMNS)
    .where(
        RefreshToken.user_id == bindparam("user_id"),
        or_(
            and_(RefreshToken.is_revoked.is_(False), RefreshToken.expires_at > bindparam("now")),
            and_(
                RefreshToken.revoked_reason == RevokeReason.THEFT,
                RefreshToken.notice_dismissed.is_(False),
            ),
        ),
    )
    .order_by(RefreshToken.last_used_at.desc(), RefreshToken.id.desc())
)


def device_rows(user: User, current_id: int | None) -> list[DeviceRow]:
    """Return the user's live devices, and those revoked as stolen and not yet dismissed."""
    now = utc_now()
    # Plain columns, so Core execution: no ORM loading for values that are
    # only displayed, and a page that only reads needs no session.
    with read_connection() as connection:
        found = connection.execute(_DEVICE_ROWS, {"user_id": user.id, "now": now}).all()
    remembered_idle, session_idle = devices.idle_limits()
    base = link("account.device_list")
    locations: dict[tuple[str | None, str | None], str] = {}  # most rows share a few
    unknown = _("unknown")
    rows = []
    # Unpacked: reading a Row's columns by name costs more, for each column of each row.
    for (
        device_id,
        name,
        user_agent,
        ip_address,
        created_at,
        last_used_at,
        expires_at,
        remembered,
        revoked,
        reason,
        country,
        city,
        kind,
    ) in found:
        stolen = reason == RevokeReason.THEFT
        # devices.expires_at and devices.is_live, with the settings read once.
        ends = min(expires_at, last_used_at + (remembered_idle if remembered else session_idle))
        if not stolen and (revoked or ends <= now):
            continue
        app = kind == DeviceKind.APP
        browser = describe_user_agent(user_agent)
        place = (country, city)
        location = locations.get(place)
        if location is None:
            location = locations[place] = describe_location(country, city)
        # Positional: keywords make building a named tuple slower.
        rows.append(
            DeviceRow(
                device_id,
                f"{base}/{device_id}",  # path
                name or (_("App") if app else browser),  # label
                browser,
                bool(name) and not app,  # named: the browser is shown beside the name
                ip_address or unknown,
                location,
                format_datetime(created_at),  # signed_in
                format_datetime(last_used_at),  # last_active
                format_datetime(ends),
                remembered,
                device_id == current_id,  # current
                stolen,
                app,
            )
        )
    return rows


@functools.lru_cache(maxsize=1024)
def user_agent_parts(user_agent: str | None) -> tuple[str | None, str | None]:
    """Return the browser family and the operating system of a user agent, where known."""
    if not user_agent:
        return None, None
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else None
    system = result.os.family if result.os else None
    return (
        browser if browser and browser != "Other" else None,
        system if system and system != "Other" else None,
    )


def live_devices(user: User) -> list[RefreshToken]:
    """Return the user's live devices, most recently used first (for the API)."""
    now = utc_now()
    found = db.session.scalars(
        select(RefreshToken)
        .where(
            RefreshToken.user_id == user.id,
            RefreshToken.is_revoked.is_(False),
            RefreshToken.expires_at > now,
        )
        .order_by(RefreshToken.last_used_at.desc(), RefreshToken.id.desc())
    ).all()
    return [device for device in found if devices.is_live(device, now)]


# Ids past the INTEGER column (32 bits on PostgreSQL) cannot name a device.
MAX_DEVICE_ID = 2**31 - 1


def own_device(user: User, device_id: int) -> RefreshToken | None:
    """Return the user's device with this id; another user's is None."""
    if not 0 < device_id <= MAX_DEVICE_ID:
        return None
    return db.session.scalars(
        select(RefreshToken).where(RefreshToken.id == device_id, RefreshToken.user_id == user.id)
    ).first()
