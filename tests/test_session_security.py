"""Session protection, freshness and atomic multi-row changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.conftest import HTTPS, TEST_PASSWORD, cookie, login, post_form
from webapp.extensions import db
from webapp.models import RefreshToken

OTHER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"


def test_changed_browser_fingerprint_makes_the_session_not_fresh(app, client, user):
    """Session protection "basic": a session cookie replayed from another browser
    is no longer fresh, so sensitive actions ask for the password."""
    login(client)
    assert "Change your password" in client.get("/account/password").get_data(as_text=True)
    client.environ_base["HTTP_USER_AGENT"] = OTHER_UA
    page = client.get("/account/password").get_data(as_text=True)
    assert "Confirm your password" in page


VICTIM_IP, THIEF_IP = "203.0.113.7", "198.51.100.23"


def test_a_copied_session_claiming_the_victims_address_in_x_forwarded_for_is_not_fresh(
    app, client, new_client, user
):
    """The thief copies the session cookie and the user agent, and sends the victim's
    address in X-Forwarded-For (no proxy is trusted): still another browser, so the
    password change asks for the password first. Flask-Login's own fingerprint reads
    that header, so this fails if its session protection replaces ours."""
    client.environ_base["REMOTE_ADDR"] = VICTIM_IP
    login(client)
    assert "Change your password" in client.get("/account/password").get_data(as_text=True)

    thief = new_client()
    thief.environ_base["REMOTE_ADDR"] = THIEF_IP
    thief.environ_base["HTTP_X_FORWARDED_FOR"] = VICTIM_IP
    thief.set_cookie("session", cookie(client, "session").value)
    page = thief.get("/account/password").get_data(as_text=True)
    assert "Confirm your password" in page
    assert "Change your password" not in page
    # The victim's own browser is untouched.
    assert "Change your password" in client.get("/account/password").get_data(as_text=True)


def test_confirming_the_password_in_another_browser_makes_it_fresh_there(
    app, client, new_client, user
):
    """A browser that shows the password may act: confirming binds the session to it."""
    login(client)
    other = new_client(OTHER_UA)
    other.set_cookie("session", cookie(client, "session").value)
    assert "Confirm your password" in other.get("/account/password").get_data(as_text=True)
    post_form(other, "/account/password", {"reauth_password": TEST_PASSWORD, "reauth_for": "GET"})
    assert "Change your password" in other.get("/account/password").get_data(as_text=True)


def test_confirming_the_password_keeps_the_session_fresh_for_ten_minutes(
    app, client, new_client, user
):
    import time_machine

    login(client, remember=True)
    token = cookie(client, app.config["REMEMBER_DEVICE_COOKIE_NAME"]).value
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        browser = new_client()
        browser.set_cookie(app.config["REMEMBER_DEVICE_COOKIE_NAME"], token)
        browser.get("/account")
        post_form(
            browser,
            "/account/password",
            {"reauth_password": TEST_PASSWORD, "reauth_for": "GET"},
        )
        clock.shift(9 * 60)
        assert "Change your password" in browser.get("/account/password").get_data(as_text=True)
        clock.shift(2 * 60)
        assert "Confirm your password" in browser.get("/account/password").get_data(as_text=True)


def test_password_change_is_atomic_when_a_later_step_fails(
    app, client, new_client, user, monkeypatch
):
    """A fault after the new hash is written leaves the old password and every device."""
    from webapp.security import devices

    login(client)
    other = new_client()
    login(other, remember=True)

    def broken(*args, **kwargs):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(devices, "revoke_user_devices", broken)
    new = "a brand new passphrase"
    response = post_form(
        client,
        "/account/password",
        {"current_password": TEST_PASSWORD, "new_password": new, "confirm_new_password": new},
    )
    assert response.status_code == 500
    monkeypatch.undo()
    assert login(new_client(), password=TEST_PASSWORD).status_code == 302
    assert login(new_client(), password=new).status_code == 200
    assert other.get("/account").status_code == 200
    live = db.session.scalars(select(RefreshToken).where(RefreshToken.is_revoked.is_(False)))
    assert len(live.all()) == 3


def test_signup_is_atomic_when_sign_in_fails(app, client, monkeypatch):
    """A fault after the user row is written leaves no user behind."""
    from webapp.auth import routes
    from webapp.models import User

    def broken(*args, **kwargs):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(routes, "sign_in", broken)
    response = post_form(
        client,
        "/signup",
        {
            "username": "bob",
            "email": "bob@example.com",
            "password": "correct horse battery",
            "confirm_password": "correct horse battery",
        },
    )
    assert response.status_code == 500
    assert db.session.scalars(select(User)).all() == []


@pytest.mark.parametrize("path", ["/account", "/account/devices"])
def test_logout_in_secure_mode_deletes_host_cookies_with_their_attributes(secure_app, path):
    from webapp.domain.users import create_user

    create_user("alice", "alice@example.com", TEST_PASSWORD)
    db.session.commit()
    browser = secure_app.test_client()
    post_form(
        browser,
        "/login",
        {"identifier": "alice", "password": TEST_PASSWORD, "remember": "y"},
        **HTTPS,
    )
    assert browser.get(path, base_url=HTTPS["base_url"]).status_code == 200
    response = post_form(browser, "/logout", page=path, **HTTPS)
    deletion = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-remember=")
    )
    for attribute in ["Max-Age=0", "Secure", "HttpOnly", "Path=/", "SameSite=Lax"]:
        assert attribute in deletion
