"""Taking an account back: the one rule every recovery action goes through.

When the owner acts to take the account back (a password change or reset,
"Sign out all other devices", "This wasn't me", an administrator's "Sign
out all devices" or "Reset two-factor", a stolen remember token seen),
nothing an intruder set up may survive it. Each of those actions calls
`take_account_back`, which:

- voids pending email-change links and clears the pending address (an
  intruder's change, confirmed later, would hand them the account);
- forgets the account's known browsers, all but the one acting when it is
  the owner's, so the intruder's next sign-in mails the new-browser alert;
- ends pending steps issued before now: the login's second step and the
  token API's `mfa_token` (`webapp.security.recovery`, checked when they
  come back, wherever they are kept), and open passkey ceremonies.

The action itself still signs out the devices it names (which ones, and
why, differ from action to action) and records its own audit row.
"""

from __future__ import annotations

from enum import StrEnum

from flask import has_request_context
from sqlalchemy import delete

from webapp.domain.audit import record
from webapp.extensions import db
from webapp.models import EmailPurpose, KnownBrowser, RefreshToken, RevokeReason, User
from webapp.security import devices, email_tokens, known_browsers
from webapp.security import passkeys as ceremony
from webapp.security.recovery import mark_recovered


class Recovery(StrEnum):
    """The actions that take an account back."""

    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    SIGNED_OUT_OTHERS = "signed_out_others"
    NOT_ME = "not_me"
    ADMIN_SIGN_OUT = "admin_sign_out"
    ADMIN_TWO_FACTOR_RESET = "admin_two_factor_reset"
    TOKEN_THEFT = "token_theft"
    EMAIL_CHANGE_CANCELLED = "email_change_cancelled"


# Where the owner acts in their own browser, that browser stays known. An
# administrator's browser is not the owner's, and a stolen token's request
# may come from the thief as well as from the owner.
_OWNER_ACTS_HERE = frozenset(
    {
        Recovery.PASSWORD_CHANGED,
        Recovery.PASSWORD_RESET,
        Recovery.SIGNED_OUT_OTHERS,
        Recovery.NOT_ME,
        Recovery.EMAIL_CHANGE_CANCELLED,
    }
)


def take_account_back(user: User, action: Recovery) -> None:
    """Close every door an intruder may have opened on `user` (the view commits)."""
    # A statement, not an attribute change: the user may be one the session
    # never loaded (a stolen token's, read on a connection of its own).
    mark_recovered(user, pending_email=None, pending_email_until=None)
    email_tokens.void(user, EmailPurpose.CHANGE)
    forget_browsers(user, keep_this_browser=action in _OWNER_ACTS_HERE)
    ceremony.void_challenges(user)


def sign_out_others(user: User, current_device: RefreshToken) -> int:
    """ "Sign out all other devices", from a page or the API: return how many were signed out."""
    count = devices.revoke_user_devices(user.id, RevokeReason.USER, keep_id=current_device.id)
    take_account_back(user, Recovery.SIGNED_OUT_OTHERS)
    record("device_revoked", target_user=user, details={"others": count})
    return count


def forget_browsers(user: User, *, keep_this_browser: bool) -> int:
    """Forget the account's known browsers (but this request's, if asked); return how many.

    Their next sign-in mails the new-browser alert again.
    """
    criteria = [KnownBrowser.user_id == user.id]
    presented = known_browsers.presented() if keep_this_browser and has_request_context() else None
    if presented is not None:
        criteria.append(KnownBrowser.browser_hash != known_browsers.hash_id(presented))
    result = db.session.execute(
        delete(KnownBrowser).where(*criteria).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
