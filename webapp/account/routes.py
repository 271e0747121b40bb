"""Views of the account blueprint."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from webapp.account.forms import (
    ActionForm,
    ChangePasswordForm,
    DeleteAccountForm,
    RenameDeviceForm,
)
from webapp.account.passkeys import register_passkey_views
from webapp.account.reauth import confirm_password_step
from webapp.accounts.audit import record
from webapp.accounts.credentials import confirm_password, set_password
from webapp.accounts.device_list import device_rows, own_device
from webapp.accounts.notices import mail_notice
from webapp.accounts.users import delete_account, is_last_active_admin
from webapp.extensions import db
from webapp.models import RevokeReason
from webapp.security import devices
from webapp.security.client import client_ip, user_agent
from webapp.security.login import (
    fresh_login_required,
    rekey_this_device,
    set_reauthentication_handler,
    sign_out,
)

bp = Blueprint("account", __name__, url_prefix="/account")
register_passkey_views(bp)


@bp.record_once
def _register_reauthentication(state) -> None:
    """Every blueprint's fresh-only actions ask for the password on our page."""
    set_reauthentication_handler(state.app, confirm_password_step)


@bp.before_request
@login_required
def require_login() -> None:
    """Every page here is for a signed-in user."""


@bp.get("")
def overview():
    """Show the account's details."""
    return render_template("account/overview.html")


@bp.get("/devices")
def device_list():
    """List every browser signed in to this account."""
    rows = device_rows(current_user, current_user.current_device.id)
    others = any(not row.current and not row.stolen for row in rows)
    return render_template("account/devices.html", rows=rows, others=others)


@bp.post("/devices/<int:device_id>/revoke")
@fresh_login_required
def revoke(device_id: int):
    """Sign one of the user's browsers out; revoking this one is a logout."""
    if not ActionForm().validate_on_submit():
        abort(400)
    device = own_device(current_user, device_id)
    if device is None:
        abort(404)
    if device.id == current_user.current_device.id:
        record("logout")
        sign_out()
        db.session.commit()
        flash("You are logged out.", "info")
        return redirect(url_for("auth.login"))
    if device.is_revoked:
        # A stolen-token notice: revoking it again just dismisses it.
        device.notice_dismissed = True
    else:
        devices.revoke_device(device, RevokeReason.USER)
        record("device_revoked", target_user=current_user, details={"device": device.id})
    db.session.commit()
    flash("That device is signed out.", "success")
    return redirect(url_for(".device_list"))


@bp.post("/devices/revoke-others")
@fresh_login_required
def revoke_others():
    """Sign out every browser of this account but this one."""
    if not ActionForm().validate_on_submit():
        abort(400)
    count = devices.revoke_user_devices(
        current_user.id, RevokeReason.USER, keep_id=current_user.current_device.id
    )
    rekey_this_device()
    record("device_revoked", target_user=current_user, details={"others": count})
    db.session.commit()
    flash(f"Signed out {count} other device{'s' if count != 1 else ''}.", "success")
    return redirect(url_for(".device_list"))


@bp.post("/devices/<int:device_id>/rename")
def rename(device_id: int):
    """Give one of the user's devices a name of their own."""
    form = RenameDeviceForm()
    device = own_device(current_user, device_id)
    if device is None:
        abort(404)
    if form.validate_on_submit():
        device.name = (form.name.data or "").strip() or None
        db.session.commit()
        flash("Device renamed.", "success")
    else:
        for message in form.name.errors:
            flash(message, "error")
    return redirect(url_for(".device_list"))


@bp.post("/devices/<int:device_id>/dismiss")
def dismiss(device_id: int):
    """Hide the notice about a device whose token was stolen."""
    if not ActionForm().validate_on_submit():
        abort(400)
    device = own_device(current_user, device_id)
    if device is None:
        abort(404)
    device.notice_dismissed = True
    db.session.commit()
    return redirect(url_for(".device_list"))


@bp.route("/password", methods=["GET", "POST"])
@fresh_login_required
def change_password():
    """Change the password; every other device is signed out."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not confirm_password(current_user, form.current_password.data):
            form.current_password.errors.append("That is not your current password.")
        else:
            set_password(current_user, form.new_password.data)
            devices.revoke_user_devices(
                current_user.id, RevokeReason.PASSWORD, keep_id=current_user.current_device.id
            )
            rekey_this_device()
            record("password_changed", target_user=current_user)
            db.session.commit()
            mail_notice("password_changed", current_user, user_agent(), client_ip())
            flash("Your password is changed. Every other device is signed out.", "success")
            return redirect(url_for(".overview"))
    return render_template("account/password.html", form=form)


@bp.route("/delete", methods=["GET", "POST"])
@fresh_login_required
def delete():
    """Delete the account and everything signed in to it."""
    form = DeleteAccountForm()
    if form.validate_on_submit():
        if not confirm_password(current_user, form.password.data):
            form.password.errors.append("That password is not right.")
        elif is_last_active_admin(current_user):
            form.form_errors.append(
                "You are the last active admin: make another user an admin "
                "before deleting your account."
            )
        else:
            user = current_user._get_current_object()
            record("account_deleted", target_user=user)
            sign_out()
            delete_account(user)
            db.session.commit()
            flash("Your account is deleted.", "info")
            return redirect(url_for("auth.index"))
    return render_template("account/delete.html", form=form)
