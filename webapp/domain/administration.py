"""The admin area's rules: listing and changing users and roles, reading the audit log.

Services add and flush; the views commit. Every change records an audit
event in the same transaction, with the signed-in admin as its actor.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from webapp.domain import two_factor
from webapp.domain.audit import record
from webapp.domain.device_list import DeviceRow, device_rows
from webapp.domain.pages import Page
from webapp.domain.pages import newest_first_page as _newest_first_page
from webapp.domain.recovery import Recovery, take_account_back
from webapp.domain.users import active_admin_ids
from webapp.extensions import db
from webapp.i18n import _, _l, ngettext
from webapp.models import ADMIN_ROLE, AuditEvent, RefreshToken, RevokeReason, Role, User
from webapp.security import devices

SEARCH_MAX = 255
ROLE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
ROLE_NAME_RULE = _l(
    "Use 2 to 32 characters: lowercase letters a–z, digits, dashes and underscores, "
    "starting with a letter."
)

# The actions the audit log filter offers, with a readable name for each.
KNOWN_ACTIONS: dict[str, str] = {
    "signup": _l("Signed up"),
    "login": _l("Logged in"),
    "login_failed": _l("Login failed"),
    "logout": _l("Logged out"),
    "password_changed": _l("Password changed"),
    "password_reset": _l("Password reset"),
    "account_deleted": _l("Account deleted"),
    "device_revoked": _l("Device revoked"),
    "token_theft_suspected": _l("Token theft suspected"),
    "admin_created": _l("Admin created (CLI)"),
    "role_changed": _l("Role changed"),
    "user_deactivated": _l("User deactivated"),
    "user_activated": _l("User activated"),
    "devices_signed_out": _l("All devices signed out by an admin"),
    "role_created": _l("Role created"),
    "role_renamed": _l("Role renamed"),
    "role_updated": _l("Role description changed"),
    "role_deleted": _l("Role deleted"),
    "admin_access_denied": _l("Admin page refused"),
    "email_confirmation_sent": _l("Email confirmation sent"),
    "email_confirmed": _l("Email confirmed"),
    "email_change_requested": _l("Email change requested"),
    "email_changed": _l("Email changed"),
    "email_change_cancelled": _l("Email change cancelled"),
    "signup_existing_email": _l("Signup tried with a taken email"),
    "totp_enabled": _l("Authenticator app turned on"),
    "totp_disabled": _l("Authenticator app turned off"),
    "recovery_codes_generated": _l("Recovery codes generated"),
    "recovery_code_used": _l("Recovery code used"),
    "mfa_failed": _l("Two-factor code refused"),
    "mfa_reset": _l("Two-factor reset by an admin"),
    "new_browser_login": _l("Signed in from a new browser"),
    "device_revoked_not_me": _l("Device signed out from a new-sign-in alert"),
    "passkey_added": _l("Passkey added"),
    "passkey_removed": _l("Passkey removed"),
    "passkey_refused": _l("Passkey refused"),
    "new_browser_alerts_on": _l("New-sign-in emails turned on"),
    "new_browser_alerts_off": _l("New-sign-in emails turned off"),
}


class AdminError(Exception):
    """An admin action was refused; the message says why, for the page."""


# --- users ------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def users_page(
    search: str = "",
    after: str | None = None,
    before: str | None = None,
    unconfirmed: bool = False,
) -> Page[User]:
    """Return 50 users, newest first, matching `search` in username or email.

    Both are stored lowercase, so a lowercased LIKE is case-insensitive on
    every database; the wildcards typed are escaped. `unconfirmed` keeps
    only accounts whose email address is not confirmed.
    """
    stmt = select(User)
    if unconfirmed:
        stmt = stmt.where(User.email_verified_at.is_(None))
    term = search.strip().lower()
    if term:
        pattern = f"%{_escape_like(term)}%"
        stmt = stmt.where(
            or_(User.username.like(pattern, escape="\\"), User.email.like(pattern, escape="\\"))
        )
    return _newest_first_page(stmt, User, after, before)


def find_user(user_id: uuid.UUID) -> User | None:
    return db.session.get(User, user_id)


# Ids beyond a 32-bit integer name no role (PostgreSQL would refuse to compare them).
MAX_ROLE_ID = 2**31 - 1


def find_role(role_id: int) -> Role | None:
    """Return the role with this id, or None."""
    return db.session.get(Role, role_id) if 0 < role_id <= MAX_ROLE_ID else None


def role_choices() -> list[tuple[int, str]]:
    """Return every role as (id, name), for the role select."""
    return [(role.id, role.name) for role in db.session.scalars(select(Role).order_by(Role.name))]


def user_devices(user: User, current_id: int | None) -> list[DeviceRow]:
    """Return the user's signed-in devices, as the devices page shows them."""
    return [row for row in device_rows(user, current_id) if not row.stolen]


def _ensure_other_active_admin(user: User, doing: str) -> None:
    """Refuse `doing` when `user` is the last active admin.

    The active admins' rows are locked (PostgreSQL), so two admins demoting
    each other at the same moment cannot both succeed.
    """
    if not (user.is_active and user.is_admin):
        return
    ids = active_admin_ids(lock=True)
    if not any(admin_id != user.id for admin_id in ids):
        raise AdminError(_last_admin_message(user, doing))


def _last_admin_message(user: User, doing: str) -> str:
    """Say why `doing` ("demoted" or "deactivated") is refused, as one whole sentence."""
    if doing == "demoted":
        return _(
            "%(name)s is the last active admin and cannot be demoted. "
            "Make another user an admin first.",
            name=user.username,
        )
    return _(
        "%(name)s is the last active admin and cannot be deactivated. "
        "Make another user an admin first.",
        name=user.username,
    )


def _ensure_an_active_admin_remains(user: User, doing: str) -> None:
    """Re-count the active admins after the change, inside its transaction.

    The change's UPDATE holds SQLite's write lock until the commit, so of
    two admins demoting each other at the same moment, the second counts
    after the first's change and is refused (on PostgreSQL the row locks
    taken before the change already serialise them).
    """
    if not active_admin_ids():
        db.session.rollback()
        raise AdminError(_last_admin_message(user, doing))


def change_role(user: User, role_id: int) -> bool:
    """Give `user` another role; return whether anything changed."""
    role = db.session.get(Role, role_id)
    if role is None:
        raise AdminError(_("That role does not exist."))
    if role.id == user.role_id:
        return False
    if role.name != ADMIN_ROLE:
        _ensure_other_active_admin(user, "demoted")
    old = user.role.name
    user.role = role
    db.session.flush()
    _ensure_an_active_admin_remains(user, "demoted")
    record("role_changed", target_user=user, details={"from": old, "to": role.name})
    return True


def set_active(user: User, active: bool) -> int:
    """Activate or deactivate `user`; deactivating signs out every device.

    Return how many devices were signed out.
    """
    if user.is_active == active:
        return 0
    signed_out = 0
    if not active:
        _ensure_other_active_admin(user, "deactivated")
        signed_out = devices.revoke_user_devices(user.id, RevokeReason.ADMIN)
    user.is_active = active
    db.session.flush()
    if not active:
        _ensure_an_active_admin_remains(user, "deactivated")
    if active:
        record("user_activated", target_user=user)
    else:
        record("user_deactivated", target_user=user, details={"devices": signed_out})
    return signed_out


def sign_out_devices(user: User, keep_id: int | None = None) -> int:
    """Sign out every device of `user` (but `keep_id`); return how many."""
    count = devices.revoke_user_devices(user.id, RevokeReason.ADMIN, keep_id=keep_id)
    take_account_back(user, Recovery.ADMIN_SIGN_OUT)
    record("devices_signed_out", target_user=user, details={"devices": count})
    return count


def reset_two_factor(user: User, *, by: User) -> two_factor.Reset:
    """Remove the user's second factors and sign out their devices; return how many.

    An admin manages their own two-factor on their sign-in methods page, not here.
    """
    if user.id == by.id:
        raise AdminError(
            _("Manage your own two-factor authentication on your sign-in methods page.")
        )
    return two_factor.reset_two_factor(user)


def revoke_user_device(user: User, device_id: int) -> bool:
    """Revoke one device of `user`; return False when the user has no such device."""
    device = db.session.scalars(
        select(RefreshToken).where(RefreshToken.id == device_id, RefreshToken.user_id == user.id)
    ).first()
    if device is None:
        return False
    if not device.is_revoked:
        devices.revoke_device(device, RevokeReason.ADMIN)
        record("device_revoked", target_user=user, details={"device": device.id, "by_admin": True})
    return True


# --- roles ------------------------------------------------------------------


@dataclass(frozen=True)
class RoleRow:
    role: Role
    user_count: int


def roles_with_counts() -> list[RoleRow]:
    """Return every role with the number of users holding it, in one query."""
    rows = db.session.execute(
        select(Role, func.count(User.id))
        .outerjoin(User, User.role_id == Role.id)
        .group_by(Role.id)
        .order_by(Role.name)
    ).all()
    return [RoleRow(role=role, user_count=count) for role, count in rows]


def role_user_count(role: Role) -> int:
    """Return how many users hold `role`."""
    return db.session.scalar(select(func.count(User.id)).where(User.role_id == role.id)) or 0


def canonical_role_name(raw: str) -> str:
    """Return the stored (lowercase) form of a role name, or raise AdminError."""
    name = raw.strip().lower()
    if not ROLE_NAME_RE.match(name):
        raise AdminError(ROLE_NAME_RULE)
    return name


def _name_taken(name: str, except_id: int | None = None) -> bool:
    stmt = select(Role.id).where(func.lower(Role.name) == name)
    if except_id is not None:
        stmt = stmt.where(Role.id != except_id)
    return db.session.scalars(stmt).first() is not None


DUPLICATE_ROLE = _l("A role with that name already exists.")


def create_role(name: str, description: str | None, *, mfa_required: bool = False) -> Role:
    """Add a role; `name` is canonical. Raise AdminError for a duplicate."""
    if _name_taken(name):
        raise AdminError(DUPLICATE_ROLE)
    role = Role(name=name, description=description or None, mfa_required=bool(mfa_required))
    try:
        with db.session.begin_nested():
            db.session.add(role)
    except IntegrityError:  # created a moment ago by another admin
        raise AdminError(DUPLICATE_ROLE) from None
    record(
        "role_created",
        target=f"role {name}",
        details={"role_id": role.id, "mfa_required": role.mfa_required},
    )
    return role


def update_role(
    role: Role, name: str, description: str | None, *, mfa_required: bool | None = None
) -> None:
    """Rename and describe a role, and say whether it requires two-factor.

    Built-in roles keep their names, and `admin` always requires two-factor
    (admin pages need it whatever the form says).
    """
    description = description or None
    if role.name == ADMIN_ROLE:
        mfa_required = True
    old_name = role.name
    if name != old_name:
        if role.is_builtin:
            raise AdminError(_("The built-in role %(name)s cannot be renamed.", name=old_name))
        if _name_taken(name, except_id=role.id):
            raise AdminError(DUPLICATE_ROLE)
        try:
            with db.session.begin_nested():
                role.name = name
        except IntegrityError:
            raise AdminError(DUPLICATE_ROLE) from None
        record(
            "role_renamed",
            target=f"role {name}",
            details={"role_id": role.id, "from": old_name, "to": name},
        )
    if description != role.description:
        role.description = description
        db.session.flush()
        record("role_updated", target=f"role {role.name}", details={"role_id": role.id})
    if mfa_required is not None and bool(mfa_required) != role.mfa_required:
        role.mfa_required = bool(mfa_required)
        db.session.flush()
        record(
            "role_updated",
            target=f"role {role.name}",
            details={"role_id": role.id, "mfa_required": role.mfa_required},
        )


def delete_role(role: Role) -> None:
    """Delete a role nobody holds; built-in roles stay."""
    if role.is_builtin:
        raise AdminError(_("The built-in role %(name)s cannot be deleted.", name=role.name))
    held = role_user_count(role)
    in_use = AdminError(
        ngettext(
            "The role %(name)s cannot be deleted while users hold it (%(num)d). "
            "Give them another role first.",
            "The role %(name)s cannot be deleted while users hold it (%(num)d). "
            "Give them another role first.",
            held,
            name=role.name,
        )
    )
    if held:
        raise in_use
    name, role_id = role.name, role.id
    try:
        with db.session.begin_nested():
            db.session.delete(role)
    except IntegrityError:  # a user was given the role a moment ago
        raise in_use from None
    record("role_deleted", target=f"role {name}", details={"role_id": role_id})


# --- audit log --------------------------------------------------------------


def _audit_filtered(username: str, action: str) -> Select[tuple[AuditEvent]]:
    stmt = select(AuditEvent)
    name = username.strip().lower()
    if name:
        stmt = stmt.where(
            or_(AuditEvent.actor_username == name, AuditEvent.target_username == name)
        )
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return stmt


def audit_page(
    username: str = "", action: str = "", after: str | None = None, before: str | None = None
) -> Page[AuditEvent]:
    """Return 50 audit events, newest first, filtered by user and action."""
    return _newest_first_page(_audit_filtered(username, action), AuditEvent, after, before)
