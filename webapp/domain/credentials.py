"""Credentials: checking, confirming, changing and resetting passwords."""

from __future__ import annotations

import logging
from enum import StrEnum

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from webapp.domain.addresses import must_confirm_first
from webapp.domain.audit import record
from webapp.domain.notices import public_url
from webapp.domain.recovery import Recovery, take_account_back
from webapp.domain.users import find_user
from webapp.extensions import db
from webapp.i18n import _l
from webapp.mail import run_in_background
from webapp.mail import send as send_mail
from webapp.models import RevokeReason, User, utc_now
from webapp.security import devices, passwords, reset_tokens, throttle
from webapp.security.client import client_ip
from webapp.security.identity import IdentityError, canonical_email

logger = logging.getLogger("webapp.auth")


def authenticate(identifier: str, password: str) -> User | None:
    """Return the active user with these credentials, or None.

    An unknown identifier still costs one bcrypt check, so timing does not
    tell which accounts exist; an inactive account fails the same way.
    Failures count toward the backoff of the account, however it was
    typed (or of the identifier, when it names none); while it waits, this
    raises Throttled without checking the password.
    """
    user = find_user(identifier)
    if user is None:
        counters = throttle.buckets(throttle.identifier_subject(identifier), client_ip())
        throttle.check(counters)
        passwords.burn_password_check(password)
        throttle.failed(counters)
        return None
    counters = throttle.buckets(throttle.account_subject(user.id), client_ip())
    throttle.check(counters)
    if not passwords.check_password(password, user.password_hash) or not user.is_active:
        throttle.failed(counters)
        return None
    throttle.succeeded(counters)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


class Admission(StrEnum):
    """What comes after a person proved who they are, by whatever means."""

    SIGN_IN = "sign_in"
    CONFIRM_EMAIL_FIRST = "confirm_email_first"
    SECOND_STEP = "second_step"
    REFUSED = "refused"


def admission(user: User, *, second_factor_passed: bool) -> Admission:
    """Apply the rules every sign-in follows, a password's, a passkey's or an app's.

    One place, so a new rule cannot be forgotten on one path: a deactivated
    account signs in nowhere; with EMAIL_VERIFICATION=mandatory an
    unconfirmed address comes first; an account with a second factor passes
    it (a passkey is both). A role that requires a second factor the user
    has not set up sends them to set it up once signed in (every page does).
    """
    if not user.is_active:
        return Admission.REFUSED
    if must_confirm_first(user):
        return Admission.CONFIRM_EMAIL_FIRST
    if user.has_second_factor and not second_factor_passed:
        return Admission.SECOND_STEP
    return Admission.SIGN_IN


def confirm_password(user: User, password: str) -> bool:
    """Return whether `password` is the signed-in user's password.

    Failures count toward the backoff of the account, as failed logins do,
    so a stolen session cannot be used to guess the password; while it
    waits, this raises Throttled.
    """
    counters = throttle.buckets(throttle.account_subject(user.id), client_ip())
    throttle.check(counters)
    if passwords.check_password(password, user.password_hash):
        throttle.succeeded(counters)
        return True
    throttle.failed(counters)
    return False


def set_password(user: User, password: str) -> None:
    """Store a new hash of `password` for `user`."""
    user.password_hash = passwords.hash_password(password)


def change_password(user: User, password: str, *, keep_device_id: int) -> None:
    """The owner's password change: every other device is signed out, the account taken back."""
    set_password(user, password)
    devices.revoke_user_devices(user.id, RevokeReason.PASSWORD, keep_id=keep_device_id)
    take_account_back(user, Recovery.PASSWORD_CHANGED)


def request_password_reset(email: str, ip: str | None) -> None:
    """Queue a reset link for `email`; the caller's answer is the same either way."""
    run_in_background(send_reset_link, email, ip)


def send_reset_link(email: str, ip: str | None) -> None:
    """Mail a reset link to the active account using `email`, if there is one.

    Runs off the request path, so nothing here shows in the page's answer
    or timing. Each address gets at most RESET_MAIL_LIMIT mails, whether or
    not an account uses it.
    """
    try:
        address = canonical_email(email)
    except IdentityError:
        return
    if not throttle.allow_reset_mail(address):
        logger.info("reset mail not sent: RESET_MAIL_LIMIT reached for one address")
        return
    user = db.session.scalars(select(User).where(User.email == address)).first()
    if user is None or not user.is_active:
        return
    link = public_url("auth.reset_password", token=reset_tokens.make_token(user))
    record("password_reset_requested", target_user=user, ip=ip, details={"ip": ip})
    send_mail(
        user.email,
        _l("Reset your Keystone password"),
        "reset_password",
        language=user.language,
        time_zone=user.time_zone,
        username=user.username,
        link=link,
        minutes=current_app.config["RESET_TOKEN_MAX_AGE"] // 60,
    )
    db.session.commit()


def reset_password(user: User, password: str) -> bool:
    """Set the password from a reset link and sign out every device of the user.

    Returns False when the password changed since the link was checked (the
    same link used twice at once): the update is conditional on the old
    hash, so only one use wins. Clears the account's backoff (account-wide,
    and from this address), so a reset gets a throttled owner back in;
    a stranger's address stays slowed.
    """
    new_hash = passwords.hash_password(password)
    won = db.session.execute(
        update(User)
        .where(User.id == user.id, User.password_hash == user.password_hash)
        .values(password_hash=new_hash, updated_at=utc_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        return False
    set_committed_value(user, "password_hash", new_hash)
    devices.revoke_user_devices(user.id, RevokeReason.RESET)
    take_account_back(user, Recovery.PASSWORD_RESET)
    throttle.succeeded(throttle.buckets(throttle.account_subject(user.id), client_ip()))
    return True
