"""The security notices we mail, and absolute links under PUBLIC_URL.

The mechanism (`webapp.security`) never mails: when it sees something the
owner must hear about (a remember token that came back after it was
replaced), it sends a signal, and `connect_signals` turns that into an
audit row and a notice here.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app

from webapp.domain.audit import record
from webapp.domain.device_list import describe_user_agent
from webapp.domain.recovery import Recovery, take_account_back
from webapp.i18n import _l, for_reader
from webapp.mail import send as send_mail
from webapp.models import RefreshToken, User, utc_now
from webapp.security import signals
from webapp.security.client import client_ip

# The security notices: template name -> subject.
NOTICES = {
    "password_changed": _l("Your Keystone password was changed"),
    "device_stolen": _l("A device was signed out of your Keystone account"),
    "totp_enabled": _l("Two-factor authentication is on for your Keystone account"),
    "totp_disabled": _l("Two-factor authentication was turned off on your Keystone account"),
    "recovery_code_used": _l("A recovery code was used to sign in to your Keystone account"),
    "totp_replayed": _l("A used sign-in code was tried again on your Keystone account"),
    "two_factor_reset": _l("An administrator reset two-factor authentication on your account"),
    "passkey_added": _l("A passkey was added to your Keystone account"),
    "passkey_removed": _l("A passkey was removed from your Keystone account"),
    "new_browser_alerts": _l("Your Keystone setting for new-sign-in emails was changed"),
}


def public_url(endpoint: str, **values: str) -> str:
    """Return the absolute URL of `endpoint` under PUBLIC_URL, never the request's host."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_URL"] + path


def mail_notice(
    notice: str, user: User, user_agent: str | None, ip: str | None, **extra: object
) -> None:
    """Queue a security notice naming the browser, the time and the address.

    The notice is written to the outbox in the current transaction: call
    this before the commit of the change it announces.

    `password_changed` follows a change or reset; `device_stolen` follows a
    remember token that came back after it was replaced; the two-factor
    notices follow turning the authenticator app on or off, a recovery code
    used, and an admin's reset; `passkey_added` and `passkey_removed` name
    the passkey (`passkey=`); `new_browser_alerts` follows turning the
    new-sign-in mails on or off (`enabled=`).
    """
    with for_reader(user.language, user.time_zone):
        browser = describe_user_agent(user_agent)
    send_notice(
        notice,
        user.email,
        user.username,
        browser,
        utc_now(),
        ip,
        language=user.language,
        time_zone=user.time_zone,
        **extra,
    )


def send_notice(
    notice: str,
    email: str,
    username: str,
    browser: str,
    when: datetime,
    ip: str | None,
    language: str = "en",
    time_zone: str = "UTC",
    **extra: object,
) -> None:
    """Mail a security notice in the owner's language, with a way back in if it was not them."""
    send_mail(
        email,
        NOTICES[notice],
        notice,
        language=language,
        time_zone=time_zone,
        username=username,
        browser=browser,
        when=when,
        ip=ip,
        reset_link=public_url("auth.request_reset"),
        **extra,
    )


def on_token_theft(sender: Flask, device: RefreshToken, **_: object) -> None:
    """Audit a device revoked for a stolen remember token and tell its owner."""
    record(
        "token_theft_suspected",
        target_user=device.user,
        device=device,
        details={"device": device.id},
    )
    take_account_back(device.user, Recovery.TOKEN_THEFT)
    mail_notice("device_stolen", device.user, device.user_agent, client_ip())


def connect_signals(app: Flask) -> None:
    """Listen to the mechanism's signals for this app."""
    signals.token_theft_detected.connect(on_token_theft, app, weak=False)
