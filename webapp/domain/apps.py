"""Apps signed in through the token API: each sign-in is a device, like a browser's.

An app signs in with a password (and a second factor when the account has
one, through an `mfa_token`) and gets a short-lived access token (a JWT,
`security/access_tokens.py`) and a refresh token: the `series.secret` of
the remember cookie on its own `refresh_tokens` row (kind "app"), with the
same rotation, grace period and theft detection (`security/devices.py`).
The rules are the pages' own: the same password check and backoff, the
same audit rows, the same new-sign-in mail. Services add and flush; the
API's views commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from webapp.domain.audit import record
from webapp.domain.notices import mail_notice
from webapp.domain.two_factor import needs_setup, verify_second_factor
from webapp.extensions import db
from webapp.models import DeviceKind, RefreshToken, RevokeReason, User
from webapp.security import access_tokens, devices, mfa_tokens, signals
from webapp.security import two_factor as mechanism
from webapp.security.client import client_ip, user_agent
from webapp.security.recovery import pending_step_is_current

# RFC 8176 authentication method references, from how the device signed in.
AMR_PASSWORD = "pwd"
AMR_OTP = "otp"  # an authenticator code or a recovery code (both one-time passwords)
AMR_HARDWARE_KEY = "hwk"
SECOND_FACTORS = frozenset({AMR_OTP, AMR_HARDWARE_KEY})
# Not an RFC 8176 method: says the role requires a second factor the user has not set up,
# so the token reaches only /me until they do.
AMR_SETUP_REQUIRED = "mfa_setup_required"


@dataclass(frozen=True)
class Tokens:
    """What an app gets from a sign-in or a refresh."""

    access_token: str
    expires_in: int
    refresh_token: str
    device_id: int

    def as_json(self) -> dict:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "device_id": self.device_id,
        }


def amr_for(device: RefreshToken) -> list[str]:
    """Return the authentication methods the device's sign-in used."""
    method = device.auth_method or ""
    amr = [AMR_PASSWORD] if method.startswith("password") else []
    if "totp" in method or "recovery" in method:
        amr.append(AMR_OTP)
    if "passkey" in method:
        amr.append(AMR_HARDWARE_KEY)
    if device.mfa_at is None and needs_setup(device.user):
        amr.append(AMR_SETUP_REQUIRED)
    return amr


def passed_second_factor(amr: tuple[str, ...]) -> bool:
    """Return whether an access token's `amr` shows a second factor."""
    return not SECOND_FACTORS.isdisjoint(amr)


def _issue(device: RefreshToken, refresh_token: str) -> Tokens:
    token, lifetime = access_tokens.issue(device.user_id, device.id, amr_for(device))
    return Tokens(token, lifetime, refresh_token, device.id)


def sign_in_app(
    user: User,
    device_name: str,
    *,
    method: str = mechanism.METHOD_PASSWORD,
    second_factor: bool = False,
) -> Tokens:
    """Add the app's device and return its tokens; audited, and mailed when new.

    The view commits.
    """
    device, refresh_token = devices.create_device(
        user,
        remember=True,
        user_agent=user_agent(),
        ip_address=client_ip(),
        auth_method=method,
        second_factor=second_factor,
        kind=DeviceKind.APP,
        name=device_name,
    )
    user.current_device = device
    record(
        "login",
        actor=user,
        target_user=user,
        device=device,
        details={"method": method, "app": device_name},
    )
    # The account domain notes the new device (and mails its owner), as for a browser.
    signals.user_signed_in.send(current_app._get_current_object(), user=user, device=device)
    # An app's device is remembered, so it always has a refresh token.
    return _issue(device, refresh_token or "")


def refresh(raw: str) -> Tokens | None:
    """Rotate an app's refresh token and issue a new access token; None if refused.

    A replaced token coming back after the grace period revokes the device
    as stolen (the mechanism signals it; the owner is mailed).
    """
    restored = devices.restore_from_cookie(raw, kind=DeviceKind.APP)
    if restored.user is None or restored.new_token is None:
        return None
    return _issue(restored.user.current_device, restored.new_token)


def sign_out_app(user: User) -> None:
    """Revoke the device of the app making this request."""
    record("logout", actor=user, target_user=user)
    devices.revoke_device(user.current_device, RevokeReason.LOGOUT)


# --- the second step: the `mfa_token` --------------------------------------------


def mfa_token_is_current(user: User, issued_at: datetime) -> bool:
    """Return whether an `mfa_token` issued then may still be used for `user`.

    Taking the account back (`domain.recovery`) ends every pending second
    step, the API's included: a token issued before it is refused.
    """
    return pending_step_is_current(user, issued_at)


def start_second_step(user: User, device_name: str) -> str:
    """Return an `mfa_token` for a user whose password was right and who has a second factor."""
    return mfa_tokens.issue(user, device_name)


@dataclass(frozen=True)
class SecondStep:
    """The outcome of a code sent with an `mfa_token`."""

    tokens: Tokens | None = None
    token_dead: bool = False  # unknown, used, expired, or too many wrong codes
    wrong_code: bool = False


def finish_second_step(mfa_token: str, code: str) -> SecondStep:
    """Check a code for a pending step; sign the app in when it is right.

    Wrong codes count toward the account's backoff (the `/login/verify`
    counters; this raises Throttled while they wait) and toward the
    step's own MFA_MAX_ATTEMPTS. The view commits.
    """
    step = mfa_tokens.pending(mfa_token)
    if step is None:
        return SecondStep(token_dead=True)
    user = db.session.get(User, step.user_id)
    if user is None or not user.is_active or not mfa_token_is_current(user, step.issued_at):
        return SecondStep(token_dead=True)
    result = verify_second_factor(user, code)
    if result.method is None:
        mfa_tokens.count_failure(step)
        if result.replayed:
            # A right code used before: someone may be watching the owner's screen.
            mail_notice("totp_replayed", user, user_agent(), client_ip())
        return SecondStep(wrong_code=True)
    if not mfa_tokens.use(step):
        return SecondStep(token_dead=True)
    tokens = sign_in_app(user, step.device_name, method=result.method, second_factor=True)
    if result.method == mechanism.METHOD_RECOVERY:
        mail_notice("recovery_code_used", user, user_agent(), client_ip())
    return SecondStep(tokens=tokens)
