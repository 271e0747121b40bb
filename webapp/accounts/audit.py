"""Recording security-relevant events in the audit log.

`record` adds a row to the current transaction, so an event is stored
exactly when the action it describes is. It never raises: a broken audit
write is logged and the action goes on.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import select

from webapp.extensions import db
from webapp.logs import quoted
from webapp.models import AuditEvent, User, utc_now

logger = logging.getLogger("webapp.audit")


def record(
    action: str,
    *,
    actor: User | None = None,
    target_user: User | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event; the actor defaults to the signed-in user."""
    try:
        ip = agent = None
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
