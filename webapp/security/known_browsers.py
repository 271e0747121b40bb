"""The browser cookie: a random id that lets an account tell a browser it has not seen.

It is not a credential: it signs nobody in and proves nothing, it only
marks "this browser has been here before", so that a sign-in from any other
can be mailed to the account's owner. Each account stores the SHA-256 of
the ids it has seen (`known_browsers`), never the id itself. HttpOnly,
SameSite=Lax, and `__Host-` prefixed and Secure with COOKIE_SECURE, like
the other cookies; it lives KNOWN_BROWSER_COOKIE_DAYS (400, the most
browsers keep a cookie) and is renewed at each sign-in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from flask import Flask, current_app, g, request
from werkzeug.wrappers import Response

ID_BYTES = 32
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def init_app(app: Flask) -> None:
    app.after_request(_write_cookie)


def presented() -> str | None:
    """Return the browser id this request carries, if it is a well-formed one."""
    raw = request.cookies.get(current_app.config["KNOWN_BROWSER_COOKIE_NAME"], "")
    return raw if _ID_RE.match(raw) else None


def browser_id() -> str:
    """Return this browser's id, making one if it has none; the response (re)sets the cookie."""
    value = g.get("browser_id") or presented() or secrets.token_urlsafe(ID_BYTES)
    g.browser_id = value
    return value


def hash_id(value: str) -> str:
    """Return the SHA-256 stored for a browser id."""
    return hashlib.sha256(value.encode("ascii")).hexdigest()


def _write_cookie(response: Response) -> Response:
    value = g.get("browser_id")
    if value:
        config = current_app.config
        response.set_cookie(
            config["KNOWN_BROWSER_COOKIE_NAME"],
            value,
            max_age=int(timedelta(days=config["KNOWN_BROWSER_COOKIE_DAYS"]).total_seconds()),
            path="/",
            secure=config["COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    return response
