"""The "This wasn't me" link of the new-sign-in mail (the auth blueprint).

Anyone holding the link may use it, signed in or not (the owner reads
the mail wherever they are): GET shows the sign-in and a button, and
changes nothing (mail scanners open links); POST signs that device out,
once, and leads to choosing a new password.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.auth.forms import NotMeForm
from webapp.auth.routes import NO_REFERRER_ENDPOINTS, bp
from webapp.domain.new_browser import alerted_sign_in, sign_out_alerted_device
from webapp.extensions import db
from webapp.i18n import _

# The link's token stays out of the Referer header of anything the page links to.
NO_REFERRER_ENDPOINTS.add("auth.not_me")


@bp.route("/not-me/<token>", methods=["GET", "POST"])
def not_me(token: str):
    """Sign out the device of a sign-in the owner does not recognise."""
    found = alerted_sign_in(token)
    if found is None:
        return render_template("auth/not_me_invalid.html"), 400
    form = NotMeForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        if not sign_out_alerted_device(found):
            db.session.rollback()
            return render_template("auth/not_me_invalid.html"), 400
        owner = found.event.user_id
        db.session.commit()
        flash(_("That device is signed out. Now choose a new password."), "success")
        if current_user.is_authenticated and current_user.id == owner:
            return redirect(url_for("account.change_password"))
        return redirect(url_for("auth.request_reset"))
    return render_template("auth/not_me.html", form=form, found=found, token=token)
