"""Sign-ins from a browser the account has not used: noted, and mailed to the owner.

`sign_in` (the mechanism) sends `user_signed_in`; `on_user_signed_in`
looks up the browser cookie (`webapp.security.known_browsers`) among the
account's known browsers. A browser not seen before, other than at the
account's very first sign-in, records `new_browser_login` and mails
"New sign-in to your Keystone account", with a "This wasn't me" link
(single use, NOT_ME_LINK_DAYS) that signs that device out. At most
NEW_BROWSER_ALERTS_PER_HOUR mails an hour per account; none when the
owner turned them off on /account/security.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value

from webapp.domain.activity import delete_before, events_of_this_request
from webapp.domain.audit import record
from webapp.domain.device_list import describe_user_agent, translate_browser
from webapp.domain.notices import public_url
from webapp.domain.recovery import Recovery, take_account_back
from webapp.extensions import db
from webapp.i18n import _, _l, for_reader
from webapp.mail import send as send_mail
from webapp.models import (
    DeviceKind,
    KnownBrowser,
    RefreshToken,
    RevokeReason,
    SecurityEvent,
    User,
    utc_now,
)
from webapp.security import devices, known_browsers, signals
from webapp.security.location import describe as describe_location

SUBJECT = _l("New sign-in to your Keystone account")
NEW_BROWSER_LOGIN = "new_browser_login"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def connect_signals(app: Flask) -> None:
    signals.user_signed_in.connect(on_user_signed_in, app, weak=False)


def on_user_signed_in(sender: Flask, user: User, device: RefreshToken, **_: object) -> None:
    """Note whether this browser is new to the account."""
    check_browser(user, device)


def _give_device_to_signup(user: User, device: RefreshToken) -> None:
    """A signup recorded earlier in this request happened on the device it signs in."""
    for event in events_of_this_request():
        if event.user_id == user.id and event.event == "signup" and event.device_id is None:
            event.device_id = device.id


# The statements of every sign-in, composed once (building one costs more
# CPU than SQLAlchemy's cached execution of it), on the tables: run on the
# session's connection they skip the ORM's compile and bulk-insert steps,
# which cost more than the queries. They do not flush the session first,
# and need not: the device insert flushed it, and what this request records
# afterwards holds no alert the count could miss.
_KNOWN = KnownBrowser.__table__
_EVENTS = SecurityEvent.__table__
_MINE = _KNOWN.c.user_id == bindparam("user_id")
_THIS_BROWSER = _KNOWN.c.browser_hash == bindparam("browser_hash")
# When this browser was last seen (None: never), and whether any was.
_BROWSER_SEEN = select(
    select(_KNOWN.c.last_seen_at).where(_MINE, _THIS_BROWSER).scalar_subquery(),
    exists().where(_MINE),
)
# An UPDATE's bind names may not be its columns' names.
_SEEN_AGAIN = (
    update(_KNOWN)
    .where(_KNOWN.c.user_id == bindparam("owner"), _KNOWN.c.browser_hash == bindparam("digest"))
    .values(last_seen_at=bindparam("now"))
)
_USERS = User.__table__
_FIRST_SIGN_IN = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("user_id"), _USERS.c.first_sign_in_at.is_(None))
    .values(first_sign_in_at=bindparam("now"))
)
# last_seen_at is for the purge (SECURITY_LOG_DAYS): a day's precision is plenty,
# and spares a write at most sign-ins.
SEEN_PRECISION = timedelta(days=1)
_REMEMBER_BROWSER = {
    "postgresql": postgresql.insert(_KNOWN).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_KNOWN).on_conflict_do_nothing(),
}
_ALERTS_SINCE = (
    select(func.count())
    .select_from(_EVENTS)
    .where(
        _EVENTS.c.user_id == bindparam("user_id"),
        _EVENTS.c.created_at > bindparam("since"),
        _EVENTS.c.event == NEW_BROWSER_LOGIN,
        _EVENTS.c.alert_token_hash.is_not(None),
    )
)


def _remember_browser(user: User, digest: str) -> None:
    """Add the browser to the account's known ones; a parallel sign-in may have already."""
    now = utc_now()
    values = {"user_id": user.id, "browser_hash": digest, "created_at": now, "last_seen_at": now}
    connection = db.session.connection()
    connection.execute(_REMEMBER_BROWSER[connection.dialect.name], values)


def check_browser(user: User, device: RefreshToken) -> None:
    """Record and mail a sign-in from a browser this account has not used before.

    Only the account's very first sign-in is silent: a browser forgotten
    (by a recovery, or the purge) is new again, and alerts. An app has no
    browser cookie: each of its sign-ins is a new device, and is noted by
    the device's id.
    """
    app = device.kind == DeviceKind.APP
    browser_id = f"app-device-{device.id}" if app else known_browsers.browser_id()
    digest = known_browsers.hash_id(browser_id)
    connection = db.session.connection()
    params = {"user_id": user.id, "browser_hash": digest}
    last_seen, any_seen = connection.execute(_BROWSER_SEEN, params).one()
    now = utc_now()
    if last_seen is not None:
        if last_seen < now - SEEN_PRECISION:
            connection.execute(_SEEN_AGAIN, {"owner": user.id, "digest": digest, "now": now})
        return
    _remember_browser(user, digest)
    if not any_seen and user.first_sign_in_at is None:
        # The account's first sign-in (just after signup): nothing to compare with.
        connection.execute(_FIRST_SIGN_IN, {"user_id": user.id, "now": now})
        set_committed_value(user, "first_sign_in_at", now)
        _give_device_to_signup(user, device)
        return
    limit = _settings()["NEW_BROWSER_ALERTS_PER_HOUR"]
    mail = user.new_browser_alerts and _alerts_last_hour(user) < limit
    token = secrets.token_urlsafe(32) if mail else None
    event = record(
        NEW_BROWSER_LOGIN,
        actor=user,
        target_user=user,
        device=device,
        alert_token_hash=hash_token(token) if token else None,
        details={"app": device.name or ""} if app else None,
    )
    if event is None or token is None:
        return
    with for_reader(user.language, user.time_zone):
        browser = (
            _("the app “%(name)s”", name=device.name or "")
            if app
            else describe_user_agent(device.user_agent)
        )
        location = describe_location(device.country, device.city)
    alert = Alert(
        email=user.email,
        username=user.username,
        language=user.language,
        time_zone=user.time_zone,
        when=event.created_at,
        browser=browser,
        ip=device.ip_address,
        location=location,
        not_me_link=public_url("auth.not_me", token=token),
        devices_link=public_url("account.device_list"),
    )
    # Written to the outbox in the sign-in's transaction: a failed sign-in mails nothing.
    send_alert(alert)


def _settings():
    return current_app.config


def _alerts_last_hour(user: User) -> int:
    """Count the alert mails sent to this account in the last hour (its events with a link)."""
    since = utc_now() - timedelta(hours=1)
    return db.session.connection().scalar(_ALERTS_SINCE, {"user_id": user.id, "since": since}) or 0


def hash_token(token: str) -> str:
    """Return the SHA-256 stored for a "This wasn't me" link's token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Alert:
    """What the new-sign-in mail says: plain values for the mail worker."""

    email: str
    username: str
    language: str
    time_zone: str
    when: datetime
    browser: str
    ip: str | None
    location: str
    not_me_link: str
    devices_link: str


def send_alert(alert: Alert) -> None:
    """Mail the new-sign-in alert."""
    send_mail(
        alert.email,
        SUBJECT,
        "new_browser",
        language=alert.language,
        time_zone=alert.time_zone,
        username=alert.username,
        when=alert.when,
        browser=alert.browser,
        ip=alert.ip,
        location=alert.location,
        not_me_link=alert.not_me_link,
        devices_link=alert.devices_link,
        days=_settings()["NOT_ME_LINK_DAYS"],
    )


# --- "This wasn't me" -------------------------------------------------------


@dataclass(frozen=True)
class AlertedSignIn:
    """The sign-in a "This wasn't me" link is about, ready to show."""

    event: SecurityEvent
    when: datetime
    browser: str
    ip_address: str
    location: str


def alerted_sign_in(token: str) -> AlertedSignIn | None:
    """Return the sign-in a link names, while the link is unused and under NOT_ME_LINK_DAYS old."""
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        return None
    event = db.session.scalars(
        select(SecurityEvent).where(SecurityEvent.alert_token_hash == hash_token(token))
    ).first()
    if event is None or event.alert_used_at is not None:
        return None
    if event.created_at < utc_now() - timedelta(days=_settings()["NOT_ME_LINK_DAYS"]):
        return None
    return AlertedSignIn(
        event=event,
        when=event.created_at,
        browser=translate_browser(event.browser) if event.browser else _("Unknown browser"),
        ip_address=event.ip_address or _("unknown"),
        location=describe_location(event.country, event.city),
    )


def sign_out_alerted_device(found: AlertedSignIn) -> bool:
    """Use the link once: revoke the device it names and record it; False if already used."""
    event = found.event
    won = db.session.execute(
        update(SecurityEvent)
        .where(SecurityEvent.id == event.id, SecurityEvent.alert_used_at.is_(None))
        .values(alert_used_at=utc_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        return False
    user = db.session.get(User, event.user_id)
    if user is None:
        return False
    count = 0
    if event.device_id is not None:
        count = devices.revoke_where(
            RefreshToken.id == event.device_id,
            RefreshToken.user_id == user.id,
            reason=RevokeReason.NOT_ME,
        )
    record(
        "device_revoked_not_me",
        target_user=user,
        details={"device": event.device_id, "signed_out": bool(count)},
    )
    take_account_back(user, Recovery.NOT_ME)
    return True


def set_alerts(user: User, enabled: bool) -> bool:
    """Turn the new-sign-in mails on or off for `user`; return whether that changed anything.

    A change is a security event, and mailed: an intruder who turns the
    alerts off to sign in unseen is seen doing that (the view mails it).
    """
    if user.new_browser_alerts == enabled:
        return False
    user.new_browser_alerts = enabled
    record("new_browser_alerts_on" if enabled else "new_browser_alerts_off", target_user=user)
    return True


# --- the purge ---------------------------------------------------------------------


def purge_known_browsers(batch_size: int = 1000) -> int:
    """Forget browsers not seen for SECURITY_LOG_DAYS, a batch per transaction; return how many."""
    cutoff = utc_now() - timedelta(days=_settings()["SECURITY_LOG_DAYS"])
    return delete_before(KnownBrowser.last_seen_at, cutoff, batch_size)
