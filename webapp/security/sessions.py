"""Flask's signed-cookie sessions, with the signing work done once per process.

For every request Flask builds a new itsdangerous serializer (whose
constructor test-dumps a payload to learn its type), and every signature
re-derives the signing key from the secret key (an HMAC). Both depend only
on the secret keys, so they are kept; the cookie is byte for byte the
same as Flask's.
"""

from __future__ import annotations

import functools
import hmac

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes


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
    """Signed-cookie sessions whose serializer is built once per set of secret keys."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        # itsdangerous expects the current key last, after the fallbacks.
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = self._serializers[keys] = URLSafeTimedSerializer(
                list(keys),
                salt=self.salt,
                serializer=self.serializer,
                signer=_KeyCachingSigner,
                signer_kwargs={
                    "key_derivation": self.key_derivation,
                    "digest_method": self.digest_method,
                },
            )
        return serializer


def init_app(app: Flask) -> None:
    app.session_interface = CachedSigningSessionInterface()
