"""Views of the auth blueprint: signup, login, logout."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.accounts.audit import record, record_alone
from webapp.accounts.credentials import authenticate
from webapp.accounts.users import DuplicateAccount, create_user, find_user
from webapp.auth.forms import LoginForm, SignupForm
from webapp.extensions import db, limiter
from webapp.logs import safe
from webapp.security.login import sign_in, sign_out
from webapp.security.redirects import safe_next
from webapp.security.throttle import Throttled

bp = Blueprint("auth", __name__)
logger = logging.getLogger("webapp.auth")

LOGIN_FAILED = "Invalid username/email or password."


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _signup_limit() -> str:
    return current_app.config["RATELIMIT_SIGNUP"]


@bp.app_errorhandler(Throttled)
def throttled(exc: Throttled):
    """Answer a password check refused by the per-account backoff, on any page."""
    body = render_template("auth/throttled.html", message=exc.message)
    return body, 429, {"Retry-After": str(exc.retry_after)}


@bp.get("/")
def index():
    """Show the landing page, or the account to someone signed in."""
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    return render_template("auth/index.html")


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"])
def signup():
    """Create an account and sign it in."""
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = create_user(form.username.canonical, form.email.canonical, form.password.data)
        except DuplicateAccount as exc:
            db.session.rollback()
            if exc.field == "username":
                form.username.errors.append("That username is taken.")
            else:
                form.email.errors.append("An account with this email already exists.")
        else:
            record("signup", actor=user, target_user=user)
            sign_in(user, remember=False)
            db.session.commit()
            flash("Welcome! Your account is ready.", "success")
            return redirect(url_for("account.overview"))
    return render_template("auth/signup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    """Sign in with a username or email and a password."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("account.overview"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        try:
            user = authenticate(form.identifier.data, form.password.data)
        except Throttled as exc:
            logger.warning("login throttled for %s", safe(form.identifier.data[:100]))
            form.form_errors.append(exc.message)
            page = render_template("auth/login.html", form=form)
            return page, 429, {"Retry-After": str(exc.retry_after)}
        if user is None:
            # On the activity page of the account the identifier names, if any.
            record_alone(
                "login_failed",
                subject=find_user(form.identifier.data),
                details={"identifier": form.identifier.data[:100]},
            )
            form.form_errors.append(LOGIN_FAILED)
        else:
            sign_in(user, remember=form.remember.data)
            record(
                "login",
                actor=user,
                target_user=user,
                details={"remember": form.remember.data, "method": "password"},
            )
            db.session.commit()
            return redirect(safe_next(form.next.data) or url_for("account.overview"))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    """End this browser's session and revoke its device."""
    if current_user.is_authenticated:
        record("logout")
        sign_out()
        db.session.commit()
        flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
