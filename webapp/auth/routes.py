"""Views of the auth blueprint: signup, login, logout."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from webapp.auth.forms import LoginForm, PasskeyVerifyForm, SignupForm, VerifyForm
from webapp.domain.addresses import (
    send_confirmation,
    sign_up_quietly,
    verification_mandatory,
)
from webapp.domain.audit import record, record_alone
from webapp.domain.credentials import Admission, admission, authenticate
from webapp.domain.notices import mail_notice
from webapp.domain.passkeys import (
    PasskeyRefused,
    has_passkey,
    second_factor_options,
    verify_passkey_for,
)
from webapp.domain.two_factor import verify_second_factor
from webapp.domain.users import DuplicateAccount, create_user, find_user, username_taken
from webapp.extensions import db, limiter
from webapp.forms_common import Form
from webapp.i18n import LANGUAGE_COOKIE_DAYS, _, _l, language, languages
from webapp.logs import quoted
from webapp.models import User
from webapp.security import two_factor as mfa
from webapp.security.client import client_ip, user_agent
from webapp.security.login import sign_in, sign_out
from webapp.security.redirects import safe_next
from webapp.security.throttle import LOGIN_SCOPE, SECOND_STEP_SCOPE, SIGNUP_SCOPE, Throttled

bp = Blueprint("auth", __name__)
logger = logging.getLogger("webapp.auth")

LOGIN_FAILED = _l("Invalid username/email or password.")
# After a correct password for an unconfirmed address (mandatory mode), the
# session remembers the account for this long, so its page can send a link.
UNCONFIRMED_KEY = "unconfirmed_user"
UNCONFIRMED_SECONDS = 15 * 60

# Pages whose URL carries a secret token (reset and email links), filled in
# as their views are registered: the token stays out of the Referer header.
NO_REFERRER_ENDPOINTS: set[str] = set()


@bp.after_request
def no_referrer(response):
    """Keep a link's token out of the Referer header of anything its page links to."""
    if request.endpoint in NO_REFERRER_ENDPOINTS:
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


WRONG_CODE = _l("That code is not right.")
METHOD_PASSKEY_SECOND = "password+passkey"
STEP_EXPIRED = _l("Your sign-in took too long. Log in again.")
TOO_MANY_CODES = _l("Too many wrong codes. Log in again.")


def limit_posts(limit: Callable[[], str], scope: str | None = None) -> Callable:
    """Flask-Limiter's per-IP limit on a view's POSTs, kept out of the way of its GETs.

    `limiter.limit(..., methods=["POST"])` alone identifies the request and
    sorts through the app's limits on every call, a GET of the login page
    included, only to drop them for the method; here a GET goes straight
    to the view. A `scope` shares the counters with the token API's
    endpoints of that scope (security/throttle.py).
    """

    def decorate(view: Callable) -> Callable:
        if scope is None:
            limited = limiter.limit(limit, methods=["POST"])(view)
        else:
            limited = limiter.shared_limit(limit, scope, methods=["POST"])(view)

        @functools.wraps(view)
        def dispatch(*args, **kwargs):
            if request.method == "POST":
                return limited(*args, **kwargs)
            return view(*args, **kwargs)

        return dispatch

    return decorate


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
@limit_posts(_signup_limit, SIGNUP_SCOPE)
def signup():
    """Create an account, mail its address a confirmation link and sign it in.

    With EMAIL_VERIFICATION=mandatory nobody is signed in, and the answer is
    "Check your email" whether or not the address has an account (its
    owner is told someone tried). Usernames are public: a taken one is
    still a form error.
    """
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    form = SignupForm()
    if form.validate_on_submit():
        if verification_mandatory():
            if not username_taken(form.username.canonical):
                sign_up_quietly(
                    form.username.canonical,
                    form.email.canonical,
                    form.password.data,
                    client_ip(),
                    language=language(),
                    time_zone=form.reported_zone(),
                )
                return render_template("auth/signup_sent.html")
            form.username.errors.append(_("That username is taken."))
        else:
            try:
                user = create_user(
                    form.username.canonical,
                    form.email.canonical,
                    form.password.data,
                    language=language(),
                    time_zone=form.reported_zone(),
                )
            except DuplicateAccount as exc:
                db.session.rollback()
                if exc.field == "username":
                    form.username.errors.append(_("That username is taken."))
                else:
                    form.email.errors.append(_("An account with this email already exists."))
            else:
                record("signup", actor=user, target_user=user)
                send_confirmation(user, signup=True)
                sign_in(user, remember=False)
                db.session.commit()
                flash(
                    _(
                        "Welcome! Your account is ready. "
                        "We sent you a link to confirm your email address."
                    ),
                    "success",
                )
                return redirect(url_for("account.overview"))
    return render_template("auth/signup.html", form=form)


@bp.route("/language/<code>")
def choose_language(code: str):
    """Remember a visitor's language in a cookie (the footer's links), and go back."""
    if code not in languages():
        abort(404)
    back = redirect(safe_next(request.args.get("next")) or url_for("auth.index"))
    back.set_cookie(
        current_app.config["LANGUAGE_COOKIE_NAME"],
        code,
        max_age=LANGUAGE_COOKIE_DAYS * 86400,
        secure=current_app.config["COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return back


@bp.route("/login", methods=["GET", "POST"])
@limit_posts(_login_limit, LOGIN_SCOPE)
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
            logger.warning("login throttled identifier=%s", quoted(form.identifier.data[:100]))
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
            admitted = admit(
                user,
                remember=form.remember.data,
                next_url=form.next.data,
                method=mfa.METHOD_PASSWORD,
            )
            if admitted is not None:
                return admitted
            form.form_errors.append(LOGIN_FAILED)
    return render_template("auth/login.html", form=form)


def admit(
    user: User,
    *,
    remember: bool,
    next_url: str | None,
    method: str,
    second_factor: bool = False,
    passkey_id: int | None = None,
) -> Response | None:
    """Sign in a person who proved who they are, or show what must come first.

    Password and passkey sign-ins both end here, so both follow every rule
    of `admission`. None: refused (the caller shows its failure).
    """
    outcome = admission(user, second_factor_passed=second_factor)
    if outcome is Admission.REFUSED:
        return None
    if outcome is Admission.CONFIRM_EMAIL_FIRST:
        # Proved who they are, but no device until the address is confirmed.
        session[UNCONFIRMED_KEY] = [str(user.id), time.time() + UNCONFIRMED_SECONDS]
        db.session.commit()
        return render_template("auth/confirm_email_first.html")
    if outcome is Admission.SECOND_STEP:
        # No device and no session yet: the second factor comes first.
        mfa.start_pending_step(user, remember=remember, next_url=safe_next(next_url) or "")
        db.session.commit()  # a rehashed password, if any
        return redirect(url_for(".verify"))
    sign_in(
        user,
        remember=remember,
        auth_method=method,
        second_factor=second_factor,
        passkey_id=passkey_id,
    )
    record("login", actor=user, target_user=user, details={"remember": remember, "method": method})
    db.session.commit()
    return redirect(safe_next(next_url) or url_for("account.overview"))


def unconfirmed_user() -> User | None:
    """Return the account refused at login for its unconfirmed address, a moment ago."""
    stored = session.get(UNCONFIRMED_KEY)
    if not isinstance(stored, list) or len(stored) != 2:
        return None
    raw_id, until = stored
    if not isinstance(until, int | float) or until < time.time():
        return None
    try:
        user = db.session.get(User, uuid.UUID(str(raw_id)))
    except ValueError:
        return None
    return user if user is not None and user.is_active else None


@bp.route("/login/verify", methods=["GET", "POST"])
@limit_posts(_login_limit, SECOND_STEP_SCOPE)
def verify():
    """The second step of a login: a code from the authenticator app or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    pending = mfa.pending_step()
    if pending is None:
        flash(str(STEP_EXPIRED), "info")
        return redirect(url_for(".login"))
    if request.method == "POST" and "credential" in request.form:
        return _verify_with_passkey(pending)
    form = VerifyForm()
    if form.validate_on_submit():
        user = pending.user
        try:
            result = verify_second_factor(user, form.code.data)
        except Throttled as exc:
            db.session.rollback()
            logger.warning("second factor throttled user=%s", quoted(user.username))
            form.form_errors.append(exc.message)
            page = render_template("auth/verify.html", form=form)
            return page, 429, {"Retry-After": str(exc.retry_after)}
        method = result.method
        if method is None:
            if result.replayed:
                # A right code used before: someone may be watching the owner's screen.
                mail_notice("totp_replayed", user, user_agent(), client_ip())
            db.session.commit()  # the failure's audit row (and the notice)
            if mfa.count_pending_failure() >= current_app.config["MFA_MAX_ATTEMPTS"]:
                mfa.end_pending_step()
                flash(str(TOO_MANY_CODES), "error")
                return redirect(url_for(".login"))
            form.code.errors.append(WRONG_CODE)
        else:
            sign_in(user, remember=pending.remember, auth_method=method, second_factor=True)
            record(
                "login",
                actor=user,
                target_user=user,
                details={"remember": pending.remember, "method": method},
            )
            if method == mfa.METHOD_RECOVERY:
                mail_notice("recovery_code_used", user, user_agent(), client_ip())
            db.session.commit()
            return redirect(safe_next(pending.next) or url_for("account.overview"))
    return _verify_page(form, pending)


def _verify_page(form: VerifyForm, pending: mfa.PendingStep, passkey_error: str = ""):
    return render_template(
        "auth/verify.html",
        form=form,
        passkey=has_passkey(pending.user),
        passkey_form=PasskeyVerifyForm(formdata=None),
        passkey_error=passkey_error,
    )


@bp.post("/login/verify/passkey-options")
@limiter.limit(_login_limit)
def verify_passkey_options():
    """Answer the browser with options for a passkey of the user whose step is under way."""
    pending = mfa.pending_step()
    if current_user.is_authenticated or pending is None or not Form().validate_on_submit():
        abort(400)
    options = second_factor_options(pending.user)
    db.session.commit()
    return Response(options, mimetype="application/json")


def _verify_with_passkey(pending: mfa.PendingStep):
    """The second step passed with one of the user's own passkeys, or refused."""
    form = PasskeyVerifyForm()
    if not form.validate_on_submit():
        abort(400)
    user = pending.user
    try:
        passkey = verify_passkey_for(user, form.credential.data or "")
    except PasskeyRefused as exc:
        db.session.commit()  # the challenge is used up, the failure audited
        if mfa.count_pending_failure() >= current_app.config["MFA_MAX_ATTEMPTS"]:
            mfa.end_pending_step()
            flash(str(TOO_MANY_CODES), "error")
            return redirect(url_for(".login"))
        return _verify_page(VerifyForm(formdata=None), pending, exc.message), 400
    sign_in(
        user,
        remember=pending.remember,
        auth_method=METHOD_PASSKEY_SECOND,
        second_factor=True,
        passkey_id=passkey.id,
    )
    record(
        "login",
        actor=user,
        target_user=user,
        details={"remember": pending.remember, "method": METHOD_PASSKEY_SECOND},
    )
    db.session.commit()
    return redirect(safe_next(pending.next) or url_for("account.overview"))


@bp.post("/logout")
def logout():
    """End this browser's session and revoke its device."""
    if current_user.is_authenticated:
        record("logout")
        sign_out()
        db.session.commit()
        flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))
