"""The token API's admin endpoints (`/api/v1/admin`): the admin pages' rules, as JSON.

Only the role `admin` with an access token whose `amr` shows a second
factor gets in; every rule (the last admin, roles in use) and audit row
is the account domain's, as on the admin pages.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from flask import request
from flask_login import current_user
from flask_smorest import Blueprint

from webapp.api import schemas
from webapp.api.routes import bearer_required, refuse_non_json
from webapp.domain import administration, apps
from webapp.domain.administration import AdminError
from webapp.domain.audit import record_alone
from webapp.errors import problem
from webapp.extensions import db
from webapp.i18n import _, _l
from webapp.models import Role, User
from webapp.security import bearer

blp = Blueprint(
    "api_admin",
    __name__,
    url_prefix="/api/v1/admin",
    description="Users, roles and the audit log, for admins with a second factor.",
)
blp.before_request(refuse_non_json)

NEEDS_SECOND_FACTOR = _l(
    "Admin endpoints need an access token from a sign-in with a second factor."
)


def admin_required(view):
    """A bearer token of an admin whose sign-in passed a second factor; else 403."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            record_alone(
                "admin_access_denied",
                collapse_seconds=60,
                target=f"{request.method} {request.path}"[:255],
                details={"method": request.method, "path": request.path[:200], "api": True},
            )
            return problem(403, code="forbidden", detail=_("Only admins may do that."))
        claims = bearer.access_claims()
        if claims is None or not apps.passed_second_factor(claims.amr):
            return problem(403, code="mfa_required", detail=NEEDS_SECOND_FACTOR)
        return view(*args, **kwargs)

    return bearer_required(guarded)


# --- users --------------------------------------------------------------------------


def user_json(user: User) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role.name,
        "is_active": user.is_active,
        "created_at": user.created_at,
    }


def _not_found(what: str = "user") -> Any:
    if what == "role":
        return problem(404, detail=_("There is no role with that id."))
    return problem(404, detail=_("There is no user with that id."))


@blp.get("/users")
@admin_required
@blp.arguments(schemas.UserSearchQuery(), location="query")
@blp.response(200, schemas.AdminUserPage)
def users(query: dict):
    """Users, newest first, 50 a page, searched by username or email."""
    page = administration.users_page(query.get("q") or "", after=query.get("cursor"))
    return {"items": [user_json(user) for user in page.items], "next_cursor": page.next_cursor}


@blp.get("/users/<uuid:user_id>")
@admin_required
@blp.response(200, schemas.AdminUser)
def user_detail(user_id: uuid.UUID):
    """One user."""
    user = administration.find_user(user_id)
    return _not_found() if user is None else user_json(user)


@blp.patch("/users/<uuid:user_id>")
@admin_required
@blp.arguments(schemas.UserPatch())
@blp.response(200, schemas.AdminUser)
def user_update(body: dict, user_id: uuid.UUID):
    """Change a user's role and/or (de)activate them; deactivation signs out everywhere."""
    user = administration.find_user(user_id)
    if user is None:
        return _not_found()
    try:
        if "role" in body:
            role = db.session.query(Role).filter_by(name=body["role"].strip().lower()).first()
            if role is None:
                message = _("That role does not exist.")
                return problem(422, detail=message, errors={"role": [message]})
            administration.change_role(user, role.id)
        if "is_active" in body:
            administration.set_active(user, body["is_active"])
    except AdminError as exc:
        db.session.rollback()
        return problem(409, code="last_admin", detail=str(exc))
    db.session.commit()
    return user_json(user)


@blp.post("/users/<uuid:user_id>/revoke-devices")
@admin_required
@blp.response(204)
def user_revoke_devices(user_id: uuid.UUID):
    """Sign out every browser and app of that user."""
    user = administration.find_user(user_id)
    if user is None:
        return _not_found()
    keep = current_user.current_device.id if user.id == current_user.id else None
    administration.sign_out_devices(user, keep_id=keep)
    db.session.commit()
    return None


# --- roles --------------------------------------------------------------------------


def role_json(role: Role, user_count: int) -> dict:
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "mfa_required": role.mfa_required,
        "builtin": role.is_builtin,
        "user_count": user_count,
    }


@blp.get("/roles")
@admin_required
@blp.response(200, schemas.RoleList)
def roles():
    """Every role, with how many users hold it."""
    return {
        "items": [role_json(row.role, row.user_count) for row in administration.roles_with_counts()]
    }


def _role_name(raw: str) -> str | Any:
    try:
        return administration.canonical_role_name(raw)
    except AdminError as exc:
        return problem(422, detail=str(exc), errors={"name": [str(exc)]})


@blp.post("/roles")
@admin_required
@blp.arguments(schemas.RoleCreate())
@blp.response(201, schemas.RoleOut)
def role_create(body: dict):
    """Add a role."""
    name = _role_name(body["name"])
    if not isinstance(name, str):
        return name
    try:
        role = administration.create_role(
            name, body.get("description"), mfa_required=body["mfa_required"]
        )
    except AdminError as exc:
        db.session.rollback()
        return problem(409, code="conflict", detail=str(exc))
    db.session.commit()
    return role_json(role, 0)


@blp.patch("/roles/<int:role_id>")
@admin_required
@blp.arguments(schemas.RolePatch())
@blp.response(200, schemas.RoleOut)
def role_update(body: dict, role_id: int):
    """Rename or describe a role, or say whether it requires two-factor."""
    role = db.session.get(Role, role_id) if 0 < role_id < 2**31 else None
    if role is None:
        return _not_found("role")
    name = role.name
    if "name" in body:
        name = _role_name(body["name"])
        if not isinstance(name, str):
            return name
    try:
        administration.update_role(
            role,
            name,
            body.get("description", role.description),
            mfa_required=body.get("mfa_required"),
        )
    except AdminError as exc:
        db.session.rollback()
        return problem(409, code="conflict", detail=str(exc))
    db.session.commit()
    return role_json(role, administration.role_user_count(role))


@blp.delete("/roles/<int:role_id>")
@admin_required
@blp.response(204)
def role_delete(role_id: int):
    """Delete a role nobody holds; built-in roles stay."""
    role = db.session.get(Role, role_id) if 0 < role_id < 2**31 else None
    if role is None:
        return _not_found("role")
    try:
        administration.delete_role(role)
    except AdminError as exc:
        db.session.rollback()
        return problem(409, code="role_in_use", detail=str(exc))
    db.session.commit()
    return None


# --- the audit log ------------------------------------------------------------------


@blp.get("/audit")
@admin_required
@blp.arguments(schemas.CursorQuery(), location="query")
@blp.response(200, schemas.AuditPage)
def audit(query: dict):
    """The audit log, newest first, 50 a page."""
    page = administration.audit_page(after=query.get("cursor"))
    return {
        "items": [
            {
                "id": event.id,
                "action": event.action,
                "actor": event.actor_username,
                "target": event.target,
                "ip": event.ip_address,
                "created_at": event.created_at,
                "details": event.details,
            }
            for event in page.items
        ],
        "next_cursor": page.next_cursor,
    }
