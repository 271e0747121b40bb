"""Access tokens for apps: short-lived JWTs signed with ES256.

Why PyJWT (with `cryptography`, pinned already) rather than joserfc: we
need JWS with one algorithm, nothing of JWE, and PyJWT does exactly that,
is the library most Flask code already uses (Flask-JWT-Extended builds on
it), and makes the algorithm allow-list a required argument of `decode`,
so `alg: none` and HS256-with-the-public-key cannot slip in by default.

Keys. The signing key is an EC P-256 private key in PEM, from
JWT_PRIVATE_KEY_FILE or JWT_PRIVATE_KEY; production refuses to start
without one, development creates `instance/jwt_private_key.pem` once and
keeps it. Each key is named by its RFC 7638 thumbprint (`kid`).

Rotation. Put the new private key in place and the old key's public half
in JWT_RETIRED_PUBLIC_KEYS_FILE (PEM, one or more keys): tokens signed with
it keep verifying, and it stays in the JWKS, until they have expired
(API_ACCESS_MINUTES); then remove it from the file.

A valid signature is not the whole check: Keystone's own API also reads
the device (`sid`) and the user at every request (`devices.load_token_user`),
so a revoked device stops at once. Other services verifying with the JWKS
accept a token until its `exp`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app

ALGORITHM = "ES256"
EXTENSION_KEY = "webapp.access_tokens"
DEVELOPMENT_KEY_FILE = "jwt_private_key.pem"
VERIFIED_TOKENS = 4096  # per process; cleared when full
REQUIRED_CLAIMS = ["iss", "sub", "sid", "iat", "exp", "jti", "amr"]
_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


class KeyConfigError(RuntimeError):
    """The signing key is missing or is not an EC P-256 key."""


class InvalidToken(Exception):
    """The token is malformed, expired, wrongly signed or not ours."""


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: uuid.UUID
    device_id: int
    amr: tuple[str, ...]
    issued_at: int
    expires_at: int


@dataclass
class KeySet:
    """The signing key and every public key that verifies (the current one first)."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str
    public_keys: dict[str, ec.EllipticCurvePublicKey]
    jwks: dict
    # Tokens verified already: token -> claims (see `verify`).
    verified: dict[str, AccessClaims] = field(default_factory=dict)


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode("ascii")


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict:
    """Return the public key as a JWK with its `kid` (RFC 7638 thumbprint)."""
    numbers = public_key.public_numbers()
    members = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x), "y": _b64(numbers.y)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": ALGORITHM}


def _require_p256(key: object, where: str) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        raise KeyConfigError(f"{where} must be an EC P-256 key (for ES256)")


def _load_private_key(pem: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"{where} is not a PEM private key without a password") from exc
    _require_p256(key, where)
    return key  # type: ignore[return-value]


def _development_key(instance_path: Path) -> bytes:
    """Create a signing key in instance/ once and keep it across restarts."""
    key_file = instance_path / DEVELOPMENT_KEY_FILE
    if key_file.exists():
        return key_file.read_bytes()
    instance_path.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return pem


def load_keys(config: dict, instance_path: str) -> KeySet:
    """Build the key set from the configuration (see the module's docstring)."""
    if config.get("JWT_PRIVATE_KEY"):
        pem, where = config["JWT_PRIVATE_KEY"].encode("ascii"), "JWT_PRIVATE_KEY"
    elif config.get("JWT_PRIVATE_KEY_FILE"):
        path = Path(config["JWT_PRIVATE_KEY_FILE"])
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyConfigError(f"JWT_PRIVATE_KEY_FILE cannot be read: {path}") from exc
        where = "JWT_PRIVATE_KEY_FILE"
    elif config["ENV_NAME"] == "production":
        raise KeyConfigError(
            "JWT_PRIVATE_KEY_FILE is required when WEBAPP_ENV=production: an EC P-256 "
            "private key in PEM, shared by every process (README, 'Token API for apps')"
        )
    else:
        pem, where = _development_key(Path(instance_path)), "the development key"
    private_key = _load_private_key(pem, where)
    current = public_jwk(private_key.public_key())
    public_keys = {current["kid"]: private_key.public_key()}
    jwks = [current]
    retired_file = config.get("JWT_RETIRED_PUBLIC_KEYS_FILE")
    if retired_file:
        try:
            text = Path(retired_file).read_text()
        except OSError as exc:
            raise KeyConfigError(
                f"JWT_RETIRED_PUBLIC_KEYS_FILE cannot be read: {retired_file}"
            ) from exc
        for block in _PEM_BLOCK.findall(text):
            key = serialization.load_pem_public_key(block.encode("ascii"))
            _require_p256(key, "JWT_RETIRED_PUBLIC_KEYS_FILE")
            jwk = public_jwk(key)  # type: ignore[arg-type]
            if jwk["kid"] not in public_keys:
                public_keys[jwk["kid"]] = key  # type: ignore[assignment]
                jwks.append(jwk)
    return KeySet(private_key, current["kid"], public_keys, {"keys": jwks})


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = load_keys(app.config, app.instance_path)


def _keys() -> KeySet:
    return current_app.extensions[EXTENSION_KEY]


def jwks() -> dict:
    """Return the public keys that verify our tokens, as a JWK Set."""
    return _keys().jwks


def issue(user_id: uuid.UUID, device_id: int, amr: list[str]) -> tuple[str, int]:
    """Sign an access token for a device; return it and its lifetime in seconds."""
    keys = _keys()
    lifetime = current_app.config["API_ACCESS_MINUTES"] * 60
    now = int(time.time())
    claims = {
        "iss": current_app.config["PUBLIC_URL"],
        "sub": str(user_id),
        "sid": str(device_id),
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
        "amr": list(amr),
    }
    token = jwt.encode(claims, keys.private_key, algorithm=ALGORITHM, headers={"kid": keys.kid})
    return token, lifetime


def verify(token: str) -> AccessClaims:
    """Return the claims of a token we signed and that has not expired; else raise InvalidToken.

    Only ES256 is accepted (the allow-list), only with a key of ours named
    by the header's `kid`, and only with our issuer. An app sends the same
    token with each request for its few minutes: a token verified once is
    remembered (per process, per key set) and only its expiry is checked
    again, as `security/sessions.py` does for session cookies.
    """
    keys = _keys()
    known = keys.verified.get(token)
    if known is not None:
        if known.expires_at > time.time():
            return known
        keys.verified.pop(token, None)
        raise InvalidToken("expired")
    claims = _verify_signed(keys, token)
    if len(keys.verified) >= VERIFIED_TOKENS:
        keys.verified.clear()
    keys.verified[token] = claims
    return claims


def _verify_signed(keys: KeySet, token: str) -> AccessClaims:
    """Check a token's signature, header and claims (PyJWT does the JOSE work)."""
    options = {"require": REQUIRED_CLAIMS}
    issuer = current_app.config["PUBLIC_URL"]
    try:
        kid = keys.kid
        try:
            # One parse for the usual case, a token of the current key: PyJWT
            # checks a token character by character, so not twice.
            found = jwt.decode_complete(
                token, keys.public_keys[kid], algorithms=[ALGORITHM], issuer=issuer, options=options
            )
        except jwt.InvalidSignatureError:
            kid = jwt.get_unverified_header(token).get("kid")
            if kid == keys.kid or kid not in keys.public_keys:
                raise
            found = jwt.decode_complete(
                token, keys.public_keys[kid], algorithms=[ALGORITHM], issuer=issuer, options=options
            )
        header, claims = found["header"], found["payload"]
        # The header must name the key that made the signature, with the one algorithm.
        if header.get("kid") != kid or header.get("alg") != ALGORITHM:
            raise InvalidToken("wrong key id or algorithm")
        amr = claims["amr"]
        if not isinstance(amr, list) or not all(isinstance(item, str) for item in amr):
            raise InvalidToken("amr")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            device_id=int(claims["sid"]),
            amr=tuple(amr),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidToken(str(exc)) from None
