"""Signing in and out through devices, and whether a session is fresh.

Flask-Login manages `current_user`; its own remember cookie is never set
(`login_user(..., remember=False)`): our remember cookie, backed by a device
row, is restored here before any view runs.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request, session
from flask_login import current_user, login_user, logout_user, session_protected
from werkzeug.wrappers import Response

from webapp.extensions import login_manager
from webapp.i18n import N_, _
from webapp.models import RefreshToken, RevokeReason, User
from webapp.security import devices, signals
from webapp.security.client import client_ip, user_agent
from webapp.security.csrf import generate_csrf

FRESH_UNTIL_KEY = "fresh_until"
# A session signed in through the grace period ends then (epoch seconds)
# unless its browser shows the device's current remember secret.
PROVISIONAL_UNTIL_KEY = "provisional_until"
REAUTH_KEY = "webapp.reauthenticate"

# Shows the "Confirm your password" step; gets the view to carry on with.
ReauthHandler = Callable[[Callable[[], Any]], Any]


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = N_("Please log in to see that page.")
    login_manager.localize_callback = _
    login_manager.login_message_category = "info"
    # "basic": when the browser's address or user agent changes, the session
    # stays signed in but is no longer fresh, so sensitive actions ask for
    # the password again. "strong" would only delete Flask-Login's session,
    # and our remember cookie would silently sign the browser back in; a
    # stolen session is instead ended by revoking its device.
    login_manager.session_protection = "basic"
    # Flask-Login's own fingerprint reads X-Forwarded-For, which a client
    # sets itself; ours uses the address ProxyFix trusts.
    login_manager._session_identifier_generator = _session_identifier
    session_protected.connect(_forget_freshness, app, weak=False)
    login_manager.user_loader(_load_user)
    app.before_request(restore_from_remember_cookie)
    app.after_request(_write_remember_cookie)


def _session_identifier() -> str:
    """Fingerprint the browser for session protection: client address and user agent.

    128 bits, not Flask-Login's 512: the fingerprint only has to differ when
    the browser does, and it rides in every request's session cookie.
    """
    text = f"{client_ip() or ''}|{user_agent() or ''}"
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()


def _forget_freshness(sender: Flask, **_: object) -> None:
    """Session protection fired: the session loses all freshness, ours included."""
    session.pop(FRESH_UNTIL_KEY, None)


def _load_user(alt_id: str) -> User | None:
    user = devices.load_session_user(alt_id)
    if user is None:
        # The device was revoked, expired or re-keyed: forget it for good.
        session.clear()
        return None
    until = session.get(PROVISIONAL_UNTIL_KEY)
    if until is not None and time.time() > until:
        raw = request.cookies.get(current_app.config["REMEMBER_DEVICE_COOKIE_NAME"])
        if not devices.presents_current_secret(user.current_device, raw):
            # Signed in through the grace period, and not the browser that
            # holds the current secret: the session ends with the grace period.
            session.clear()
            return None
        session.pop(PROVISIONAL_UNTIL_KEY)
    return user


def restore_from_remember_cookie() -> None:
    """Sign the browser in from its remember cookie when the session does not."""
    if request.endpoint in {"static", "health.healthz"}:
        return
    raw = request.cookies.get(current_app.config["REMEMBER_DEVICE_COOKIE_NAME"])
    if raw is None:
        return
    # A session naming no user is not signed in: no need to ask Flask-Login.
    if "_user_id" in session and current_user.is_authenticated:
        return
    restored = devices.restore_from_cookie(raw)
    if restored.user is None:
        g.remember_cookie = None
        return
    session.clear()
    _new_csrf_token()
    login_user(restored.user, remember=False, fresh=False)
    if restored.provisional_until is not None:
        session[PROVISIONAL_UNTIL_KEY] = restored.provisional_until
    if restored.new_token:
        g.remember_cookie = restored.new_token


def _new_csrf_token() -> None:
    """Put a new CSRF token in the new session now.

    The response sets the session cookie anyway; left to the first page that
    shows a form (every page: the header's log-out button), the token would
    change the session again and have the cookie signed and sent once more.
    """
    g.pop("csrf_token", None)
    generate_csrf()


def _write_remember_cookie(response: Response) -> Response:
    if "remember_cookie" in g:
        if g.remember_cookie is None:
            devices.delete_remember_cookie(response)
        else:
            devices.set_remember_cookie(response, g.remember_cookie)
    return response


def sign_in(
    user: User, *, remember: bool, auth_method: str = "password", second_factor: bool = False
) -> RefreshToken:
    """Start a new session for `user` on a new device (the view commits).

    `auth_method` says how the person signed in ("password", "password+totp",
    ...); `second_factor` that they passed one, which the device records.
    """
    device, token = devices.create_device(
        user,
        remember=remember,
        user_agent=user_agent(),
        ip_address=client_ip(),
        auth_method=auth_method,
        second_factor=second_factor,
    )
    user.current_device = device
    # A new session on every sign-in: no fixation, and the CSRF token rotates.
    session.clear()
    _new_csrf_token()
    login_user(user, remember=False, fresh=True)
    g.remember_cookie = token
    # The account domain notes the browser (and mails about a new one).
    signals.user_signed_in.send(current_app._get_current_object(), user=user, device=device)
    return device


def sign_out(reason: str = RevokeReason.LOGOUT) -> None:
    """End this browser's session and revoke its device (the view commits)."""
    device = getattr(current_user, "current_device", None)
    if device is not None:
        devices.revoke_device(device, reason)
    logout_user()
    session.clear()
    g.remember_cookie = None


def rekey_this_device() -> None:
    """Sign out every other browser sharing this device; this one stays signed in.

    For password changes and "Sign out all other devices" (the view commits):
    a copied session cookie or remember cookie of this device stops working.
    """
    device = current_user.current_device
    token = devices.rekey(device)
    session["_user_id"] = current_user.get_id()
    session.pop(PROVISIONAL_UNTIL_KEY, None)
    if token is not None:
        g.remember_cookie = token


def is_fresh() -> bool:
    """Return whether the password was typed in this session recently enough."""
    if session.get("_fresh"):
        return True
    return session.get(FRESH_UNTIL_KEY, 0) > time.time()


def mark_fresh() -> None:
    minutes = current_app.config["FRESH_MINUTES"]
    session[FRESH_UNTIL_KEY] = time.time() + minutes * 60


def set_reauthentication_handler(app: Flask, handler: ReauthHandler) -> None:
    """Name the page that asks for the password again (the account blueprint's)."""
    app.extensions[REAUTH_KEY] = handler


def fresh_login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Ask for the password first when the session was restored from a cookie.

    The mechanism only decides whether the session is fresh; the page that
    asks for the password belongs to a blueprint, which registered it with
    `set_reauthentication_handler`. The handler gets a callable that carries
    on with the original view once the password is confirmed.
    """

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if is_fresh():
            return view(*args, **kwargs)
        handler: ReauthHandler = current_app.extensions[REAUTH_KEY]
        return handler(functools.partial(view, *args, **kwargs))

    return wrapped
