"""Views of the links mailed to an address, registered on the auth blueprint.

`/verify-email/<token>` confirms an address, or switches the account to a
new one; `/account/email/cancel/<token>` undoes a change from the old
address. Both are for anyone holding the link: a GET only shows a button
(mail scanners open links), the POST acts once and signs nobody in.
`POST /verify-email` sends a confirmation link again.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.auth.routes import NO_REFERRER_ENDPOINTS, bp, unconfirmed_user
from webapp.domain.addresses import (
    AddressTaken,
    PendingLink,
    cancel_change,
    confirm,
    peek_cancel,
    peek_confirmation,
    send_confirmation,
)
from webapp.extensions import db, limiter
from webapp.i18n import _, _l
from webapp.models import RevokeReason
from webapp.security.login import sign_out

CONFIRMED = _l("Your email address is confirmed.")


NO_REFERRER_ENDPOINTS.update({"auth.verify_email", "auth.cancel_email_change"})


def _invalid_link():
    return render_template("auth/email_link_invalid.html"), 400


@bp.route("/verify-email/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    """Show the button that confirms an address; pressing it confirms, once."""
    if request.method == "GET":
        pending = peek_confirmation(token)
        if pending is None:
            return _invalid_link()
        return render_template("auth/verify_email.html", pending=pending, token=token)
    # Straight to the conditional UPDATE: a click that loses the race reads nothing first.
    try:
        user = confirm(token)
    except AddressTaken as exc:
        db.session.rollback()
        error = _(
            "Another account uses this address now, so yours cannot switch to it. "
            "Your email address stays as it was."
        )
        pending = PendingLink(email=exc.email, is_change=True)
        return render_template("auth/verify_email.html", pending=pending, token=token, error=error)
    if user is None:
        db.session.rollback()
        return _invalid_link()
    db.session.commit()
    flash(str(CONFIRMED), "success")
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    return redirect(url_for(".login"))


def _send_limit() -> str:
    return current_app.config["RATELIMIT_RESET"]


@bp.route("/verify-email", endpoint="send_confirmation", methods=["POST"])
@limiter.limit(_send_limit)
def send_confirmation_view():
    """Mail a confirmation link to the signed-in user, or to the one just refused at login."""
    signed_in = current_user.is_authenticated
    user = current_user._get_current_object() if signed_in else unconfirmed_user()
    back = url_for("account.overview") if signed_in else url_for(".login")
    if user is None:
        flash(_("Log in again to send a confirmation email."), "info")
    elif user.email_confirmed:
        flash(_("Your email address is already confirmed."), "info")
    elif send_confirmation(user):
        db.session.commit()
        if signed_in:
            sent = _(
                "We sent a confirmation link to %(email)s. It works for 48 hours.", email=user.email
            )
        else:
            sent = _(
                "We sent a confirmation link to %(email)s. It works for 48 hours. "
                "Follow it, then log in.",
                email=user.email,
            )
        flash(sent, "success")
    else:
        flash(
            _(
                "We sent you a confirmation link less than 2 minutes ago. Check your inbox "
                "(and spam folder), or try again in a moment."
            ),
            "error",
        )
    return redirect(back)


@bp.route("/account/email/cancel/<token>", methods=["GET", "POST"])
def cancel_email_change(token: str):
    """Undo an email change from the old address: restore it and sign out everywhere."""
    if request.method == "GET":
        email = peek_cancel(token)
        if email is None:
            return _invalid_link()
        return render_template("auth/cancel_email_change.html", email=email, token=token)
    outcome = cancel_change(token)
    if outcome is None:
        db.session.rollback()
        return _invalid_link()
    if current_user.is_authenticated and current_user.id == outcome.user.id:
        sign_out(RevokeReason.EMAIL_CANCELLED)
    db.session.commit()
    if outcome.restore_failed:
        flash(
            _(
                "The change is cancelled and every device is signed out, but your old address "
                "%(email)s could not be restored: another account uses it now. "
                "Reset your password with the address your account has.",
                email=outcome.email,
            ),
            "error",
        )
    else:
        flash(
            _(
                "The change is cancelled: your account's email address is %(email)s, and "
                "every device signed in to it is signed out. Whoever asked for the change may "
                "know your password: choose a new one now.",
                email=outcome.email,
            ),
            "success",
        )
    return redirect(url_for(".request_reset"))
