"""Email addresses people can trust: confirming them, changing them, and a way back.

- Confirmation: a link to `/verify-email/<token>` (48 hours) proves the
  owner reads the address; `users.email_verified_at` records when.
- Change: the new address gets a link (2 hours) and only following it
  switches the account; the old address is told at once, with a link
  (7 days) that cancels the change, restores it and signs out every device.
- `EMAIL_VERIFICATION=mandatory`: no sign-in before confirming, signup
  never says whether an address has an account, and accounts never
  confirmed are deleted after 7 days.

Services add and flush; the views commit. Mail goes out only once the
transaction that made its link commits (`send_after_commit`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from webapp.domain.audit import record
from webapp.domain.device_list import describe_user_agent
from webapp.domain.notices import public_url
from webapp.domain.recovery import Recovery, take_account_back
from webapp.domain.users import DuplicateAccount, create_user
from webapp.extensions import db
from webapp.i18n import _, _l
from webapp.mail import run_in_background, send_after_commit
from webapp.mail import send as send_mail
from webapp.models import EmailPurpose, RefreshToken, RevokeReason, User, utc_now
from webapp.security import devices, email_tokens, passwords, throttle

logger = logging.getLogger("webapp.domain")

MANDATORY = "mandatory"
OPTIONAL = "optional"
VERIFY_LIFETIME = timedelta(hours=48)
CHANGE_LIFETIME = timedelta(hours=2)
CANCEL_LIFETIME = timedelta(days=7)
UNCONFIRMED_KEPT = timedelta(days=7)
# Each limit is keyed to what its requester owns, so that nobody spends
# another's: an account's own confirmation mails (per address, and per
# account), an account's change requests, and what signups with one address
# send it (a new and a taken address alike, so the limit tells nobody which
# it is). The per-IP limit of "Change email" is on its view.
CONFIRMATION_MAIL_LIMIT = "1 per 2 minutes"
ACCOUNT_CONFIRMATION_LIMIT = "10 per day"
CHANGE_LIMIT = "3 per 10 minutes;10 per day"
SIGNUP_MAIL_LIMIT = "1 per 2 minutes"
TOO_SOON = _l("You asked for several changes a moment ago. Wait a few minutes, then try again.")


class AddressTaken(Exception):
    """Another account holds the address (it took it while the link waited)."""

    def __init__(self, email: str) -> None:
        super().__init__(email)
        self.email = email


class ChangeRefused(Exception):
    """The change cannot be asked for; the message says why, for the form."""


def verification_mandatory() -> bool:
    """Return whether an address must be confirmed before its account signs in."""
    return current_app.config["EMAIL_VERIFICATION"] == MANDATORY


def must_confirm_first(user: User) -> bool:
    """Return whether `user` may not sign in until their address is confirmed."""
    return verification_mandatory() and not user.email_confirmed


def mask(address: str) -> str:
    """Return an address with most of it hidden: "bob@example.com" -> "b***@e***.com"."""
    local, _, domain = address.rpartition("@")
    host, dot, tld = domain.rpartition(".")
    if not host:
        host, tld = tld, ""
    return f"{local[:1]}***@{host[:1]}***{dot}{tld}"


def _mail(
    to: str, subject: str, template: str, reader: tuple[str, str], context: dict[str, Any]
) -> None:
    send_mail(to, subject, template, language=reader[0], time_zone=reader[1], **context)


def _queue_mail(to: str, reader: User, subject: str, template: str, **context: Any) -> None:
    """Queue a mail to `to`, written in the language and time zone of `reader` (its account)."""
    send_after_commit(_mail, to, subject, template, (reader.language, reader.time_zone), context)


# --- confirmation ------------------------------------------------------------


def send_confirmation(user: User, *, signup: bool = False) -> bool:
    """Mail the user's address a confirmation link; False when its limit is spent.

    Each account's mails count per address and per account, so nobody
    else's request delays them. A signup's mail also counts against the
    address's signups, the counter a signup with a taken address spends
    too (`_report_signup_attempt`), so the limit tells nobody which it was.
    """
    if signup and not throttle.allow_address_mail("signup", user.email, SIGNUP_MAIL_LIMIT):
        return False
    if not (
        throttle.allow_mail("confirm", f"{user.id}|{user.email}", CONFIRMATION_MAIL_LIMIT)
        and throttle.allow_mail("confirm-account", str(user.id), ACCOUNT_CONFIRMATION_LIMIT)
    ):
        return False
    token = email_tokens.issue(user, EmailPurpose.VERIFY, user.email, VERIFY_LIFETIME)
    record("email_confirmation_sent", actor=user, target_user=user)
    _queue_mail(
        user.email,
        user,
        _l("Confirm your email address for Keystone"),
        "verify_email",
        username=user.username,
        link=public_url("auth.verify_email", token=token),
        hours=int(VERIFY_LIFETIME.total_seconds() // 3600),
    )
    return True


@dataclass(frozen=True)
class PendingLink:
    """What the page of a live confirm or change link shows before its button is pressed."""

    email: str
    is_change: bool


def peek_confirmation(token: str) -> PendingLink | None:
    """Return what a live confirm or change link would confirm, changing nothing."""
    link = email_tokens.peek(token, EmailPurpose.VERIFY, EmailPurpose.CHANGE)
    if link is None:
        return None
    return PendingLink(email=link.email, is_change=link.purpose == EmailPurpose.CHANGE)


def confirm(token: str) -> User | None:
    """Spend a confirm or change link and act on it; None if it does not work.

    A confirm link marks the address confirmed; a change link switches the
    account to its address (raising AddressTaken if another account took
    it meanwhile). Nobody is signed in either way.
    """
    link = email_tokens.consume(token, EmailPurpose.VERIFY, EmailPurpose.CHANGE)
    if link is None:
        return None
    user = link.user
    if link.purpose == EmailPurpose.CHANGE:
        _switch(user, link.email)
        return user
    if link.email != user.email:
        return None  # the address changed since; switching voids such links
    mark_confirmed(user, via="link")
    return user


def mark_confirmed(user: User, *, via: str) -> None:
    """Record that the owner of the user's address proved they read it."""
    if user.email_confirmed:
        return
    user.email_verified_at = utc_now()
    email_tokens.void(user, EmailPurpose.VERIFY)
    record("email_confirmed", actor=user, target_user=user, details={"via": via})


# --- change ------------------------------------------------------------------


def request_change(user: User, new_email: str, user_agent: str | None, ip: str | None) -> None:
    """Mail a link switching the account to `new_email`, and tell the current address.

    An address another account holds gets the same answer and the same
    work, but no mail: the page, the old address's notice and the account
    page's "pending" line read the same, and the holder hears nothing.
    """
    if new_email == user.email:
        raise ChangeRefused(_("That is already your email address."))
    # Per account, never per address: another account's request to this
    # address must not delay its owner, nor say whether it is registered.
    if not throttle.allow_mail("change", str(user.id), CHANGE_LIMIT):
        raise ChangeRefused(str(TOO_SOON))
    taken = db.session.scalar(select(exists().where(User.email == new_email)))
    token = email_tokens.issue(user, EmailPurpose.CHANGE, new_email, CHANGE_LIFETIME)
    cancel = email_tokens.issue(user, EmailPurpose.CANCEL, user.email, CANCEL_LIFETIME)
    user.pending_email, user.pending_email_until = new_email, utc_now() + CHANGE_LIFETIME
    record("email_change_requested", actor=user, target_user=user, details={"to": new_email})
    if not taken:
        _queue_mail(
            new_email,
            user,
            _l("Confirm your new email address for Keystone"),
            "email_change_confirm",
            username=user.username,
            link=public_url("auth.verify_email", token=token),
            hours=int(CHANGE_LIFETIME.total_seconds() // 3600),
        )
    _queue_mail(
        user.email,
        user,
        _l("Your Keystone email address is about to change"),
        "email_change_requested",
        username=user.username,
        new_email=mask(new_email),
        browser=describe_user_agent(user_agent),
        ip=ip,
        when=utc_now(),
        cancel_link=public_url("auth.cancel_email_change", token=cancel),
        days=CANCEL_LIFETIME.days,
    )


def _switch(user: User, new_email: str) -> None:
    """Switch the account to `new_email`, confirmed; the old address keeps a way back."""
    old_email = user.email
    try:
        with db.session.begin_nested():
            user.email = new_email
            user.email_verified_at = utc_now()
    except IntegrityError:
        # The unique index is the final word: another account has it now.
        user.email = old_email
        raise AddressTaken(new_email) from None
    user.pending_email = user.pending_email_until = None
    # Links to the old address die with it; reset links do too (they are
    # bound to the address they were mailed to, see security/reset_tokens.py).
    email_tokens.void(user, EmailPurpose.VERIFY, EmailPurpose.CHANGE)
    cancel = email_tokens.issue(user, EmailPurpose.CANCEL, old_email, CANCEL_LIFETIME)
    record(
        "email_changed", actor=user, target_user=user, details={"from": old_email, "to": new_email}
    )
    _queue_mail(
        old_email,
        user,
        _l("Your Keystone email address was changed"),
        "email_changed",
        username=user.username,
        new_email=mask(new_email),
        when=utc_now(),
        cancel_link=public_url("auth.cancel_email_change", token=cancel),
        days=CANCEL_LIFETIME.days,
    )


@dataclass(frozen=True)
class Cancelled:
    """The outcome of a cancel link: the account, and what became of its address."""

    user: User
    email: str
    restored: bool
    restore_failed: bool


def peek_cancel(token: str) -> str | None:
    """Return the address a live cancel link would restore, changing nothing."""
    link = email_tokens.peek(token, EmailPurpose.CANCEL)
    return link.email if link else None


def cancel_change(token: str) -> Cancelled | None:
    """Spend a cancel link: restore its address, void pending links, sign out everywhere.

    Whoever asked for the change may know the password, so every device is
    signed out and the page tells the owner to reset it. Newer cancel links
    die (one sent to the address that replaced this one must not undo this
    cancel); older ones stay, so a later change cannot take away an earlier
    address's way back.
    """
    link = email_tokens.consume(token, EmailPurpose.CANCEL)
    if link is None:
        return None
    user = link.user
    restored = restore_failed = False
    if user.email != link.email:
        current = user.email
        try:
            with db.session.begin_nested():
                user.email = link.email
                user.email_verified_at = utc_now()
            restored = True
        except IntegrityError:
            user.email = current
            restore_failed = True
    elif not user.email_confirmed:
        # The link was mailed to this very address: its owner just proved it.
        user.email_verified_at = utc_now()
    email_tokens.void(user, EmailPurpose.VERIFY, EmailPurpose.CHANGE)
    email_tokens.void(user, EmailPurpose.CANCEL, newer_than=link.id)
    user.pending_email = user.pending_email_until = None
    devices.revoke_user_devices(user.id, RevokeReason.EMAIL_CANCELLED)
    take_account_back(user, Recovery.EMAIL_CHANGE_CANCELLED)
    record(
        "email_change_cancelled",
        actor=user,
        target_user=user,
        details={"restored": restored, "restore_failed": restore_failed},
    )
    return Cancelled(user=user, email=link.email, restored=restored, restore_failed=restore_failed)


# --- signup that tells nobody who is registered (mandatory mode) ------------------


def sign_up_quietly(
    username: str,
    email: str,
    password: str,
    ip: str | None,
    *,
    language: str = "en",
    time_zone: str = "UTC",
) -> None:
    """Hash the password, then create the account, or warn the address's owner, off the request.

    The request does the same work whatever the address (a bcrypt hash and
    a queued job), so neither its answer nor its timing says whether the
    address has an account. The caller has checked the username, which is
    public.
    """
    run_in_background(
        _create_or_warn,
        username,
        email,
        passwords.hash_password(password),
        ip,
        language,
        time_zone,
    )


def _create_or_warn(
    username: str, email: str, password_hash: str, ip: str | None, language: str, time_zone: str
) -> None:
    try:
        user = create_user(
            username,
            email,
            None,
            password_hash=password_hash,
            language=language,
            time_zone=time_zone,
        )
    except DuplicateAccount as exc:
        db.session.rollback()
        if exc.field == "email":
            _report_signup_attempt(email, ip)
            db.session.commit()
        else:
            logger.info("quiet signup dropped: the username was taken a moment ago")
        return
    record("signup", actor=user, target_user=user, details={"ip": ip})
    send_confirmation(user, signup=True)
    db.session.commit()


def _report_signup_attempt(email: str, ip: str | None) -> None:
    """Tell the owner of `email` that someone tried to sign up with it, with a way back in."""
    owner = db.session.scalars(select(User).where(User.email == email)).first()
    if owner is None:
        return
    record("signup_existing_email", target_user=owner, details={"ip": ip})
    if not owner.is_active:
        return
    # The counter a new address's confirmation spends: the same for both.
    if not throttle.allow_address_mail("signup", email, SIGNUP_MAIL_LIMIT):
        return
    _queue_mail(
        owner.email,
        owner,
        _l("Someone tried to sign up to Keystone with your email address"),
        "signup_existing_email",
        username=owner.username,
        login_link=public_url("auth.login"),
        reset_link=public_url("auth.request_reset"),
    )


# --- clean-up ------------------------------------------------------------------


def purge_unconfirmed(older_than: timedelta = UNCONFIRMED_KEPT, batch_size: int = 500) -> int:
    """Delete accounts whose address was never confirmed and that never signed in.

    So a squatter cannot hold somebody's address (heartcombo/devise#1710).
    An account that has signed in (one from before confirmation was
    mandatory) is left alone: its owner confirms at the next login.
    """
    cutoff = utc_now() - older_than
    stale = (
        select(User)
        .where(
            User.email_verified_at.is_(None),
            User.created_at < cutoff,
            ~exists().where(RefreshToken.user_id == User.id),
        )
        .limit(batch_size)
    )
    total = 0
    while True:
        users = db.session.scalars(stale).all()
        if not users:
            return total
        for user in users:
            record("account_deleted", target_user=user, details={"reason": "email never confirmed"})
            db.session.delete(user)
        db.session.commit()
        total += len(users)
