"""Views of the password reset by mail, registered on the auth blueprint.

Asking for a link answers with the same page whatever the email (the
mail, if any, is sent in the background). The link's token is checked on
every request; a valid one lets the user choose a new password, which
signs out every device and does not sign anyone in.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from webapp.auth.forms import ResetPasswordForm, ResetRequestForm
from webapp.auth.routes import NO_REFERRER_ENDPOINTS, bp, limit_posts
from webapp.domain.addresses import mark_confirmed
from webapp.domain.audit import record
from webapp.domain.credentials import request_password_reset, reset_password
from webapp.domain.notices import mail_notice
from webapp.extensions import db
from webapp.i18n import _
from webapp.models import RevokeReason
from webapp.security.client import client_ip, user_agent
from webapp.security.login import sign_out
from webapp.security.reset_tokens import check_token

NO_REFERRER_ENDPOINTS.update({"auth.request_reset", "auth.reset_password"})


def _reset_limit() -> str:
    return current_app.config["RATELIMIT_RESET"]


@bp.route("/reset-password", methods=["GET", "POST"])
@limit_posts(_reset_limit)
def request_reset():
    """Ask for a reset link by mail; the answer never tells whether the email has an account."""
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    form = ResetRequestForm()
    if form.validate_on_submit():
        request_password_reset(form.email.data, client_ip())
        # Shown directly rather than after a redirect: the page is the same for
        # every address, and there is nothing to submit twice by reloading.
        return render_template(
            "auth/reset_sent.html", minutes=current_app.config["RESET_TOKEN_MAX_AGE"] // 60
        )
    return render_template("auth/reset_request.html", form=form)


@bp.route("/reset-password/<token>", endpoint="reset_password", methods=["GET", "POST"])
def reset_password_view(token: str):
    """Choose a new password with a link from the mail; it also confirms the address."""
    link = check_token(token)
    if link is None:
        return _invalid_link()
    user = link.user
    form = ResetPasswordForm(account=user)
    if form.validate_on_submit():
        if not reset_password(user, form.new_password.data):
            db.session.rollback()
            return _invalid_link()
        record("password_reset", actor=user, target_user=user)
        if link.address_bound:
            mark_confirmed(user, via="reset")
        if current_user.is_authenticated:
            sign_out(RevokeReason.RESET)
        mail_notice("password_changed", user, user_agent(), client_ip())
        db.session.commit()
        flash(_("Your password is set. Log in with your new password."), "success")
        return redirect(url_for(".login"))
    return render_template("auth/reset_password.html", form=form, token=token)


def _invalid_link():
    minutes = current_app.config["RESET_TOKEN_MAX_AGE"] // 60
    return render_template("auth/reset_invalid.html", minutes=minutes), 400
