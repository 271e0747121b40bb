"""Flask's signed-cookie sessions, with the signing work done once.

For every request Flask builds a new itsdangerous serializer (whose
constructor test-dumps a payload to learn its type), every signature
re-derives the signing key from the secret key (an HMAC), and every
request verifies and decodes the same session cookie its browser sent
last time. Here the serializer and its key are kept per set of secret
keys, and a cookie once verified is remembered (what it decoded to, and
when it was signed) so that its next arrival skips the HMAC and the
decoding; its age is still checked against the session lifetime every
time. The cookie is byte for byte the same as Flask's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import zlib

from flask import Flask, Request, current_app
from flask.json import dumps as json_dumps
from flask.json.provider import DefaultJSONProvider
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer
from werkzeug.http import dump_cookie
from werkzeug.wrappers import Response

from webapp.security.speedups.signing import KeyCachingSigner, SignerReusingSerializer

# Cookies remembered per process: a browser's session cookie changes only
# when its session does, so a few thousand cover every active browser.
VERIFIED_COOKIES = 4096
# Values of exactly these types (a str subclass may be Markup) are what a
# signed-in session holds. Only such sessions are remembered (each request
# gets a copy of the dict, and a list or dict value in it would be shared),
# and only such sessions skip Flask's tagging walk.
_PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))


class _SessionSerializer(TaggedJSONSerializer):
    """Flask's session serializer, without its tagging walk for a session of plain values.

    Flask tags values JSON cannot carry (tuples, bytes, datetimes, Markup)
    by testing every value against each of its tags; a signed-in session
    holds only strings, numbers and booleans, for which the walk changes
    nothing. Those are written at once, the same JSON Flask writes, by an
    encoder made once with the app's JSON settings.
    """

    def dumps(self, value) -> str:
        if (
            type(value) is dict
            and all(type(item) in _PLAIN_TYPES for item in value.values())
            and not (len(value) == 1 and next(iter(value)) in self.tags)
        ):
            provider = current_app.json if current_app else None
            if type(provider) is DefaultJSONProvider:
                return _plain_encoder(provider.ensure_ascii, provider.sort_keys).encode(value)
            return json_dumps(value, separators=(",", ":"))
        return super().dumps(value)


@functools.lru_cache(maxsize=4)
def _plain_encoder(ensure_ascii: bool, sort_keys: bool) -> json.JSONEncoder:
    """Flask's JSON for strings, numbers, booleans and None (no `default` is ever needed)."""
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii, sort_keys=sort_keys)


# zlib.compress sets up 256 KiB of state for a 200-byte session, and that
# setup is most of its cost. Memory level 5
# instead of 8 uses a quarter of it, and for JSON of the size a cookie can
# carry (tried up to 6 KB) compresses to the same bytes: the window, and so
# the header, are zlib.compress's.
_COMPRESS_ARGS = (6, zlib.DEFLATED, 15, 5)


class _SessionCookieSerializer(SignerReusingSerializer):
    """itsdangerous's URL-safe serializer with a lighter zlib set-up; the same payloads."""

    def dump_payload(self, obj) -> bytes:
        json = Serializer.dump_payload(self, obj)
        compressor = zlib.compressobj(*_COMPRESS_ARGS)
        compressed = compressor.compress(json) + compressor.flush()
        # itsdangerous's rule: compressed only when that saves more than the dot.
        if len(compressed) < len(json) - 1:
            return b"." + base64_encode(compressed)
        return base64_encode(json)


# Paths that take no cookies: the token API and its key set.
COOKIELESS_PREFIXES = ("/api/", "/.well-known/")


def cookieless(path: str) -> bool:
    """Return whether requests to `path` neither read nor set cookies."""
    return path.startswith(COOKIELESS_PREFIXES)


class CachedSigningSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions; serializers built, and cookies verified, once."""

    # OpenSSL's SHA-1 constructor, not Flask's wrapper of it (why: KeyCachingSigner).
    digest_method = staticmethod(hashlib.sha1)
    serializer = _SessionSerializer()

    def __init__(self) -> None:
        # Per set of secret keys: its serializer, and the cookies it verified
        # (cookie -> (signed at, epoch seconds; the session's data)).
        self._signing: dict[tuple, tuple[URLSafeTimedSerializer, dict[str, tuple]]] = {}

    def _signing_for(self, app: Flask) -> tuple[URLSafeTimedSerializer, dict[str, tuple]] | None:
        if not app.secret_key:
            return None
        # itsdangerous expects the current key last, after the fallbacks.
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        signing = self._signing.get(keys)
        if signing is None:
            serializer = _SessionCookieSerializer(
                list(keys),
                salt=self.salt,
                serializer=self.serializer,
                signer=KeyCachingSigner,
                signer_kwargs={
                    "key_derivation": self.key_derivation,
                    "digest_method": self.digest_method,
                },
            )
            signing = self._signing[keys] = (serializer, {})
        return signing

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        signing = self._signing_for(app)
        return None if signing is None else signing[0]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if cookieless(request.path):
            # The token API neither reads nor writes the session cookie: a
            # browser's session cannot be ridden into it (no CSRF to check).
            return self.make_null_session(app)
        signing = self._signing_for(app)
        if signing is None:
            return None
        serializer, verified = signing
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        known = verified.get(value)
        if known is not None:
            signed_at, data = known
            # itsdangerous's own test: whole seconds, not from the future.
            if 0 <= int(time.time()) - signed_at <= max_age:
                return self.session_class(data)
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if all(type(item) in _PLAIN_TYPES for item in data.values()):
            if len(verified) >= VERIFIED_COOKIES:
                verified.clear()
            verified[value] = (int(signed.timestamp()), data)
        return self.session_class(data)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Flask's `save_session`, step for step, writing `Vary` and `Set-Cookie` directly.

        Werkzeug's `response.vary` parses the header into a set and writes
        it back at every `add`, and `set_cookie` looks the size limit up
        through `current_app`: a third of the cost of saving a new session.
        """
        if session.accessed:
            _vary_on_cookie(response)
        if not session:
            if session.modified:
                response.delete_cookie(self.get_cookie_name(app), **self._attributes(app))
                _vary_on_cookie(response)
            return
        # A signed-in page leaves its session as it was: nothing more to do.
        if not self.should_set_cookie(app, session):
            return
        value = self.get_signing_serializer(app).dumps(dict(session))
        cookie = dump_cookie(
            self.get_cookie_name(app),
            value,
            expires=self.get_expiration_time(app, session),
            max_size=app.config["MAX_COOKIE_SIZE"],
            **self._attributes(app),
        )
        response.headers.add("Set-Cookie", cookie)
        _vary_on_cookie(response)

    def _attributes(self, app: Flask) -> dict:
        """The session cookie's attributes, for setting it and for deleting it."""
        return {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "partitioned": self.get_cookie_partitioned(app),
            "samesite": self.get_cookie_samesite(app),
            "httponly": self.get_cookie_httponly(app),
        }


def _vary_on_cookie(response: Response) -> None:
    """Add "Cookie" to the response's Vary header, as `response.vary.add("Cookie")` does."""
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Cookie"
    elif "cookie" not in {part.strip().lower() for part in vary.split(",")}:
        response.headers["Vary"] = f"{vary}, Cookie"


def init_app(app: Flask) -> None:
    app.session_interface = CachedSigningSessionInterface()
