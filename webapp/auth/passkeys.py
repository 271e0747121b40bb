"""Views of "Log in with a passkey", registered on the auth blueprint.

The login page's passkey form asks for options with a POST when it is
clicked (a challenge is written then, not on every view of the login
page), lets the browser find a discoverable passkey with user
verification, and posts the answer as an ordinary form with its CSRF
token. A passkey is both factors: it signs in at once, honouring
"Remember this device" as the password form does.
"""

from __future__ import annotations

from flask import (
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user

from webapp.auth.forms import LoginForm, PasskeyLoginForm
from webapp.auth.routes import admit, bp
from webapp.domain.passkeys import MESSAGES, PasskeyRefused, login_options, passkey_login
from webapp.extensions import db, limiter
from webapp.forms_common import Form


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.route("/login/passkey/options", methods=["POST"])
@limiter.limit(_login_limit)
def passkey_login_options():
    """Answer the browser with options for a discoverable-passkey sign-in."""
    if current_user.is_authenticated or not Form().validate_on_submit():
        abort(400)
    options = login_options()
    db.session.commit()
    return Response(options, mimetype="application/json")


@bp.route("/login/passkey", endpoint="passkey_login", methods=["POST"])
@limiter.limit(_login_limit)
def passkey_login_view():
    """Sign in with the passkey the browser returned: both factors at once."""
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    form = PasskeyLoginForm()
    if not form.validate_on_submit():
        abort(400)
    remember = form.remember.data == "y"
    try:
        passkey = passkey_login(form.credential.data or "")
    except PasskeyRefused as exc:
        db.session.commit()  # the challenge is used up, the failure audited
        return _refused(remember, form.next.data, exc.message)
    # A passkey with user verification is both factors at once; every other
    # rule of a sign-in applies as to a password.
    admitted = admit(
        passkey.user,
        remember=remember,
        next_url=form.next.data,
        method="passkey",
        second_factor=True,
        passkey_id=passkey.id,
    )
    if admitted is None:
        db.session.commit()
        return _refused(remember, form.next.data, MESSAGES["inactive"])
    return admitted


def _refused(remember: bool, next_url: str | None, message: str):
    login_form = LoginForm(formdata=None, remember=remember, next=next_url or "")
    login_form.form_errors.append(message)
    return render_template("auth/login.html", form=login_form), 400
