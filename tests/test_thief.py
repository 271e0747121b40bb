"""The device promise against someone holding a copy of a cookie (issue 11, items 1, 2, 5).

Each test is the attack, and fails on a mechanism without the defence.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from tests.conftest import cookie, login, post_form
from tests.smtp import text_of
from webapp.extensions import db
from webapp.models import AuditEvent, RefreshToken


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def remember_name(app) -> str:
    return app.config["REMEMBER_DEVICE_COOKIE_NAME"]


def session_name(app) -> str:
    return app.config["SESSION_COOKIE_NAME"]


def the_device(user) -> RefreshToken:
    db.session.expire_all()
    return db.session.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id)).one()


def cookie_only(app, new_client, value: str):
    """A browser holding nothing but a remember cookie."""
    browser = new_client()
    browser.set_cookie(remember_name(app), value)
    return browser


def copy_cookies(app, source, target) -> None:
    """Give `target` a copy of both of `source`'s cookies, as a thief would take them."""
    for name in (session_name(app), remember_name(app)):
        found = cookie(source, name)
        if found is not None:
            target.set_cookie(name, found.value)


# 1. A stolen remember token is caught however many times it was rotated ------


def test_a_token_replaced_two_rotations_ago_revokes_the_device(app, new_client, user, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        owner = new_client()
        login(owner, remember=True)
        t0 = cookie(owner, remember_name(app)).value
        # The thief rotates T0 -> Ta -> Tb with two cookie-only requests.
        thief = cookie_only(app, new_client, t0)
        assert thief.get("/account").status_code == 200
        ta = cookie(thief, remember_name(app)).value
        clock.shift(timedelta(minutes=2))
        thief = cookie_only(app, new_client, ta)
        assert thief.get("/account").status_code == 200
        tb = cookie(thief, remember_name(app)).value
        assert len({t0, ta, tb}) == 3
        clock.shift(timedelta(hours=1))
        # The owner's browser comes back with T0 (its session has ended).
        owner.delete_cookie(session_name(app))
        assert owner.get("/account").status_code == 302
        device = the_device(user)
        assert device.is_revoked and device.revoked_reason == "theft"
        # The thief's newest token is dead too.
        assert cookie_only(app, new_client, tb).get("/account").status_code == 302
    assert db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "token_theft_suspected")
    ).one()
    [message] = smtp.to("alice@example.com")
    assert "signed that device out" in text_of(message)


def test_a_guessed_secret_for_a_known_series_is_theft(app, new_client, user):
    owner = new_client()
    login(owner, remember=True)
    series = cookie(owner, remember_name(app)).value.split(".")[0]
    forged = cookie_only(app, new_client, f"{series}.{'A' * 43}")
    assert forged.get("/account").status_code == 302
    assert the_device(user).revoked_reason == "theft"


def test_an_unknown_series_is_ignored_quietly(app, new_client, user):
    owner = new_client()
    login(owner, remember=True)
    stranger = cookie_only(app, new_client, f"{'B' * 22}.{'A' * 43}")
    assert stranger.get("/account").status_code == 302
    assert not the_device(user).is_revoked


# 2. No session hides inside the owner's device --------------------------------


def test_a_session_from_the_grace_period_ends_with_it(app, new_client, user):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        owner = new_client()
        login(owner, remember=True)
        t0 = cookie(owner, remember_name(app)).value
        owner.delete_cookie(session_name(app))
        assert owner.get("/account").status_code == 200  # the owner rotates T0 -> T1
        clock.shift(timedelta(seconds=10))
        # The thief presents the replaced T0 inside the grace period and gets in...
        thief = cookie_only(app, new_client, t0)
        assert thief.get("/account").status_code == 200
        # ...but keeps only the session it was given, not the current token.
        thief.delete_cookie(remember_name(app))
        clock.shift(timedelta(seconds=app.config["REMEMBER_GRACE_SECONDS"]))
        assert thief.get("/account").status_code == 302
        # The owner is still signed in, and the device is not revoked for it.
        assert owner.get("/account").status_code == 200
        assert not the_device(user).is_revoked


def test_a_browser_whose_rotation_answer_was_lost_is_handed_the_current_token(
    app, new_client, user
):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        owner = new_client()
        login(owner, remember=True)
        t1 = cookie(owner, remember_name(app)).value
        owner.delete_cookie(session_name(app))
        # A request rotates T1 -> T2, but its answer never reaches the browser.
        lost = cookie_only(app, new_client, t1)
        assert lost.get("/account").status_code == 200
        t2 = cookie(lost, remember_name(app)).value
        clock.shift(timedelta(seconds=20))
        # The browser comes back with T1 inside the grace period...
        assert owner.get("/account").status_code == 200
        assert cookie(owner, remember_name(app)).value == t2
        # ...and stays signed in after it, with no theft alarm.
        clock.shift(timedelta(minutes=5))
        assert owner.get("/account").status_code == 200
        owner.delete_cookie(session_name(app))
        assert owner.get("/account").status_code == 200
    assert not the_device(user).is_revoked


@pytest.mark.parametrize("action", ["revoke-others", "password"])
def test_a_copied_session_is_signed_out_by_the_owner_while_the_owner_stays(
    app, new_client, user, action
):
    owner = new_client()
    login(owner, remember=True)
    thief = new_client()
    copy_cookies(app, owner, thief)
    assert thief.get("/account").status_code == 200  # shares the owner's device
    if action == "revoke-others":
        post_form(owner, "/account/devices/revoke-others", page="/account/devices")
    else:
        post_form(
            owner,
            "/account/password",
            {
                "current_password": "Tr0ub4dor&3-horse",
                "new_password": "a brand new passphrase 42",
                "confirm_new_password": "a brand new passphrase 42",
            },
        )
    # The thief is out, with its session cookie and with its copy of the remember cookie.
    assert thief.get("/account").status_code == 302
    thief.delete_cookie(session_name(app))
    assert thief.get("/account").status_code == 302
    # The owner stays signed in, and the owner's new remember cookie works.
    assert owner.get("/account").status_code == 200
    owner.delete_cookie(session_name(app))
    assert owner.get("/account").status_code == 200
    assert not the_device(user).is_revoked


def test_an_admin_signing_out_their_own_other_devices_keeps_only_their_browser(
    app, new_client, make_user
):
    admin = make_user("boss", "boss@example.com", role="admin")
    owner = new_client()
    login(owner, "boss", remember=True)
    thief = new_client()
    copy_cookies(app, owner, thief)
    post_form(owner, f"/admin/users/{admin.id}", {"action": "signout"})
    assert thief.get("/account").status_code == 302
    assert owner.get("/account").status_code == 200


# 5. Freshness follows session protection ---------------------------------------


def confirmed_remembered_browser(app, new_client, **environ):
    """A browser restored from its cookie that then confirmed its password (fresh_until)."""
    owner = new_client()
    owner.environ_base.update(environ)
    login(owner, remember=True)
    owner.delete_cookie(session_name(app))
    page = owner.get("/account/password").get_data(as_text=True)
    assert "Confirm your password" in page
    post_form(owner, "/account/password", {"reauth_password": "Tr0ub4dor&3-horse"})
    assert "Confirm your password" not in owner.get("/account/password").get_data(as_text=True)
    return owner


def test_a_session_replayed_from_another_browser_loses_its_freshness(app, new_client, user):
    owner = confirmed_remembered_browser(app, new_client)
    replay = new_client("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/130.0")
    replay.set_cookie(session_name(app), cookie(owner, session_name(app)).value)
    assert replay.get("/account").status_code == 200
    assert "Confirm your password" in replay.get("/account/password").get_data(as_text=True)
    response = post_form(replay, "/account/delete", {"password": ""}, page="/account")
    assert "Confirm your password" in response.get_data(as_text=True)


def test_a_forged_forwarded_for_does_not_pass_session_protection(app, new_client, user):
    owner = new_client()
    owner.environ_base["REMOTE_ADDR"] = "10.0.0.1"
    login(owner)
    thief = new_client()  # the same user agent, from another address
    thief.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    thief.environ_base["HTTP_X_FORWARDED_FOR"] = "10.0.0.1"
    thief.set_cookie(session_name(app), cookie(owner, session_name(app)).value)
    page = thief.get("/account/delete").get_data(as_text=True)
    assert "Confirm your password" in page


def test_turning_on_two_factor_signs_out_a_session_copied_from_this_device(app, new_client, user):
    import pyotp

    owner = new_client()
    login(owner, remember=True)
    thief = new_client()
    copy_cookies(app, owner, thief)
    page = owner.get("/account/security/totp").get_data(as_text=True)
    secret = re.search(r"Setup key:.*?<code[^>]*>([A-Z2-7 ]+)</code>", page, re.S).group(1)
    response = post_form(
        owner,
        "/account/security/totp",
        {"code": pyotp.TOTP(secret.replace(" ", "")).now(), "sign_out_others": "y"},
    )
    assert response.status_code == 302
    assert thief.get("/account").status_code == 302  # does not inherit the second factor
    assert owner.get("/account").status_code == 200
