"""The token API's identity: the user an `Authorization: Bearer` access token names.

Registered as Flask-Login's request loader (`security/login.py`), so
`current_user` is the app's user under /api/ and the account domain's
rules and audit rows see the same actor as on the pages. Only cookieless
paths are asked: a bearer token means nothing to a page, and a cookie
nothing to the API.

A token is accepted only when its ES256 signature, issuer, key and expiry
are right (`access_tokens.verify`) and its device is live and its user
active, read in the one query of a signed-in page
(`devices.load_token_user`): a revoked app stops at its next request.
"""

from __future__ import annotations

from flask import Request, g

from webapp.models import User
from webapp.security import access_tokens, devices
from webapp.security.speedups.sessions import cookieless

# Why a request has no user: no token at all, or a token refused (RFC 6750's error).
NO_TOKEN = "no_token"
# RFC 6750's error code, not a secret (bandit's B105 reads the name).
INVALID_TOKEN = "invalid_token"  # nosec B105


def load_bearer_user(request: Request) -> User | None:
    """Return the user of the request's access token, or None (noting why in `g`)."""
    if not cookieless(request.path):
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        g.bearer_error = NO_TOKEN
        return None
    try:
        claims = access_tokens.verify(token)
    except access_tokens.InvalidToken:
        g.bearer_error = INVALID_TOKEN
        return None
    user = devices.load_token_user(claims.user_id, claims.device_id)
    if user is None:
        g.bearer_error = INVALID_TOKEN
        return None
    g.access_claims = claims
    return user


def access_claims() -> access_tokens.AccessClaims | None:
    """Return the claims of this request's verified access token, if any."""
    return g.get("access_claims")


def bearer_error() -> str:
    """Return why this request has no bearer user (after `load_bearer_user` ran)."""
    return g.get("bearer_error", NO_TOKEN)
