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
from flask_login import current_user, login_fresh, login_user, logout_user
from werkzeug.wrappers import Response

from webapp.extensions import login_manager
from webapp.models import RefreshToken, RevokeReason, User
from webapp.security import bearer, devices, signals
from webapp.security.client import client_ip, user_agent
from webapp.security.speedups import sessions
from webapp.security.speedups.csrf import generate_csrf

FRESH_UNTIL_KEY = "fresh_until"
# The fingerprint of the browser the session belongs to (see `_browser_fingerprint`).
BROWSER_KEY = "browser"
# A session signed in through the grace period ends then (epoch seconds)
# unless its browser shows the device's current remember secret.
PROVISIONAL_UNTIL_KEY = "provisional_until"
REAUTH_KEY = "webapp.reauthenticate"

# Shows the "Confirm your password" step; gets the view to carry on with.
ReauthHandler = Callable[[Callable[[], Any]], Any]


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.login_message_category = "info"
    # Our own session protection, on Flask-Login's public API only: when the
    # browser's address or user agent changes, the session stays signed in
    # but is no longer fresh, so sensitive actions ask for the password
    # again (`is_fresh`). Flask-Login's own check ("basic") fingerprints
    # X-Forwarded-For, which a client sets itself; ours reads the address
    # ProxyFix trusts. ("strong" would only delete Flask-Login's session,
    # and our remember cookie would silently sign the browser back in; a
    # stolen session is instead ended by revoking its device.)
    login_manager.session_protection = None
    login_manager.user_loader(_load_user)
    # The token API's user comes from its bearer token, never from a cookie.
    login_manager.request_loader(bearer.load_bearer_user)
    app.before_request(restore_from_remember_cookie)
    app.after_request(_write_remember_cookie)


def _browser_fingerprint() -> str:
    """Fingerprint the browser: the client address ProxyFix trusts, and the user agent.

    128 bits: the fingerprint only has to differ when the browser does,
    and it rides in every request's session cookie.
    """
    text = f"{client_ip() or ''}|{user_agent() or ''}"
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()


def _login(user: User, *, fresh: bool) -> None:
    """Name `user` in the session (Flask-Login) and bind it to this browser."""
    login_user(user, remember=False, fresh=fresh)
    session[BROWSER_KEY] = _browser_fingerprint()


def fail_closed() -> None:
    """Treat the rest of this request as signed out: its user could not be checked.

    For the error page of a database outage, which must not show anyone
    signed in; the session itself is kept for when the database is back.
    """
    g.fail_closed = True


def _load_user(alt_id: str) -> User | None:
    if g.get("fail_closed"):
        return None
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
    if request.endpoint in {"static", "health.healthz"} or sessions.cookieless(request.path):
        return
    raw = request.cookies.get(current_app.config["REMEMBER_DEVICE_COOKIE_NAME"])
    if raw is None:
        return
    if current_user.is_authenticated:
        return
    restored = devices.restore_from_cookie(raw)
    if restored.user is None:
        g.remember_cookie = None
        return
    session.clear()
    _new_csrf_token()
    _login(restored.user, fresh=False)
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
    user: User,
    *,
    remember: bool,
    auth_method: str = "password",
    second_factor: bool = False,
    passkey_id: int | None = None,
) -> RefreshToken:
    """Start a new session for `user` on a new device (the view commits).

    `auth_method` says how the person signed in ("password", "password+totp",
    ...); `second_factor` that they passed one, which the device records,
    with the passkey used (`passkey_id`), if one was.
    """
    device, token = devices.create_device(
        user,
        remember=remember,
        user_agent=user_agent(),
        ip_address=client_ip(),
        auth_method=auth_method,
        second_factor=second_factor,
        passkey_id=passkey_id,
    )
    user.current_device = device
    # A new session on every sign-in: no fixation, and the CSRF token rotates.
    session.clear()
    _new_csrf_token()
    _login(user, fresh=True)
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
    # The session names the device's new generation; freshness and browser stay.
    fresh = login_fresh()
    browser = session.get(BROWSER_KEY)
    login_user(current_user._get_current_object(), remember=False, fresh=fresh)
    session[BROWSER_KEY] = browser
    session.pop(PROVISIONAL_UNTIL_KEY, None)
    if token is not None:
        g.remember_cookie = token


def is_fresh() -> bool:
    """Return whether the password was typed in this browser recently enough.

    A session signed in with a password stays fresh (Flask-Login's
    `login_fresh`); one restored from a remember cookie is fresh for
    FRESH_MINUTES after the password is confirmed. Either only in the
    browser it belongs to: a copied session cookie sent from another
    address or user agent is not fresh, whatever X-Forwarded-For it claims.
    """
    if session.get(BROWSER_KEY) != _browser_fingerprint():
        return False
    return login_fresh() or session.get(FRESH_UNTIL_KEY, 0) > time.time()


def mark_fresh() -> None:
    """The password was confirmed in this browser: fresh here for FRESH_MINUTES.

    Binds the session to this browser, as Flask-Login's `confirm_login` does.
    """
    minutes = current_app.config["FRESH_MINUTES"]
    session[FRESH_UNTIL_KEY] = time.time() + minutes * 60
    session[BROWSER_KEY] = _browser_fingerprint()


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
