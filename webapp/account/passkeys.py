"""Passkeys on the security page: add, list, rename, remove; "Use a passkey" to confirm.

On the account blueprint (its `@bp.route`s), so every
view here is for a signed-in user. The page part lives in
`templates/account/_passkeys.html`, which asks `passkey_panel()` for what
it shows; any view rendering it needs nothing else.

The browser asks for its ceremony options with a POST carrying the page's
CSRF token (`static/js/passkeys.js`): each one writes a single-use
challenge, so that happens when the person clicks, not on every page view,
and whichever view renders the page needs no commit of its own.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, url_for
from flask_login import current_user

from webapp.account.forms import (
    ActionForm,
    AddPasskeyForm,
    RenamePasskeyForm,
)
from webapp.account.routes import bp
from webapp.account.security_page import render_security_page
from webapp.domain.notices import mail_notice
from webapp.domain.passkeys import (
    PasskeyRefused,
    add_passkey,
    confirm_options,
    own_passkey,
    passkey_rows,
    registration_options,
    remove_passkey,
    rename_passkey,
)
from webapp.domain.two_factor import (
    TwoFactorError,
    refuse_removing_the_last_second_factor,
    second_factor_added,
    second_factor_removed,
)
from webapp.extensions import db
from webapp.i18n import _, ngettext
from webapp.security.client import client_ip, user_agent
from webapp.security.login import fresh_login_required, rekey_this_device


@bp.app_template_global("passkey_panel")
def passkey_panel(form: AddPasskeyForm | None = None) -> dict:
    """Return what `_passkeys.html` shows for the signed-in user (read only)."""
    return {
        "form": form or AddPasskeyForm(formdata=None),
        "rows": passkey_rows(current_user),
    }


@bp.route("/security/passkeys/options", methods=["POST"])
def passkey_options():
    """Answer the browser with options for adding a passkey (a fresh challenge)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    options = registration_options(current_user)
    db.session.commit()
    return jsonify_options(options)


@bp.route("/confirm/passkey-options", methods=["POST"])
def confirm_passkey_options():
    """Answer the browser with options for confirming it is this user with a passkey."""
    if not ActionForm().validate_on_submit():
        abort(400)
    options = confirm_options(current_user)
    db.session.commit()
    return jsonify_options(options)


def jsonify_options(options: str) -> Response:
    """Answer with the options JSON as the library wrote it."""
    return Response(options, mimetype="application/json")


@bp.route("/security/passkeys", endpoint="add_passkey", methods=["POST"])
@fresh_login_required
def add_passkey_view():
    """Store the passkey the browser just made, under the name given."""
    form = AddPasskeyForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            passkey = add_passkey(user, form.credential.data or "", form.name.data or "")
        except PasskeyRefused as exc:
            db.session.commit()  # the challenge is used up, the refusal audited
            form.form_errors.append(exc.message)
        else:
            # Like turning the app on: this browser has just passed a second factor,
            # which a copied session or remember cookie of it must not inherit.
            second_factor_added(user, current_user.current_device)
            rekey_this_device()
            mail_notice("passkey_added", user, user_agent(), client_ip(), passkey=passkey.name)
            db.session.commit()
            flash(_("Passkey “%(name)s” added.", name=passkey.name), "success")
            return redirect(url_for(".security"))
    return render_security_page(passkey_form=form), 400


@bp.route("/security/passkeys/<int:passkey_id>/rename", endpoint="rename_passkey", methods=["POST"])
def rename_passkey_view(passkey_id: int):
    """Give one of the user's passkeys another name."""
    form = RenamePasskeyForm()
    passkey = own_passkey(current_user, passkey_id)
    if passkey is None:
        abort(404)
    if form.validate_on_submit():
        rename_passkey(passkey, form.name.data or "")
        db.session.commit()
        flash(_("Passkey renamed."), "success")
    else:
        for message in form.name.errors or [_("The form expired. Try again.")]:
            flash(message, "error")
    return redirect(url_for(".security"))


@bp.route("/security/passkeys/<int:passkey_id>/remove", endpoint="remove_passkey", methods=["POST"])
@fresh_login_required
def remove_passkey_view(passkey_id: int):
    """Remove one of the user's passkeys; the owner is mailed."""
    if not ActionForm().validate_on_submit():
        abort(400)
    passkey = own_passkey(current_user, passkey_id)
    if passkey is None:
        abort(404)
    user = current_user._get_current_object()
    name = passkey.name
    try:
        refuse_removing_the_last_second_factor(user, "passkey")
    except TwoFactorError as exc:
        flash(str(exc), "error")
        return redirect(url_for(".security"))
    device = current_user.current_device
    signed_out = remove_passkey(user, passkey, keep_device_id=device.id)
    if device.passkey_id == passkey_id:
        # This browser stays (it just proved who it is); a copy of it does not.
        rekey_this_device()
    second_factor_removed(user)
    mail_notice("passkey_removed", user, user_agent(), client_ip(), passkey=name)
    db.session.commit()
    if signed_out:
        message = ngettext(
            "Passkey “%(name)s” removed; %(num)d device that signed in with it is signed out.",
            "Passkey “%(name)s” removed; %(num)d devices that signed in with it are signed out.",
            signed_out,
            name=name,
        )
    else:
        message = _("Passkey “%(name)s” removed.", name=name)
    flash(message, "success")
    return redirect(url_for(".security"))
