"""The recovery marker: steps pending from before the owner took the account back die.

A pending step (the login's second step, an API `mfa_token`, ...) lives
where this process cannot reach it: in another browser's session, in an
app's memory. So the account keeps a time instead, `users.recovered_at`,
and every such step is checked against it when it comes back. The account
domain (`webapp.domain.recovery`) sets it; whatever issues a pending step
records when, and asks `pending_step_is_current` before honouring it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from webapp.extensions import db
from webapp.models import User, utc_now


def mark_recovered(user: User, **also: object) -> datetime:
    """Record that the owner took the account back now; return the time.

    `also` names other columns of the user to set in the same UPDATE.
    """
    now = utc_now()
    values = {"recovered_at": now, **also}
    db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for name, value in values.items():
        set_committed_value(user, name, value)
    return now


def pending_step_is_current(user: User, issued_at: datetime | float) -> bool:
    """Return whether a step issued at `issued_at` (a datetime or epoch seconds) may go on.

    False when the owner took the account back at or after that time.
    """
    if isinstance(issued_at, int | float):
        issued_at = datetime.fromtimestamp(issued_at, UTC)
    recovered = user.recovered_at
    return recovered is None or issued_at > recovered
