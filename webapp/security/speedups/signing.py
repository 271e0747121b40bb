"""itsdangerous's timed signatures without its per-call set-up: the same bytes.

An itsdangerous serializer builds a new signer for every `dumps` and
`loads` (copying its key list and checking its separator each time), and
the signer derives its signing key from the secret key with an HMAC
before every signature. The session cookie and the CSRF token are signed
at every sign-in and every new visitor, so here a serializer keeps one
signer per salt, and the signer derives each key once and signs with
OpenSSL's one-shot HMAC. What they produce and accept is unchanged.
"""

from __future__ import annotations

import hmac

from itsdangerous import Signer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, want_bytes
from itsdangerous.signer import HMACAlgorithm


class KeyCachingSigner(TimestampSigner):
    """A TimestampSigner that derives each secret key's signing key once.

    Give it `digest_method=hashlib.sha1` (OpenSSL's constructor): Flask and
    itsdangerous name SHA-1 through a function of their own, which sends
    `hmac` down its pure-Python path. The same HMAC-SHA1 either way.
    """

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        derived = self.__dict__.setdefault("_derived", {})
        found = derived.get(key)
        if found is None:
            found = derived[key] = super().derive_key(key)
        return found

    def get_signature(self, value: str | bytes) -> bytes:
        if type(self.algorithm) is not HMACAlgorithm:
            return super().get_signature(value)
        digest = hmac.digest(self.derive_key(), want_bytes(value), self.algorithm.digest_method)
        return base64_encode(digest)


class SignerReusingSerializer(URLSafeTimedSerializer):
    """A URL-safe timed serializer that builds its signer once per salt.

    A signer holds only its settings, so one serves every call.
    """

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        signers = self.__dict__.setdefault("_signers", {})
        signer = signers.get(salt)
        if signer is None:
            signer = signers[salt] = super().make_signer(salt)
        return signer
