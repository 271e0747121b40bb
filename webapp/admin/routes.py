"""Views of the admin blueprint: users, roles, the audit log and mail delivery."""

from __future__ import annotations

import logging
import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.admin.forms import (
    ActionForm,
    AuditFilterForm,
    CreateRoleForm,
    RevokeDeviceForm,
    RoleForm,
    SearchForm,
    UserRoleForm,
)
from webapp.domain import administration
from webapp.domain.administration import AdminError
from webapp.domain.audit import record_alone
from webapp.domain.notices import mail_notice
from webapp.domain.two_factor import device_passed
from webapp.domain.users import is_last_active_admin
from webapp.extensions import db, login_manager
from webapp.i18n import _, _l, ngettext
from webapp.logs import quoted
from webapp.mail import delivery_counts
from webapp.models import Role, User
from webapp.security.login import fresh_login_required, rekey_this_device

bp = Blueprint("admin", __name__, url_prefix="/admin")
logger = logging.getLogger("webapp.admin")

DEVICE_NEEDS_SECOND_FACTOR = _l(
    "Admin pages need this browser to have passed two-factor authentication. "
    "Log out, then log in again with your authentication code."
)


@bp.before_request
def require_admin():
    """Deny by default: only admins reach anything in this blueprint, on any method."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        logger.warning(
            "admin access denied user=%s method=%s path=%s",
            quoted(current_user.username),
            quoted(request.method),
            quoted(request.path),
        )
        # Every refusal is logged; the audit table keeps each a minute per user (at most 10).
        record_alone(
            "admin_access_denied",
            collapse_seconds=60,
            target=f"{request.method} {request.path}"[:255],
            details={"method": request.method, "path": request.path[:200]},
        )
        abort(403)
    if not device_passed(current_user.current_device):
        # A session from before two-factor was set up, or from a role that did
        # not require it: admin pages need this very browser to have passed one.
        logger.warning(
            "admin access without a second factor user=%s", quoted(current_user.username)
        )
        flash(str(DEVICE_NEEDS_SECOND_FACTOR), "error")
        return redirect(url_for("account.security"))
    return None


@bp.get("/")
def index():
    """Show the admin home."""
    return render_template("admin/index.html")


# --- users ------------------------------------------------------------------


@bp.get("/users")
def users():
    """List users, newest first, 50 a page, optionally searched."""
    form = SearchForm(request.args)
    valid = form.validate()
    term = (form.q.data or "").strip() if valid else ""
    unconfirmed = bool(form.unconfirmed.data) if valid else False
    page = administration.users_page(
        term,
        after=request.args.get("after"),
        before=request.args.get("before"),
        unconfirmed=unconfirmed,
    )
    return render_template(
        "admin/users.html", form=form, page=page, term=term, unconfirmed=unconfirmed
    )


def _user_or_404(user_id: uuid.UUID) -> User:
    user = administration.find_user(user_id)
    if user is None:
        abort(404)
    return user


def _render_user(user: User, role_form: UserRoleForm | None = None, status: int = 200):
    if role_form is None:
        role_form = UserRoleForm(choices=administration.role_choices(), data={"role": user.role_id})
    current_id = current_user.current_device.id if user.id == current_user.id else None
    return (
        render_template(
            "admin/user.html",
            user=user,
            role_form=role_form,
            devices=administration.user_devices(user, current_id),
            two_factor_on=user.has_second_factor,
            last_admin=is_last_active_admin(user),
        ),
        status,
    )


@bp.get("/users/<uuid:user_id>")
def user_detail(user_id: uuid.UUID):
    """Show one user: role, status and signed-in devices."""
    return _render_user(_user_or_404(user_id))


@bp.post("/users/<uuid:user_id>")
@fresh_login_required
def user_action(user_id: uuid.UUID):
    """Change a user's role, (de)activate them or sign out their devices."""
    user = _user_or_404(user_id)
    action = request.form.get("action", "")
    is_self = user.id == current_user.id
    notify = None
    try:
        if action == "role":
            form = UserRoleForm(choices=administration.role_choices())
            if not form.validate_on_submit():
                return _render_user(user, role_form=form, status=400)
            changed = administration.change_role(user, form.role.data)
            if changed:
                message = _("%(name)s is now %(role)s.", name=user.username, role=user.role.name)
            else:
                message = _("No change.")
        elif action in {"deactivate", "activate"}:
            _require_valid(ActionForm())
            count = administration.set_active(user, action == "activate")
            if action == "activate":
                message = _("%(name)s is active again.", name=user.username)
            else:
                message = ngettext(
                    "%(name)s is deactivated and signed out of %(num)d device.",
                    "%(name)s is deactivated and signed out of %(num)d devices.",
                    count,
                    name=user.username,
                )
        elif action == "signout":
            _require_valid(ActionForm())
            keep = current_user.current_device.id if is_self else None
            count = administration.sign_out_devices(user, keep_id=keep)
            if is_self:
                rekey_this_device()
            message = ngettext(
                "Signed %(name)s out of %(num)d device.",
                "Signed %(name)s out of %(num)d devices.",
                count,
                name=user.username,
            )
        elif action == "reset_two_factor":
            _require_valid(ActionForm())
            reset = administration.reset_two_factor(user, by=current_user)
            notify = "two_factor_reset"
            message = _(
                "Two-factor authentication of %(username)s is reset: the authenticator app, "
                "the recovery codes and %(passkeys)s are removed; signed out of %(devices)s.",
                username=user.username,
                passkeys=ngettext("%(num)d passkey", "%(num)d passkeys", reset.passkeys),
                devices=ngettext("%(num)d device", "%(num)d devices", reset.devices),
            )
        elif action == "revoke":
            form = RevokeDeviceForm()
            _require_valid(form)
            if not administration.revoke_user_device(user, form.device_id.data):
                abort(404)
            message = _("That device of %(name)s is signed out.", name=user.username)
        else:
            abort(400)
    except AdminError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".user_detail", user_id=user_id))
    if notify:
        mail_notice(notify, user, None, None)
    db.session.commit()
    flash(message, "success")
    if is_self and not (user.is_active and user.is_admin):
        # The admin gave up their own access: the admin pages would now refuse them.
        return redirect(url_for("account.overview"))
    return redirect(url_for(".user_detail", user_id=user_id))


def _require_valid(form) -> None:
    if not form.validate_on_submit():
        abort(400)


# --- roles ------------------------------------------------------------------


def _render_roles(form: CreateRoleForm, status: int = 200):
    return (
        render_template("admin/roles.html", rows=administration.roles_with_counts(), form=form),
        status,
    )


@bp.get("/roles")
def roles():
    """List roles with how many users hold each."""
    return _render_roles(CreateRoleForm())


@bp.post("/roles")
@fresh_login_required
def create_role():
    """Create a role."""
    form = CreateRoleForm()
    if form.validate_on_submit():
        try:
            role = administration.create_role(
                form.canonical, form.description.data, mfa_required=form.mfa_required.data
            )
        except AdminError as exc:
            db.session.rollback()
            form.name.errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("Role %(name)s created.", name=role.name), "success")
            return redirect(url_for(".roles"))
    return _render_roles(form, status=400)


def _role_or_404(role_id: int) -> Role:
    role = administration.find_role(role_id)
    if role is None:
        abort(404)
    return role


def _render_role(role: Role, form: RoleForm | None = None, status: int = 200):
    form = form or RoleForm(obj=role)
    if role.is_builtin:
        form.name.render_kw = {**(form.name.render_kw or {}), "readonly": True}
    held = administration.role_user_count(role)
    return render_template("admin/role.html", role=role, form=form, held=held), status


@bp.get("/roles/<int:role_id>")
def role_detail(role_id: int):
    """Show one role, to rename, describe or delete it."""
    return _render_role(_role_or_404(role_id))


@bp.post("/roles/<int:role_id>")
@fresh_login_required
def role_action(role_id: int):
    """Save a role's name and description, or delete it."""
    role = _role_or_404(role_id)
    if request.form.get("action") == "delete":
        _require_valid(ActionForm())
        name = role.name
        try:
            administration.delete_role(role)
        except AdminError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".role_detail", role_id=role_id))
        db.session.commit()
        flash(_("Role %(name)s deleted.", name=name), "success")
        return redirect(url_for(".roles"))

    form = RoleForm()
    if form.validate_on_submit():
        try:
            administration.update_role(
                role, form.canonical, form.description.data, mfa_required=form.mfa_required.data
            )
        except AdminError as exc:
            db.session.rollback()
            form.name.errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("Role %(name)s saved.", name=role.name), "success")
            return redirect(url_for(".role_detail", role_id=role_id))
    return _render_role(_role_or_404(role_id), form=form, status=400)


# --- audit log --------------------------------------------------------------


@bp.get("/audit")
def audit():
    """Read the audit log, newest first, filtered by user and action."""
    form = AuditFilterForm(request.args)
    form.validate()
    username = "" if form.user.errors else (form.user.data or "").strip().lower()
    action = "" if form.action.errors else (form.action.data or "")
    page = administration.audit_page(
        username, action, after=request.args.get("after"), before=request.args.get("before")
    )
    return render_template(
        "admin/audit.html",
        form=form,
        page=page,
        filters={"user": username or None, "action": action or None},
        actions=administration.KNOWN_ACTIONS,
    )


# --- mail delivery ----------------------------------------------------------


@bp.get("/mail")
def mail_delivery():
    """Show how the outbox is doing: counts and the oldest waiting mail's age, no content."""
    counts = delivery_counts()
    oldest = counts.oldest_waiting
    minutes = None if oldest is None else int(oldest.total_seconds() // 60)
    return render_template("admin/mail.html", counts=counts, oldest_minutes=minutes)
