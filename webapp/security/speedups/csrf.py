"""New CSRF tokens, exactly as Flask-WTF makes them, with less work.

Flask-WTF's `generate_csrf` builds an itsdangerous serializer for every
new token, tries to zlib-compress its 42-byte payload (a quoted 40-digit
hex string, which compression never shortens) and signs through hmac's
pure-Python path (itsdangerous names SHA-1 through a function of its
own). Every page that starts a session makes one: the login page, every
sign-in. Here the serializer is built once per key, nothing is
compressed, and OpenSSL computes the same HMAC-SHA1: a session's signed
token is byte for byte the one Flask-WTF would make from it, and
Flask-WTF (`CSRFProtect`, the forms) checks them as before. Nothing here
validates a token.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections import OrderedDict

from flask import current_app, g, session
from flask_wtf.csrf import validate_csrf
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer
from wtforms.csrf.core import CSRF

from webapp.security.speedups.signing import KeyCachingSigner, SignerReusingSerializer

SALT = "wtf-csrf-token"  # Flask-WTF's


class _UncompressedSerializer(SignerReusingSerializer):
    """URL-safe payloads never compressed (for payloads compression cannot shorten)."""

    def dump_payload(self, obj) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


@functools.lru_cache(maxsize=8)
def _serializer(secret_key: str | bytes) -> URLSafeTimedSerializer:
    return _UncompressedSerializer(
        secret_key,
        salt=SALT,
        signer=KeyCachingSigner,
        signer_kwargs={"digest_method": hashlib.sha1},
    )


# The signed form of a session's token, per process: with no time limit
# (WTF_CSRF_TIME_LIMIT None) a signature made at an earlier request of the
# same session is as good, and a signed-in page then signs nothing.
_SIGNED: OrderedDict[tuple, str] = OrderedDict()
_SIGNED_MAX = 4096


def generate_csrf() -> str:
    """Return this request's signed CSRF token, as `flask_wtf.csrf.generate_csrf` does.

    The raw token lives in the session (made on first use); the signed one
    is kept in `g` for the rest of the request, where Flask-WTF looks too.
    """
    config = current_app.config
    field_name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    token = g.get(field_name)
    if token is None:
        raw = session.get(field_name)
        if not isinstance(raw, str):
            # 160 random bits in hex: the form of Flask-WTF's raw token
            # (which gets them by hashing 64 random bytes with SHA-1).
            raw = session[field_name] = secrets.token_hex(20)
        secret_key = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        timeless = config.get("WTF_CSRF_TIME_LIMIT") is None
        token = _SIGNED.get((secret_key, raw)) if timeless else None
        if token is None:
            token = _serializer(secret_key).dumps(raw)
            if timeless:
                _SIGNED[(secret_key, raw)] = token
                if len(_SIGNED) > _SIGNED_MAX:
                    _SIGNED.popitem(last=False)
        setattr(g, field_name, token)
    return token


class FormCSRF(CSRF):
    """The forms' CSRF field (WTForms' `Meta.csrf_class`): Flask-WTF's token and check.

    What Flask-WTF's `FlaskForm` does, through public APIs only: a new token
    comes from `generate_csrf` above, and a submitted one is checked by
    Flask-WTF's `validate_csrf` with the form's settings.
    """

    def setup_form(self, form):
        self.meta = form.meta
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field) -> str:
        return generate_csrf()

    def validate_csrf_token(self, form, field) -> None:
        validate_csrf(
            field.data,
            self.meta.csrf_secret,
            self.meta.csrf_time_limit,
            self.meta.csrf_field_name,
        )
