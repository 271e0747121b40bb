"""The account page, password change, account deletion and re-authentication."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD, cookie, login, post_form
from webapp.extensions import db
from webapp.models import AuditEvent, RefreshToken, User

NEW_PASSWORD = "a brand new passphrase"


def remember_only(app, new_client, client):
    """Return a browser holding only `client`'s remember cookie: signed in, not fresh."""
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    browser = new_client()
    browser.set_cookie(name, cookie(client, name).value)
    assert browser.get("/account").status_code == 200
    return browser


def test_account_page_shows_details(client, user):
    login(client)
    html = client.get("/account").get_data(as_text=True)
    for text in ["alice", "alice@example.com", "user", "Member since", "Log out"]:
        assert text in html


def test_change_password_keeps_this_device_and_signs_out_others(app, client, new_client, user):
    login(client)
    other = new_client()
    login(other, remember=True)
    other_token = cookie(other, app.config["REMEMBER_DEVICE_COOKIE_NAME"]).value
    response = post_form(
        client,
        "/account/password",
        {
            "current_password": TEST_PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_new_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other.get("/account").status_code == 302
    stranger = new_client()
    stranger.set_cookie(app.config["REMEMBER_DEVICE_COOKIE_NAME"], other_token)
    assert stranger.get("/account").status_code == 302
    assert login(new_client(), password=TEST_PASSWORD).status_code == 200
    assert login(new_client(), password=NEW_PASSWORD).status_code == 302
    assert db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "password_changed")
    ).one()


def test_change_password_form_labels(client, user):
    login(client)
    html = client.get("/account/password").get_data(as_text=True)
    for field, label in [
        ("current_password", "Current password"),
        ("new_password", "New password"),
        ("confirm_new_password", "Confirm new password"),
    ]:
        assert f'<label for="{field}">{label}</label>' in html
    assert 'value="Change password"' in html


def test_change_password_refuses_wrong_current_password(client, user):
    login(client)
    response = post_form(
        client,
        "/account/password",
        {
            "current_password": "not my password",
            "new_password": NEW_PASSWORD,
            "confirm_new_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 200
    assert "That is not your current password." in response.get_data(as_text=True)
    assert login(client.application.test_client()).status_code == 302


def test_change_password_requires_current_password(client, user):
    login(client)
    response = post_form(
        client,
        "/account/password",
        {"new_password": NEW_PASSWORD, "confirm_new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "Enter a password." in response.get_data(as_text=True)


def test_change_password_applies_the_policy(client, user):
    login(client)
    for new, message in [
        ("short", "Use at least 8 characters."),
        ("password1234", "too easy to guess"),
        ("€" * 25, "longer than 72 bytes"),
        ("alice@example.com", "must not be your email"),
    ]:
        response = post_form(
            client,
            "/account/password",
            {"current_password": TEST_PASSWORD, "new_password": new, "confirm_new_password": new},
        )
        assert message in response.get_data(as_text=True)


def test_non_fresh_session_confirms_password_then_carries_on(app, client, new_client, user):
    login(client, remember=True)
    browser = remember_only(app, new_client, client)
    page = browser.get("/account/password").get_data(as_text=True)
    assert "Confirm your password" in page
    assert '<label for="reauth_password">Password</label>' in page
    assert 'value="Confirm"' in page
    wrong = post_form(
        browser, "/account/password", {"reauth_password": "nope", "reauth_for": "GET"}
    )
    assert "That password is not right." in wrong.get_data(as_text=True)
    ok = post_form(
        browser, "/account/password", {"reauth_password": TEST_PASSWORD, "reauth_for": "GET"}
    )
    assert ok.headers["Location"] == "/account/password"
    assert "Change your password" in browser.get("/account/password").get_data(as_text=True)


def test_non_fresh_revoke_asks_for_password_and_then_revokes(app, client, new_client, user):
    login(client, remember=True)
    browser = remember_only(app, new_client, client)
    victim = new_client()
    login(victim)
    victim_device = db.session.scalars(
        select(RefreshToken).order_by(RefreshToken.id.desc())
    ).first()
    url = f"/account/devices/{victim_device.id}/revoke"
    page = post_form(browser, url, page="/account/devices")
    assert page.status_code == 200
    assert "Confirm your password" in page.get_data(as_text=True)
    assert victim.get("/account").status_code == 200  # nothing happened yet
    done = post_form(
        browser,
        url,
        {"reauth_password": TEST_PASSWORD, "reauth_for": "POST"},
        page="/account/devices",
    )
    assert done.headers["Location"] == "/account/devices"
    assert victim.get("/account").status_code == 302


def test_non_fresh_delete_and_revoke_others_ask_for_password(app, client, new_client, user):
    login(client, remember=True)
    browser = remember_only(app, new_client, client)
    assert "Confirm your password" in browser.get("/account/delete").get_data(as_text=True)
    page = post_form(browser, "/account/devices/revoke-others", page="/account/devices")
    assert "Confirm your password" in page.get_data(as_text=True)


def test_delete_account_removes_user_and_devices(app, client, new_client, user):
    login(client)
    other = new_client()
    login(other, remember=True)
    html = client.get("/account/delete").get_data(as_text=True)
    assert '<label for="password">Password</label>' in html and 'value="Delete account"' in html
    wrong = post_form(client, "/account/delete", {"password": "not it at all"})
    assert "That password is not right." in wrong.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 1

    response = post_form(client, "/account/delete", {"password": TEST_PASSWORD})
    assert response.headers["Location"] == "/"
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert db.session.scalar(select(func.count()).select_from(RefreshToken)) == 0
    assert client.get("/account").status_code == 302
    assert other.get("/account").status_code == 302
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "account_deleted")
    ).one()
    assert event.actor_id is None and event.actor_username == "alice"


def test_get_on_state_changing_urls_is_405(client, user):
    login(client)
    assert client.get("/account/devices/revoke-others").status_code == 405
    assert client.get("/account/devices/1/revoke").status_code == 405
