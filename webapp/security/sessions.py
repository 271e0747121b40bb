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
import hmac
import time

from flask import Flask, Request
from flask.json import dumps as json_dumps
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

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
    nothing. Those are written at once, the same JSON Flask writes.
    """

    def dumps(self, value) -> str:
        if (
            type(value) is dict
            and all(type(item) in _PLAIN_TYPES for item in value.values())
            and not (len(value) == 1 and next(iter(value)) in self.tags)
        ):
            return json_dumps(value, separators=(",", ":"))
        return super().dumps(value)


@functools.lru_cache(maxsize=32)
def _hmac_derived_key(secret_key: bytes, salt: bytes, digest_method) -> bytes:
    return hmac.new(secret_key, salt, digest_method).digest()


class _KeyCachingSigner(TimestampSigner):
    """A TimestampSigner that derives each secret key's signing key once."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if self.key_derivation != "hmac":
            return super().derive_key(secret_key)
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        return _hmac_derived_key(key, self.salt, self.digest_method)


class CachedSigningSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions; serializers built, and cookies verified, once."""

    # Flask names SHA-1 through a function of its own (so that importing it
    # never touches a hash a FIPS build may refuse), which sends `hmac` down
    # its pure-Python path: two hash objects and a key translation for every
    # signature. OpenSSL's constructor, named directly, takes the C path.
    # The same HMAC-SHA1: cookies are unchanged.
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
            serializer = URLSafeTimedSerializer(
                list(keys),
                salt=self.salt,
                serializer=self.serializer,
                signer=_KeyCachingSigner,
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


def init_app(app: Flask) -> None:
    app.session_interface = CachedSigningSessionInterface()
