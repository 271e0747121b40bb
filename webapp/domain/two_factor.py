"""Two-factor authentication as the pages use it: turning factors on and off,
recovery codes, the login's second step, and an admin's reset.

The mechanism (`webapp.security.two_factor`) checks codes and keeps secrets;
this layer decides what is allowed, audits every change and failure, and
says what the owner is to be mailed. Services add and flush; views commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from webapp.domain.audit import record
from webapp.domain.passkeys import passkey_count, remove_all_passkeys
from webapp.domain.recovery import Recovery, take_account_back
from webapp.extensions import db
from webapp.i18n import _, _l
from webapp.models import RefreshToken, RevokeReason, User
from webapp.security import devices, throttle
from webapp.security import two_factor as mechanism
from webapp.security.client import client_ip

ROLE_REQUIRES = _l("Your role requires two-factor authentication.")
CANNOT_TURN_OFF = _l(
    "Your role requires two-factor authentication, so the authenticator app "
    "cannot be turned off while it is your only second factor."
)
ALREADY_ON = _l("The authenticator app is already on.")
NO_SECOND_FACTOR = _l("Turn on the authenticator app first.")


class TwoFactorError(Exception):
    """A two-factor change was refused; the message says why, for the page."""


@dataclass(frozen=True)
class SecurityOverview:
    """What /account/security shows about the sign-in methods."""

    totp_on: bool
    recovery_codes_left: int
    role_requires: bool


def security_overview(user: User) -> SecurityOverview:
    """Describe the user's sign-in methods."""
    on = mechanism.authenticator(user.id) is not None
    return SecurityOverview(
        totp_on=on,
        recovery_codes_left=mechanism.recovery_codes_left(user.id) if on else 0,
        role_requires=user.role.mfa_required,
    )


def needs_setup(user: User) -> bool:
    """Return whether the user's role requires a second factor they do not have.

    Read from what the one query of the request loaded: no query of its own.
    """
    return bool(user.role.mfa_required and not user.has_second_factor)


def device_passed(device: RefreshToken | None) -> bool:
    """Return whether this device passed a second factor."""
    return device is not None and device.mfa_at is not None


# --- set-up and removal ----------------------------------------------------------


def turn_on_totp(
    user: User, device: RefreshToken, secret: str, code: str, *, sign_out_others: bool
) -> list[str] | None:
    """Turn the authenticator app on if `code` is right for `secret`.

    Return the new recovery codes, or None for a wrong code. This device
    counts as having passed a second factor; the others are signed out when
    asked.
    """
    if mechanism.authenticator(user.id) is not None:
        raise TwoFactorError(ALREADY_ON)
    step = mechanism.matching_step(secret, mechanism.normalize_code(code))
    if step is None:
        record("mfa_failed", target_user=user, details={"during": "setup"})
        return None
    try:
        with db.session.begin_nested():
            mechanism.add_authenticator(user, secret, step)
    except IntegrityError:  # turned on a moment ago from another browser
        raise TwoFactorError(ALREADY_ON) from None
    codes = mechanism.replace_recovery_codes(user.id)
    mechanism.mark_device_passed(device)
    others = 0
    if sign_out_others:
        others = devices.revoke_user_devices(user.id, RevokeReason.USER, keep_id=device.id)
    mechanism.refresh_has_second_factor(user)
    record("totp_enabled", target_user=user, details={"others_signed_out": others})
    record("recovery_codes_generated", target_user=user, details={"count": len(codes)})
    return codes


def has_other_second_factor(user: User, besides: str) -> bool:
    """Return whether a second factor remains besides `besides` ("totp" or "passkey").

    Without the authenticator app, a passkey remains; without one passkey,
    the app or another passkey.
    """
    if besides == "totp":
        return passkey_count(user) > 0
    return mechanism.authenticator(user.id) is not None or passkey_count(user) > 1


def second_factor_added(user: User, device: RefreshToken) -> None:
    """A passkey was added in this session: the device passed a second factor."""
    mechanism.mark_device_passed(device)
    mechanism.refresh_has_second_factor(user)


def second_factor_removed(user: User) -> None:
    """A passkey was removed: re-read whether the user still has a second factor."""
    mechanism.refresh_has_second_factor(user)


def refuse_removing_the_last_second_factor(user: User, besides: str) -> None:
    """Raise TwoFactorError when the role requires a second factor and `besides` is the last."""
    if user.role.mfa_required and not has_other_second_factor(user, besides):
        raise TwoFactorError(
            _("Your role requires two-factor authentication. Add another before removing this one.")
        )


def turn_off_totp(user: User) -> None:
    """Turn the authenticator app off, unless the role needs it as the last second factor."""
    if mechanism.authenticator(user.id) is None:
        return
    other = has_other_second_factor(user, besides="totp")
    if user.role.mfa_required and not other:
        raise TwoFactorError(CANNOT_TURN_OFF)
    mechanism.remove_authenticator(user.id)
    if not other:
        # Recovery codes stand in for a second factor; with none left they mean nothing.
        mechanism.clear_recovery_codes(user.id)
    mechanism.refresh_has_second_factor(user)
    record("totp_disabled", target_user=user)


def new_recovery_codes(user: User) -> list[str]:
    """Void the user's recovery codes and return 10 new ones."""
    if not user.has_second_factor:
        raise TwoFactorError(NO_SECOND_FACTOR)
    codes = mechanism.replace_recovery_codes(user.id)
    record("recovery_codes_generated", target_user=user, details={"count": len(codes)})
    return codes


@dataclass(frozen=True)
class Reset:
    """What an admin's two-factor reset removed."""

    devices: int
    passkeys: int


def reset_two_factor(user: User) -> Reset:
    """An admin's reset: remove every second factor, passkeys included, and sign out everywhere.

    A lost or planted passkey would otherwise still sign in as both factors.
    """
    mechanism.remove_authenticator(user.id)
    mechanism.clear_recovery_codes(user.id)
    passkeys = remove_all_passkeys(user)
    signed_out = devices.revoke_user_devices(user.id, RevokeReason.ADMIN)
    take_account_back(user, Recovery.ADMIN_TWO_FACTOR_RESET)
    mechanism.refresh_has_second_factor(user)
    record("mfa_reset", target_user=user, details={"devices": signed_out, "passkeys": passkeys})
    return Reset(devices=signed_out, passkeys=passkeys)


# --- the login's second step --------------------------------------------------------


def _backoff_counters(user: User) -> list[throttle.Bucket]:
    """The account's backoff counters, and those only a passed second factor
    clears (a right password does not, so knowing the password does not buy
    fresh guesses at the code)."""
    ip = client_ip()
    return throttle.buckets(throttle.account_subject(user.id), ip) + throttle.buckets(
        f"second-factor:{user.id}", ip
    )


def verify_second_factor(user: User, code: str) -> mechanism.CodeCheck:
    """Check a code typed at the second step; its `method` is None when refused.

    Every code counts toward the account's backoff before it is checked,
    so simultaneous guesses cannot slip past the threshold; while it waits
    this raises Throttled without checking. Failures and recovery codes
    used are audited; a replayed authenticator code is marked so (the
    owner is told).
    """
    counters = _backoff_counters(user)
    throttle.count_attempt(counters)
    result = mechanism.check_code(user, code)
    if result.method is None:
        details = {"during": "login", **({"replayed": True} if result.replayed else {})}
        record("mfa_failed", actor=user, target_user=user, details=details)
        return result
    throttle.succeeded(counters)
    if result.method == mechanism.METHOD_RECOVERY:
        left = mechanism.recovery_codes_left(user.id)
        record("recovery_code_used", actor=user, target_user=user, details={"left": left})
    return result
