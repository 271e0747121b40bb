"""A software WebAuthn authenticator for server-side tests: real keys, real signatures.

It answers the options our server sends exactly as a browser with a
platform authenticator would (packed as the JSON `static/js/passkeys.js`
posts): an EC P-256 key from `cryptography`, CBOR from py_webauthn's own
helper, "none" attestation. Every field can be bent to play an attacker:
another origin, another RP ID, no user verification, a counter that goes
backwards, a signature that does not match.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

ORIGIN = "http://localhost:5000"
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes.fromhex("01020304050607080910111213141516")


@dataclass
class SoftAuthenticator:
    """One passkey on one authenticator."""

    origin: str = ORIGIN
    synced: bool = False
    counter: bool = True
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sign_count: int = 0
    rp_id: str | None = None
    user_handle: bytes | None = None

    @property
    def id(self) -> str:
        return bytes_to_base64url(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return encode_cbor(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _flags(self, verified: bool, attested: bool = False) -> int:
        flags = UP | (UV if verified else 0)
        if self.synced:
            flags |= BE | BS
        return flags | (AT if attested else 0)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()

    def create(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        verified: bool = True,
    ) -> str:
        """Answer registration options: make the credential, return the response JSON."""
        self.rp_id = rp_id or options["rp"]["id"]
        self.user_handle = base64url_to_bytes(options["user"]["id"])
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([self._flags(verified, attested=True)])
            + self.sign_count.to_bytes(4, "big")
            + AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self._cose_key()
        )
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": self.id,
                "rawId": self.id,
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": bytes_to_base64url(client_data),
                    "attestationObject": bytes_to_base64url(attestation),
                    "transports": ["internal"],
                },
            }
        )

    def get(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        verified: bool = True,
        sign_count: int | None = None,
        user_handle: bytes | None | str = "own",
        tamper: bool = False,
    ) -> str:
        """Answer authentication options with a signed assertion, return the response JSON."""
        if sign_count is None:
            if self.counter:
                self.sign_count += 1
            sign_count = self.sign_count if self.counter else 0
        rp = rp_id or options.get("rpId") or self.rp_id
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags(verified)])
            + sign_count.to_bytes(4, "big")
        )
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        if tamper:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        handle = self.user_handle if user_handle == "own" else user_handle
        return json.dumps(
            {
                "id": self.id,
                "rawId": self.id,
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": bytes_to_base64url(client_data),
                    "authenticatorData": bytes_to_base64url(auth_data),
                    "signature": bytes_to_base64url(signature),
                    "userHandle": bytes_to_base64url(handle) if handle else None,
                },
            }
        )
