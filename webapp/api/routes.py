"""The token API's sign-in and the signed-in user's own endpoints (`/api/v1`).

Thin views, as on the pages: each validates (the schemas), calls the same
domain functions the pages call, commits once, and answers JSON or an
RFC 9457 problem.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import current_app, jsonify, request
from flask_login import current_user
from flask_smorest import Blueprint

from webapp.api import schemas
from webapp.domain import apps, credentials
from webapp.domain.activity import activity_events, describe_event
from webapp.domain.addresses import (
    send_confirmation,
    sign_up_quietly,
    verification_mandatory,
)
from webapp.domain.audit import record, record_alone
from webapp.domain.credentials import Admission, admission, authenticate, confirm_password
from webapp.domain.device_list import live_devices, own_device, user_agent_parts
from webapp.domain.notices import mail_notice
from webapp.domain.recovery import sign_out_others
from webapp.domain.users import DuplicateAccount, create_user, find_user, username_taken
from webapp.errors import problem
from webapp.extensions import db, limiter
from webapp.i18n import _, _l
from webapp.logs import quoted
from webapp.models import DeviceKind, RevokeReason, User
from webapp.security import bearer, devices, throttle
from webapp.security.client import client_ip, user_agent
from webapp.security.location import describe as describe_location
from webapp.security.passwords import password_problems
from webapp.security.throttle import Throttled

logger = logging.getLogger("webapp.api")

blp = Blueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description="Sign-in for apps and the signed-in user's own account.",
)

INVALID_CREDENTIALS = _l("Invalid username/email or password.")
MFA_REQUIRED = _l("This account has a second factor: send a code to /api/v1/auth/token/mfa.")
BEARER_ONLY = "Bearer"
JSON_TYPES = ("application/json",)
# The token reaches only /me until the role's required second factor is set up.
SETUP_REQUIRED = _l("Your role requires two-factor authentication: set it up on the website first.")


# --- request checks shared by the API's blueprints -------------------------------------


def refuse_non_json() -> Any:
    """Answer 415 for a body that is not JSON (before webargs reads it)."""
    has_body = bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    )
    if request.method in {"POST", "PUT", "PATCH"} and has_body and not request.is_json:
        return problem(415)
    return None


blp.before_request(refuse_non_json)


def unauthorized(detail: str | None = None) -> Any:
    """401 with RFC 6750's challenge: `invalid_token` when a token was sent and refused."""
    if bearer.bearer_error() == bearer.INVALID_TOKEN:
        challenge = 'Bearer error="invalid_token"'
        detail = detail or _("The access token is expired, revoked, altered or wrongly signed.")
        code = "invalid_token"
    else:
        challenge = BEARER_ONLY
        detail = detail or _("Send an access token: Authorization: Bearer <token>.")
        code = "unauthorized"
    return problem(401, code=code, detail=detail, headers={"WWW-Authenticate": challenge})


def throttled(exc: Throttled) -> Any:
    return problem(
        429,
        code="throttled",
        detail=exc.message,
        headers={"Retry-After": str(exc.retry_after)},
    )


@blp.errorhandler(Throttled)
def _throttled(exc: Throttled):
    db.session.rollback()
    return throttled(exc)


def token_setup_required() -> bool:
    """Return whether this request's token reaches only /me (a second factor to set up)."""
    claims = bearer.access_claims()
    return claims is not None and apps.AMR_SETUP_REQUIRED in claims.amr


def bearer_required(view: Callable | None = None, *, setup_ok: bool = False) -> Callable:
    """Let only a request with a good access token through (and a set-up token to /me only)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user._get_current_object().is_authenticated:
                return unauthorized()
            if not setup_ok and token_setup_required():
                return problem(403, code="mfa_setup_required", detail=SETUP_REQUIRED)
            return view(*args, **kwargs)

        return blp.doc(security=[{"bearer": []}])(wrapped)

    return decorate(view) if view is not None else decorate


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _signup_limit() -> str:
    return current_app.config["RATELIMIT_SIGNUP"]


# --- signing in ---------------------------------------------------------------------


def me_json(user: User) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified_at is not None,
        "role": user.role.name,
        "created_at": user.created_at,
        "two_factor": bool(user.has_second_factor),
    }


@blp.post("/auth/signup")
@limiter.shared_limit(_signup_limit, scope=throttle.SIGNUP_SCOPE)
@blp.arguments(schemas.SignupRequest())
@blp.response(201, schemas.SignedUp)
@blp.alt_response(202, schema=schemas.ConfirmationSent, description="Mandatory verification")
def signup(body: dict):
    """Create an account and sign the app in (or, with mandatory verification, mail a link)."""
    username, email, password = body["username"], body["email"], body["password"]
    if verification_mandatory():
        if username_taken(username):
            return _field_problem("username", _("That username is taken."))
        sign_up_quietly(username, email, password, client_ip())
        # Its own response: the 201 schema above would dump this body as empty.
        return jsonify(schemas.ConfirmationSent().dump({"status": "confirmation_sent"})), 202
    try:
        user = create_user(username, email, password)
    except DuplicateAccount as exc:
        db.session.rollback()
        if exc.field == "username":
            return _field_problem("username", _("That username is taken."))
        return _field_problem("email", _("An account with this email already exists."))
    record("signup", actor=user, target_user=user)
    send_confirmation(user)
    tokens = apps.sign_in_app(user, body["device_name"])
    db.session.commit()
    return {**tokens.as_json(), "user": me_json(user)}


def _field_problem(field: str, message: str) -> Any:
    return problem(422, detail=message, errors={field: [message]})


@blp.post("/auth/token")
@limiter.shared_limit(_login_limit, scope=throttle.LOGIN_SCOPE)
@blp.arguments(schemas.TokenRequest())
@blp.response(200, schemas.Tokens)
def token(body: dict):
    """Sign an app in with a username (or email) and password."""
    identifier = body["username"]
    try:
        user = authenticate(identifier, body["password"])
    except Throttled as exc:
        logger.warning("api login throttled identifier=%s", quoted(identifier[:100]))
        return throttled(exc)
    if user is None:
        record_alone(
            "login_failed",
            subject=find_user(identifier),
            details={"identifier": identifier[:100], "api": True},
        )
        return problem(
            401,
            code="invalid_credentials",
            detail=INVALID_CREDENTIALS,
            headers={"WWW-Authenticate": BEARER_ONLY},
        )
    # The rules every sign-in follows (authenticate already refused an inactive account).
    admitted = admission(user, second_factor_passed=False)
    if admitted is Admission.CONFIRM_EMAIL_FIRST:
        db.session.commit()  # a rehashed password, if any
        return problem(
            403,
            code="email_unconfirmed",
            detail=_("Confirm your email address first: use the link we mailed you."),
        )
    if admitted is Admission.SECOND_STEP:
        mfa_token = apps.start_second_step(user, body["device_name"])
        db.session.commit()
        return problem(
            401,
            code="mfa_required",
            detail=MFA_REQUIRED,
            headers={"WWW-Authenticate": BEARER_ONLY},
            mfa_token=mfa_token,
        )
    tokens = apps.sign_in_app(user, body["device_name"])
    db.session.commit()
    return tokens.as_json()


@blp.post("/auth/token/mfa")
@limiter.shared_limit(_login_limit, scope=throttle.SECOND_STEP_SCOPE)
@blp.arguments(schemas.MfaRequest())
@blp.response(200, schemas.Tokens)
def token_mfa(body: dict):
    """The second step: an authenticator code or a recovery code, with the `mfa_token`."""
    outcome = apps.finish_second_step(body["mfa_token"], body["code"])
    db.session.commit()  # a failure's count and audit row, or the sign-in
    if outcome.tokens is not None:
        return outcome.tokens.as_json()
    headers = {"WWW-Authenticate": BEARER_ONLY}
    if outcome.wrong_code:
        return problem(
            401, code="invalid_code", detail=_("That code is not right."), headers=headers
        )
    return problem(
        401,
        code="invalid_grant",
        detail=_("That sign-in has expired or was used up. Sign in again."),
        headers=headers,
    )


@blp.post("/auth/refresh")
@blp.arguments(schemas.RefreshRequest())
@blp.response(200, schemas.Tokens)
def refresh(body: dict):
    """Trade a refresh token for a new access token and a new refresh token."""
    tokens = apps.refresh(body["refresh_token"])
    if tokens is None:
        db.session.commit()  # a theft's revocation and audit row, if any
        return problem(
            401,
            code="invalid_grant",
            detail=_("That refresh token is unknown, expired, revoked or replaced. Sign in again."),
            headers={"WWW-Authenticate": BEARER_ONLY},
        )
    return tokens.as_json()


@blp.post("/auth/logout")
@bearer_required(setup_ok=True)
@blp.response(204)
def logout():
    """Revoke this app's device: its access and refresh tokens stop working."""
    apps.sign_out_app(current_user)
    db.session.commit()
    return None


# --- the signed-in user ----------------------------------------------------------------


@blp.get("/me")
@bearer_required(setup_ok=True)
@blp.response(200, schemas.Me)
def me():
    """Who the access token belongs to."""
    return me_json(current_user._get_current_object())


def _device_json(device, current_id: int) -> dict:
    browser, system = user_agent_parts(device.user_agent)
    return {
        "id": device.id,
        "name": device.name,
        "kind": device.kind,
        "browser": None if device.kind == DeviceKind.APP else browser,
        "os": system,
        "ip": device.ip_address,
        "location": describe_location(device.country, device.city),
        "created_at": device.created_at,
        "last_active_at": device.last_used_at,
        "expires_at": devices.expires_at(device),
        "remembered": device.is_remembered,
        "current": device.id == current_id,
    }


@blp.get("/me/devices")
@bearer_required
@blp.response(200, schemas.DeviceList)
def my_devices():
    """Every browser and app signed in to this account."""
    current_id = current_user.current_device.id
    return {"items": [_device_json(d, current_id) for d in live_devices(current_user)]}


@blp.delete("/me/devices/<int:device_id>")
@bearer_required
@blp.response(204)
def revoke_device(device_id: int):
    """Sign one of the user's devices out; this app's own is a logout."""
    device = own_device(current_user, device_id)
    if device is None or device.is_revoked:
        return problem(404, detail=_("You have no signed-in device with that id."))
    if device.id == current_user.current_device.id:
        apps.sign_out_app(current_user)
    else:
        devices.revoke_device(device, RevokeReason.USER)
        record("device_revoked", target_user=current_user, details={"device": device.id})
    db.session.commit()
    return None


@blp.post("/me/devices/revoke-others")
@bearer_required
@blp.response(204)
def revoke_others():
    """Sign out every browser and app of this account but this one."""
    sign_out_others(current_user, current_user.current_device)
    db.session.commit()
    return None


@blp.post("/me/password")
@bearer_required
@blp.arguments(schemas.PasswordChangeRequest())
@blp.response(204)
def change_password(body: dict):
    """Change the password; every other device is signed out."""
    user = current_user._get_current_object()
    problems = password_problems(body["new_password"], username=user.username, email=user.email)
    if problems:
        message = " ".join(problems)
        return problem(422, detail=message, errors={"new_password": [message]})
    if not confirm_password(user, body["current_password"]):
        db.session.commit()
        return problem(403, code="wrong_password", detail=_("That is not your current password."))
    credentials.change_password(user, body["new_password"], keep_device_id=user.current_device.id)
    record("password_changed", target_user=user)
    mail_notice("password_changed", user, user_agent(), client_ip())
    db.session.commit()
    return None


@blp.get("/me/activity")
@bearer_required
@blp.arguments(schemas.CursorQuery(), location="query")
@blp.response(200, schemas.ActivityPage)
def my_activity(query: dict):
    """The account's security events, newest first, 50 a page."""
    page = activity_events(current_user, after=query.get("cursor"))
    current_id = current_user.current_device.id
    return {
        "items": [
            {
                "id": event.id,
                "event": event.event,
                "description": describe_event(event.event, event.details),
                "created_at": event.created_at,
                "ip": event.ip_address,
                "browser": event.browser,
                "location": (
                    describe_location(event.country, event.city) if event.ip_address else None
                ),
                "device_id": event.device_id,
                "current": event.device_id is not None and event.device_id == current_id,
            }
            for event in page.items
        ],
        "next_cursor": page.next_cursor,
    }
