"""Each user's security activity: writing it, reading it in plain words, purging it.

`webapp.domain.audit.record` is the one place that writes: an event that
concerns a user (and whose code is in EVENTS) becomes a row here as well
as in the admin audit log, in the same transaction as the action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, g, has_request_context
from sqlalchemy import delete, select
from sqlalchemy.orm import InstrumentedAttribute

from webapp.domain.device_list import stored_browser, translate_browser
from webapp.domain.pages import Page, newest_first_page
from webapp.extensions import db
from webapp.i18n import _, _l, ngettext
from webapp.models import SecurityEvent, User, utc_now
from webapp.security.location import describe as describe_location
from webapp.security.location import locate
from webapp.templating import format_datetime

# Every code that belongs on its user's activity page, in plain words.
EVENTS: dict[str, str] = {
    "signup": _l("Account created"),
    "login": _l("Signed in"),
    "login_failed": _l("Failed sign-in: wrong password"),
    "logout": _l("Signed out"),
    "password_changed": _l("Password changed"),
    "password_reset_requested": _l("Password reset link requested"),
    "password_reset": _l("Password reset with an emailed link"),
    "device_revoked": _l("A device was signed out"),
    "token_theft_suspected": _l(
        "A device was signed out: its sign-in token was used again from elsewhere"
    ),
    "role_changed": _l("Role changed by an administrator"),
    "user_deactivated": _l("Account deactivated by an administrator"),
    "user_activated": _l("Account reactivated by an administrator"),
    "devices_signed_out": _l("Every device signed out by an administrator"),
    "email_confirmation_sent": _l("Confirmation email sent"),
    "email_confirmed": _l("Email address confirmed"),
    "email_change_requested": _l("Email address change requested"),
    "email_changed": _l("Email address changed"),
    "email_change_cancelled": _l("Email address change cancelled"),
    "signup_existing_email": _l("Someone tried to sign up with your email address"),
    "totp_enabled": _l("Authenticator app turned on"),
    "totp_disabled": _l("Authenticator app turned off"),
    "recovery_codes_generated": _l("New recovery codes generated"),
    "recovery_code_used": _l("Recovery code used"),
    "mfa_failed": _l("Failed sign-in: wrong two-factor code"),
    "mfa_reset": _l("Two-factor authentication reset by an administrator"),
    "passkey_added": _l("Passkey added"),
    "passkey_removed": _l("Passkey removed"),
    "new_browser_login": _l("Signed in from a new browser"),
    "device_revoked_not_me": _l("A device was signed out from the “This wasn't me” link"),
    "new_browser_alerts_on": _l("New-sign-in emails turned on"),
    "new_browser_alerts_off": _l("New-sign-in emails turned off"),
}

NEW_BROWSER_LOGIN = "new_browser_login"

# How a sign-in was made, from the `method` detail of `login`.
SIGN_IN_METHODS: dict[str, str] = {
    "password": _l("Signed in with a password"),
    "passkey": _l("Signed in with a passkey"),
    "totp": _l("Signed in with a password and an authenticator app"),
    "recovery_code": _l("Signed in with a password and a recovery code"),
}

BROWSER_MAX = 100


def add_event(
    code: str,
    user: User,
    *,
    device_id: int | None,
    ip: str | None,
    user_agent: str | None,
    details: dict[str, Any] | None,
    alert_token_hash: str | None = None,
) -> SecurityEvent:
    """Add one event to `user`'s activity, in the current transaction."""
    ip = (ip or "")[:45] or None
    where = locate(ip) if ip else None
    event = SecurityEvent(
        user_id=user.id,
        event=code,
        device_id=device_id,
        ip_address=ip,
        browser=stored_browser(user_agent)[:BROWSER_MAX] if user_agent else None,
        country=where.country if where else None,
        city=where.city if where else None,
        details=details or None,
        created_at=utc_now(),
        alert_token_hash=alert_token_hash,
    )
    db.session.add(event)
    if has_request_context():
        # This request's events, for a sign-in that follows them (see new_browser).
        g.setdefault("security_events", []).append(event)
    return event


def events_of_this_request() -> list[SecurityEvent]:
    """Return the security events this request has recorded so far."""
    return list(g.get("security_events", [])) if has_request_context() else []


def describe_event(code: str, details: dict[str, Any] | None) -> str:
    """Say what happened, in plain words, from the event code and its details."""
    details = details if isinstance(details, dict) else {}
    if code in {"login", NEW_BROWSER_LOGIN} and isinstance(details.get("app"), str):
        app = details["app"][:60]
        if code == NEW_BROWSER_LOGIN:
            return _("Signed in with the app “%(name)s” (a new device)", name=app)
        return _("Signed in with the app “%(name)s”", name=app)
    if code == "login":
        method = details.get("method")
        return str(
            SIGN_IN_METHODS.get(method, EVENTS["login"])
            if isinstance(method, str)
            else (EVENTS["login"])
        )
    if code == "device_revoked":
        if details.get("by_admin"):
            return _("A device was signed out by an administrator")
        others = details.get("others")
        if isinstance(others, int):
            return ngettext(
                "Signed out %(num)d other device", "Signed out %(num)d other devices", others
            )
        return _("A device was signed out from the device page")
    if code == "role_changed" and isinstance(details.get("to"), str):
        return _("Role changed by an administrator to %(role)s", role=details["to"])
    if code == "devices_signed_out" and isinstance(details.get("devices"), int):
        return ngettext(
            "Every device signed out by an administrator (%(num)d device)",
            "Every device signed out by an administrator (%(num)d devices)",
            details["devices"],
        )
    if code in {"passkey_added", "passkey_removed"} and isinstance(details.get("name"), str):
        return _("%(event)s: %(name)s", event=EVENTS[code], name=details["name"][:60])
    return str(EVENTS.get(code, _("Other account activity")))


@dataclass(frozen=True, slots=True)
class EventRow:
    """What the activity page shows for one event, ready to print."""

    id: int
    when: str
    what: str
    browser: str
    ip_address: str
    location: str
    current: bool


def _row(event: SecurityEvent, current_device_id: int | None) -> EventRow:
    return EventRow(
        id=event.id,
        when=format_datetime(event.created_at),
        what=describe_event(event.event, event.details),
        browser=translate_browser(event.browser) if event.browser else "—",
        ip_address=event.ip_address or "—",
        location=describe_location(event.country, event.city) if event.ip_address else "—",
        current=current_device_id is not None and event.device_id == current_device_id,
    )


def activity_page(
    user: User, current_device_id: int | None, after: str | None = None, before: str | None = None
) -> Page[EventRow]:
    """Return 50 of the user's events, newest first, in one query."""
    page = newest_first_page(
        select(SecurityEvent).where(SecurityEvent.user_id == user.id), SecurityEvent, after, before
    )
    return Page(
        items=[_row(event, current_device_id) for event in page.items],
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )


def activity_events(user: User, after: str | None = None) -> Page[SecurityEvent]:
    """Return 50 of the user's events as stored, newest first (for the token API)."""
    return newest_first_page(
        select(SecurityEvent).where(SecurityEvent.user_id == user.id), SecurityEvent, after, None
    )


def purge_activity(batch_size: int = 1000) -> int:
    """Delete events older than SECURITY_LOG_DAYS, a batch per transaction; return how many."""
    cutoff = utc_now() - timedelta(days=current_app.config["SECURITY_LOG_DAYS"])
    return delete_before(SecurityEvent.created_at, cutoff, batch_size)


def delete_before(when: InstrumentedAttribute, cutoff: datetime, batch_size: int = 1000) -> int:
    """Delete the rows of `when`'s table whose `when` is before `cutoff`, a batch per
    transaction (short write locks on SQLite); return how many."""
    model = when.class_
    total = 0
    while True:
        ids = db.session.scalars(select(model.id).where(when < cutoff).limit(batch_size)).all()
        if not ids:
            return total
        db.session.execute(delete(model).where(model.id.in_(ids)))
        db.session.commit()
        total += len(ids)
