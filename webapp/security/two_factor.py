"""Second factors: authenticator codes (TOTP), recovery codes, and the login's second step.

- TOTP (RFC 6238): 30-second steps, 6 digits, one step of clock drift either
  way. A code is accepted only for a step later than the last one accepted,
  written with one conditional UPDATE, so a code is never accepted twice,
  however many processes serve.
- Secrets are encrypted at rest with Fernet; the key is MFA_ENCRYPTION_KEY
  (one or more Fernet keys, comma-separated, the first encrypts), or derived
  from SECRET_KEY by HKDF when unset.
- Recovery codes: 12 characters of Crockford's base32 (60 bits), stored as
  an HMAC-SHA256 under a key derived the same way; each works once (one
  conditional UPDATE).
- The second step of a login lives in the Flask session: the user, the
  "Remember this device" choice and the `next` target, for
  MFA_PENDING_SECONDS. No device exists and nobody is signed in until it
  is passed. A step begun before the owner took the account back
  (`webapp.security.recovery`) ends.

No routes, templates or mail here: the account domain
(`webapp.domain.two_factor`) audits and mails.
"""

from __future__ import annotations

import base64
import hmac
import io
import re
import secrets
import time
import uuid
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, session
from markupsafe import Markup
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from webapp.extensions import db
from webapp.models import RecoveryCode, RefreshToken, TotpAuthenticator, User, utc_now
from webapp.security.recovery import pending_step_is_current

ISSUER = "Keystone"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32
RECOVERY_CODE_LENGTH = 12  # 60 bits
# Long enough for any code typed with spaces or dashes; anything longer is no code.
CODE_INPUT_MAX = 64

PENDING_KEY = "second_step"
SETUP_KEY = "totp_setup"
SHOWN_CODES_KEY = "recovery_codes_once"
SETUP_TTL_SECONDS = 30 * 60
SHOWN_CODES_TTL_SECONDS = 10 * 60

ACCEPTED = "accepted"
REPLAYED = "replayed"
WRONG = "wrong"

METHOD_PASSWORD = "password"
METHOD_TOTP = "password+totp"
METHOD_RECOVERY = "password+recovery"

_SIX_DIGITS = re.compile(r"^[0-9]{6}$")
_SEPARATORS = re.compile(r"[\s-]+")


class MFAConfigError(RuntimeError):
    """MFA_ENCRYPTION_KEY does not hold Fernet keys."""


# --- keys -------------------------------------------------------------------


def _derive(purpose: bytes) -> bytes:
    """Derive 32 bytes for `purpose` from SECRET_KEY (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keystone " + purpose
    ).derive(current_app.config["SECRET_KEY"].encode("utf-8"))


def _fernet() -> MultiFernet:
    configured = current_app.config.get("MFA_ENCRYPTION_KEY") or ""
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    try:
        if keys:
            return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise MFAConfigError(
            "MFA_ENCRYPTION_KEY must be one or more Fernet keys, comma-separated "
            "(make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc
    return MultiFernet([Fernet(base64.urlsafe_b64encode(_derive(b"mfa secrets")))])


def encrypt(text: str) -> str:
    """Return `text` encrypted (a Fernet token)."""
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str, ttl: int | None = None) -> str | None:
    """Return the text of a Fernet token, or None when it is not ours, altered or too old."""
    try:
        return _fernet().decrypt(token.encode("ascii"), ttl=ttl).decode("utf-8")
    except (InvalidToken, ValueError, UnicodeError):
        return None


# --- TOTP -------------------------------------------------------------------


def new_secret() -> str:
    """Return a new authenticator secret: 160 random bits, base32."""
    return pyotp.random_base32(length=32)


def formatted_secret(secret: str) -> str:
    """Return the secret in groups of four, for typing by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=ISSUER
    )


def qr_svg(uri: str, title: str) -> Markup:
    """Return the QR code of `uri` as inline SVG: no data: URI, no style attribute.

    segno draws with presentation attributes (stroke), which a strict CSP
    allows; a `style` attribute would be refused, so it is checked for.
    """
    buffer = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        buffer,
        kind="svg",
        xmldecl=False,
        svgns=True,
        nl=False,
        scale=4,
        border=4,
        title=title,
        svgclass="qr-code",
        lineclass=None,
        dark="#000",
        light="#fff",
    )
    svg = buffer.getvalue().decode("utf-8")
    if re.search(r"\sstyle\s*=|<style", svg, re.IGNORECASE):
        raise RuntimeError("the QR code SVG carries a style, which the CSP would refuse")
    svg = svg.replace("<svg ", '<svg role="img" aria-label="' + _attr(title) + '" ', 1)
    # segno's own markup of our URI, checked above: safe to put in the page as is.
    return Markup(svg)  # nosec B704


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """Return the step whose code `code` is, within the allowed drift, or None."""
    if not _SIX_DIGITS.match(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    base = current_step(now)
    found = None
    for step in range(base - DRIFT_STEPS, base + DRIFT_STEPS + 1):
        # Every candidate is compared, in constant time, whichever matches.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def normalize_code(raw: str) -> str:
    """Return a typed code without spaces and dashes, lower case."""
    return _SEPARATORS.sub("", raw or "")[:CODE_INPUT_MAX].lower()


def authenticator(user_id: uuid.UUID) -> TotpAuthenticator | None:
    return db.session.scalars(
        select(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id)
    ).first()


def add_authenticator(user: User, secret: str, accepted_step: int) -> TotpAuthenticator:
    """Store the user's authenticator; the step of the code that set it up is spent."""
    found = TotpAuthenticator(
        user_id=user.id,
        secret_encrypted=encrypt(secret),
        last_step=accepted_step,
        created_at=utc_now(),
        last_used_at=utc_now(),
    )
    db.session.add(found)
    db.session.flush()
    return found


def remove_authenticator(user_id: uuid.UUID) -> bool:
    """Delete the user's authenticator; return whether there was one."""
    result = db.session.execute(
        delete(TotpAuthenticator)
        .where(TotpAuthenticator.user_id == user_id)
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) > 0


def totp_outcome(user_id: uuid.UUID, code: str, now: float | None = None) -> str:
    """Check an authenticator code: ACCEPTED (its step is now spent), REPLAYED or WRONG.

    One conditional UPDATE moves `last_step` forward: of two requests with
    the same code, in any processes, exactly one wins; a code whose step is
    not later than the last accepted one is REPLAYED.
    """
    found = authenticator(user_id)
    if found is None:
        return WRONG
    secret = decrypt(found.secret_encrypted)
    if secret is None:
        return WRONG
    step = matching_step(secret, code, now)
    if step is None:
        return WRONG
    won = db.session.execute(
        update(TotpAuthenticator)
        .where(
            TotpAuthenticator.id == found.id,
            or_(TotpAuthenticator.last_step.is_(None), TotpAuthenticator.last_step < step),
        )
        .values(last_step=step, last_used_at=utc_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    return ACCEPTED if won == 1 else REPLAYED


# --- recovery codes -----------------------------------------------------------


def _recovery_hash(normalized: str) -> str:
    return hmac.new(_derive(b"recovery codes"), normalized.encode("ascii"), "sha256").hexdigest()


def _canonical_recovery(raw: str) -> str | None:
    """Return the stored form of a typed recovery code, or None if it cannot be one."""
    text = normalize_code(raw).translate(str.maketrans({"o": "0", "i": "1", "l": "1"}))
    if len(text) != RECOVERY_CODE_LENGTH or any(c not in RECOVERY_ALPHABET for c in text):
        return None
    return text


def replace_recovery_codes(user_id: uuid.UUID) -> list[str]:
    """Void the user's recovery codes and return 10 new ones (shown once, stored hashed)."""
    clear_recovery_codes(user_id)
    codes = []
    now = utc_now()
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        db.session.add(RecoveryCode(user_id=user_id, code_hash=_recovery_hash(raw), created_at=now))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    db.session.flush()
    return codes


def clear_recovery_codes(user_id: uuid.UUID) -> None:
    db.session.execute(
        delete(RecoveryCode)
        .where(RecoveryCode.user_id == user_id)
        .execution_options(synchronize_session=False)
    )


def use_recovery_code(user_id: uuid.UUID, raw: str) -> bool:
    """Return whether `raw` is an unused recovery code of the user, and spend it."""
    text = _canonical_recovery(raw)
    if text is None:
        return False
    won = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _recovery_hash(text),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utc_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    return won == 1


def recovery_codes_left(user_id: uuid.UUID) -> int:
    return (
        db.session.scalar(
            select(func.count(RecoveryCode.id)).where(
                RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of a code typed as a second factor."""

    method: str | None  # "password+totp", "password+recovery"; None: refused
    replayed: bool = False  # a right authenticator code, already used


def check_code(user: User, raw: str, now: float | None = None) -> CodeCheck:
    """Check `raw` as the user's second factor; a passing code is spent."""
    code = normalize_code(raw)
    if _SIX_DIGITS.match(code):
        outcome = totp_outcome(user.id, code, now)
        if outcome == ACCEPTED:
            return CodeCheck(METHOD_TOTP)
        return CodeCheck(None, replayed=outcome == REPLAYED)
    return CodeCheck(METHOD_RECOVERY if use_recovery_code(user.id, code) else None)


# --- the device -----------------------------------------------------------------


def mark_device_passed(device: RefreshToken) -> None:
    """Record that this device passed a second factor now (turning TOTP on in it)."""
    now = utc_now()
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == device.id)
        .values(mfa_at=now)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(device, "mfa_at", now)


def refresh_has_second_factor(user: User) -> None:
    """Re-read `user.has_second_factor` after a factor was added or removed."""
    db.session.refresh(user, ["has_second_factor"])


# --- the set-up secret, kept while the person retries ----------------------------


def setup_secret(user_id: uuid.UUID) -> str:
    """Return the secret being set up in this session, making one if needed.

    It is kept encrypted in the session, bound to the user, for
    SETUP_TTL_SECONDS: retrying a code never changes it.
    """
    token = session.get(SETUP_KEY)
    if isinstance(token, str):
        held = decrypt(token, ttl=SETUP_TTL_SECONDS)
        if held:
            owner, _, secret = held.partition(":")
            if owner == str(user_id) and secret:
                return secret
    secret = new_secret()
    session[SETUP_KEY] = encrypt(f"{user_id}:{secret}")
    return secret


def forget_setup_secret() -> None:
    session.pop(SETUP_KEY, None)


def keep_codes_to_show(user_id: uuid.UUID, codes: list[str]) -> None:
    """Hold new recovery codes, encrypted in the session, for the page that shows them once."""
    session[SHOWN_CODES_KEY] = encrypt(f"{user_id}:" + ",".join(codes))


def take_codes_to_show(user_id: uuid.UUID) -> list[str] | None:
    """Return the recovery codes to show, once: they leave the session now."""
    token = session.pop(SHOWN_CODES_KEY, None)
    if not isinstance(token, str):
        return None
    held = decrypt(token, ttl=SHOWN_CODES_TTL_SECONDS)
    if not held:
        return None
    owner, _, codes = held.partition(":")
    if owner != str(user_id) or not codes:
        return None
    return codes.split(",")


# --- the second step of a login ---------------------------------------------------


@dataclass(frozen=True)
class PendingStep:
    """A login whose password was right and whose second factor is still due."""

    user: User
    remember: bool
    next: str
    failures: int


def start_pending_step(user: User, *, remember: bool, next_url: str) -> None:
    """Begin the second step: a new session naming the user, for a few minutes.

    The session is new (cleared), so a step begun earlier in this browser
    is replaced and nothing of a previous session survives.
    """
    session.clear()
    session[PENDING_KEY] = {
        "user": str(user.id),
        "remember": bool(remember),
        "next": next_url or "",
        "issued": time.time(),
        "until": time.time() + current_app.config["MFA_PENDING_SECONDS"],
        "failures": 0,
    }


def pending_step() -> PendingStep | None:
    """Return the second step under way in this browser, if it has not expired."""
    data = session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return None
    try:
        until = float(data["until"])
        issued = float(data["issued"])
        user_id = uuid.UUID(str(data["user"]))
        failures = int(data.get("failures", 0))
    except (KeyError, TypeError, ValueError):
        end_pending_step()
        return None
    if until <= time.time():
        end_pending_step()
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or not pending_step_is_current(user, issued):
        # Gone, deactivated, or the owner took the account back since.
        end_pending_step()
        return None
    return PendingStep(
        user=user,
        remember=bool(data.get("remember")),
        next=str(data.get("next") or ""),
        failures=failures,
    )


def count_pending_failure() -> int:
    """Count a wrong code in this step; return how many so far."""
    data = dict(session.get(PENDING_KEY) or {})
    data["failures"] = int(data.get("failures", 0)) + 1
    session[PENDING_KEY] = data
    return data["failures"]


def end_pending_step() -> None:
    session.pop(PENDING_KEY, None)
