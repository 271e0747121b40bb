"""Views of the account blueprint."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from webapp.account.forms import (
    ActionForm,
    ChangeEmailForm,
    ChangePasswordForm,
    DeleteAccountForm,
    NewBrowserAlertsForm,
    RenameDeviceForm,
    TotpSetupForm,
)
from webapp.account.reauth import confirm_password_step
from webapp.account.security_page import render_security_page
from webapp.domain import credentials
from webapp.domain.activity import activity_page
from webapp.domain.addresses import CHANGE_LIFETIME, ChangeRefused, request_change
from webapp.domain.audit import record
from webapp.domain.credentials import confirm_password
from webapp.domain.device_list import device_rows, own_device
from webapp.domain.new_browser import set_alerts
from webapp.domain.notices import mail_notice
from webapp.domain.recovery import sign_out_others
from webapp.domain.two_factor import (
    ROLE_REQUIRES,
    TwoFactorError,
    needs_setup,
    new_recovery_codes,
    security_overview,
    turn_off_totp,
    turn_on_totp,
)
from webapp.domain.users import delete_account, is_last_active_admin
from webapp.extensions import db, limiter
from webapp.models import RevokeReason
from webapp.security import devices
from webapp.security import two_factor as mfa
from webapp.security.client import client_ip, user_agent
from webapp.security.login import (
    fresh_login_required,
    rekey_this_device,
    set_reauthentication_handler,
    sign_out,
)
from webapp.security.speedups.sessions import cookieless

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.record_once
def _register_reauthentication(state) -> None:
    """Every blueprint's fresh-only actions ask for the password on our page."""
    set_reauthentication_handler(state.app, confirm_password_step)


@bp.before_request
@login_required
def require_login() -> None:
    """Every page here is for a signed-in user."""


# What a user whose role requires two-factor, and who has none yet, may reach.
# The "Confirm your password" step is shown at the URL of the action it guards.
SETUP_ENDPOINTS = frozenset(
    {
        "account.security",
        "account.totp_setup",
        "account.recovery_codes",
        "account.passkey_options",
        "account.add_passkey",
        "auth.logout",
        "static",
        "health.healthz",
    }
)


@bp.before_app_request
def require_two_factor_setup():
    """Send a user whose role requires two-factor, and who has none, to set it up.

    Reads only what the request's one query loaded (device, user, role).
    """
    if request.endpoint in SETUP_ENDPOINTS or cookieless(request.path):
        # The token API holds the same rule through the token's `amr` (webapp/api).
        return None
    user = current_user._get_current_object()  # one lookup through the proxy, not three
    if not user.is_authenticated:
        return None
    if needs_setup(user):
        flash(ROLE_REQUIRES, "error")
        return redirect(url_for("account.security"))
    return None


@bp.get("")
def overview():
    """Show the account's details, and whether its address is confirmed."""
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
    count = sign_out_others(current_user, current_user.current_device)
    rekey_this_device()
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
            credentials.change_password(
                current_user, form.new_password.data, keep_device_id=current_user.current_device.id
            )
            rekey_this_device()
            record("password_changed", target_user=current_user)
            mail_notice("password_changed", current_user, user_agent(), client_ip())
            db.session.commit()
            flash("Your password is changed. Every other device is signed out.", "success")
            return redirect(url_for(".overview"))
    return render_template("account/password.html", form=form)


def _email_change_limit() -> str:
    return current_app.config["RATELIMIT_EMAIL_CHANGE"]


@bp.route("/email", methods=["GET", "POST"])
@limiter.limit(_email_change_limit, methods=["POST"])
@fresh_login_required
def change_email():
    """Ask to move the account to a new address; it moves when the link mailed there is followed."""
    form = ChangeEmailForm()
    if form.validate_on_submit():
        new_email = form.new_email.canonical
        try:
            request_change(current_user, new_email, user_agent(), client_ip())
        except ChangeRefused as exc:
            db.session.rollback()
            form.new_email.errors.append(str(exc))
        else:
            db.session.commit()
            hours = int(CHANGE_LIFETIME.total_seconds() // 3600)
            flash(
                f"We sent a link to {new_email}. Your address changes when you follow it, "
                f"within {hours} hours. We told your current address too.",
                "success",
            )
            return redirect(url_for(".overview"))
    return render_template("account/email.html", form=form)


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


@bp.get("/activity")
def activity():
    """List what happened to this account, newest first, 50 a page."""
    page = activity_page(
        current_user,
        current_user.current_device.id,
        after=request.args.get("after"),
        before=request.args.get("before"),
    )
    return render_template("account/activity.html", page=page)


# --- two-factor authentication ----------------------------------------------------


@bp.get("/security")
def security():
    """Show the sign-in methods, and the new-browser mail setting."""
    return render_security_page()


@bp.route("/security/totp", methods=["GET", "POST"])
@fresh_login_required
def totp_setup():
    """Set up an authenticator app: scan or type the secret, prove it with a code."""
    if security_overview(current_user).totp_on:
        flash("The authenticator app is already on.", "info")
        return redirect(url_for(".security"))
    secret = mfa.setup_secret(current_user.id)
    form = TotpSetupForm()
    if form.validate_on_submit():
        try:
            codes = turn_on_totp(
                current_user,
                current_user.current_device,
                secret,
                form.code.data,
                sign_out_others=form.sign_out_others.data,
            )
        except TwoFactorError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".security"))
        if codes is None:
            db.session.commit()  # the failed attempt's audit row
            form.code.errors.append(
                "That code is not right. Check that your phone's clock is right "
                "and type the newest code."
            )
        else:
            # A copied session sharing this device must not inherit its second factor.
            rekey_this_device()
            mfa.forget_setup_secret()
            mfa.keep_codes_to_show(current_user.id, codes)
            mail_notice("totp_enabled", current_user, user_agent(), client_ip())
            db.session.commit()
            flash("The authenticator app is on.", "success")
            return redirect(url_for(".recovery_codes"))
    uri = mfa.provisioning_uri(secret, current_user.username)
    return render_template(
        "account/totp.html",
        form=form,
        qr=mfa.qr_svg(uri, "QR code of the setup key, for your authenticator app"),
        setup_key=mfa.formatted_secret(secret),
    )


@bp.post("/security/totp/disable")
@fresh_login_required
def totp_disable():
    """Turn the authenticator app off, unless the role needs it."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        turn_off_totp(current_user)
    except TwoFactorError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".security"))
    mail_notice("totp_disabled", current_user, user_agent(), client_ip())
    db.session.commit()
    flash("The authenticator app is off.", "success")
    return redirect(url_for(".security"))


@bp.route("/security/recovery-codes", methods=["GET", "POST"])
@fresh_login_required
def recovery_codes():
    """Generate new recovery codes (POST), and show new codes once (GET)."""
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        try:
            codes = new_recovery_codes(current_user)
        except TwoFactorError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".security"))
        mfa.keep_codes_to_show(current_user.id, codes)
        db.session.commit()
        return redirect(url_for(".recovery_codes"))
    codes = mfa.take_codes_to_show(current_user.id)
    if codes is None:
        flash(
            "Recovery codes are shown only once. If you lost yours, generate new ones.",
            "info",
        )
        return redirect(url_for(".security"))
    return render_template("account/recovery_codes.html", codes=codes)


@bp.post("/security/new-browser-alerts")
@fresh_login_required
def new_browser_alerts():
    """Turn the "New sign-in" mails on or off."""
    form = NewBrowserAlertsForm()
    if not form.validate_on_submit():
        abort(400)
    enabled = bool(form.new_browser_alerts.data)
    if set_alerts(current_user, enabled):
        mail_notice("new_browser_alerts", current_user, user_agent(), client_ip(), enabled=enabled)
        db.session.commit()
    if form.new_browser_alerts.data:
        flash("We will email you when a new browser signs in.", "success")
    else:
        flash("We will not email you when a new browser signs in.", "success")
    return redirect(url_for(".security"))
