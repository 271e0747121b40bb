"""Recording security-relevant events: the admin audit log and each user's activity.

`record` is the one place that writes them. It adds an audit row to the
current transaction, so an event is stored exactly when the action it
describes is; when the event concerns a user (`target_user`, `subject`, or
the signed-in actor for their own sign-out) and its code belongs on their
activity page (`activity.EVENTS`), it adds that user's security event too.
It never raises: a broken audit write is logged and the action goes on.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import select

from webapp.domain import activity
from webapp.extensions import db
from webapp.logs import quoted
from webapp.models import AuditEvent, RefreshToken, SecurityEvent, User, utc_now

logger = logging.getLogger("webapp.audit")


def record(
    action: str,
    *,
    actor: User | None = None,
    target_user: User | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    device: RefreshToken | None = None,
    ip: str | None = None,
    subject: User | None = None,
    alert_token_hash: str | None = None,
) -> SecurityEvent | None:
    """Add an audit event; the actor defaults to the signed-in user.

    `subject` is the account whose activity the event joins when the audit
    row names no target (a failed sign-in for an account that exists); it
    defaults to `target_user`, then to the actor. `device` names the
    browser the event is about when it is not the actor's own (a stolen
    token's); `ip` stands in for the client address outside a request
    (mail jobs); `alert_token_hash` is the security event's mailed link.
    Returns the user's security event, if one was written.
    """
    agent = None
    try:
        if has_request_context():
            from webapp.security.client import client_ip, user_agent

            ip, agent = client_ip(), user_agent()
            if actor is None and current_user.is_authenticated:
                actor = current_user._get_current_object()
        event = AuditEvent(
            action=action,
            actor_id=actor.id if actor else None,
            actor_username=actor.username if actor else None,
            target_username=target_user.username if target_user else None,
            target=(target or (target_user.username if target_user else None) or None),
            ip_address=(ip or "")[:45] or None,
            user_agent=(agent or "")[:512] or None,
            details=details or None,
        )
        db.session.add(event)
        logger.info(
            "%s actor=%s target=%s ip=%s",
            action,
            quoted(event.actor_username or "-"),
            quoted(event.target or (details or {}).get("identifier") or "-"),
            quoted(ip or "-"),
        )
    except Exception:  # an audit failure must not break the action it records
        logger.exception("could not record audit event %s", action)
        return None
    subject = subject or target_user or actor
    if subject is None or action not in activity.EVENTS:
        return None
    try:
        return _add_security_event(
            action, subject, actor, device, ip, agent, details, alert_token_hash
        )
    except Exception:
        logger.exception("could not record security event %s", action)
        return None


def _add_security_event(
    action: str,
    subject: User,
    actor: User | None,
    device: RefreshToken | None,
    ip: str | None,
    agent: str | None,
    details: dict[str, Any] | None,
    alert_token_hash: str | None,
) -> SecurityEvent:
    """Add `subject`'s security event: from their own browser, or done by someone else.

    What an administrator did shows without the administrator's address
    or browser: those are the administrator's, not the account's.
    """
    if actor is not None and actor.id != subject.id:
        return activity.add_event(
            action,
            subject,
            device_id=None,
            ip=None,
            user_agent=None,
            details=details,
            alert_token_hash=alert_token_hash,
        )
    if device is None and actor is not None:
        device = getattr(actor, "current_device", None)
    return activity.add_event(
        action,
        subject,
        device_id=device.id if device is not None else None,
        ip=ip,
        user_agent=agent,
        details=details,
        alert_token_hash=alert_token_hash,
    )


def record_alone(action: str, *, collapse_seconds: int = 0, **kwargs: Any) -> None:
    """Record an event for an action that writes nothing else, and commit it.

    With `collapse_seconds`, the same actor's event with the same target is
    stored once in that window, and at most COLLAPSE_MAX of them in all, so
    a refused user repeating requests cannot flood the log (the caller
    still logs each one).
    """
    if collapse_seconds and _recently_recorded(action, collapse_seconds, **kwargs):
        return
    record(action, **kwargs)
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        logger.exception("could not store audit event %s", action)


COLLAPSE_MAX = 10


def _recently_recorded(
    action: str, seconds: int, actor: User | None = None, target: str | None = None, **_: Any
) -> bool:
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    if actor is None:
        return False
    recent = db.session.scalars(
        select(AuditEvent.target)
        .where(
            AuditEvent.action == action,
            AuditEvent.actor_id == actor.id,
            AuditEvent.created_at > utc_now() - timedelta(seconds=seconds),
        )
        .limit(COLLAPSE_MAX)
    ).all()
    return len(recent) >= COLLAPSE_MAX or target in recent
