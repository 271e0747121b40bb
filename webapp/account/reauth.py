"""The "Confirm your password" step before a sensitive action.

The mechanism (`webapp.security.login.fresh_login_required`) decides that
a session is not fresh; this page asks for the password. It posts back to
the same URL and carries the original form fields (never passwords), so
the action carries on once the password is confirmed. A user with a
passkey may instead "Use a passkey": the same page, the same carrying on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import redirect, render_template, request
from flask_login import current_user

from webapp.account.forms import ConfirmPasswordForm, ConfirmWithPasskeyForm
from webapp.domain.credentials import confirm_password
from webapp.domain.passkeys import PasskeyRefused, confirm_with_passkey, has_passkey
from webapp.extensions import db
from webapp.i18n import _
from webapp.security.login import mark_fresh

# Never carried to the next step: the CSRF token, the step's own fields.
NOT_CARRIED = {"csrf_token", "reauth_for", "reauth_passkey", "use_passkey"}


def confirm_password_step(carry_on: Callable[[], Any]) -> Any:
    """Show the password prompt, or carry on with the action once it is confirmed."""
    form = ConfirmPasswordForm()
    passkey_form = ConfirmWithPasskeyForm()
    passkey_error = None
    if request.method == "POST" and "reauth_passkey" in request.form:
        if passkey_form.validate_on_submit():
            try:
                confirm_with_passkey(
                    current_user._get_current_object(), passkey_form.reauth_passkey.data or ""
                )
            except PasskeyRefused as exc:
                passkey_error = exc.message
            else:
                mark_fresh()
                db.session.commit()  # the challenge is used up, the passkey's count moved
                if request.form.get("reauth_for") == "POST":
                    return carry_on()
                return redirect(request.path)
            db.session.commit()  # the challenge is used up, the refusal audited
        else:
            passkey_error = _("The form expired. Try again.")
        reauth_for = request.form.get("reauth_for", "GET")
    elif request.method == "POST" and "reauth_password" in request.form:
        if form.validate_on_submit() and confirm_password(
            current_user, form.reauth_password.data or ""
        ):
            mark_fresh()
            if request.form.get("reauth_for") == "POST":
                return carry_on()
            return redirect(request.path)
        if not form.errors:
            form.reauth_password.errors = [_("That password is not right.")]
        reauth_for = request.form.get("reauth_for", "GET")
    else:
        reauth_for = request.method
    carried = [
        (key, value)
        for key, value in request.form.items(multi=True)
        if key not in NOT_CARRIED and "password" not in key
    ]
    return render_template(
        "account/confirm_password.html",
        form=form,
        carried=carried,
        reauth_for=reauth_for,
        passkey=has_passkey(current_user),
        passkey_error=passkey_error,
    )
