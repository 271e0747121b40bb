"""A passkey as the second factor: after a password, for roles that require one,
and never one user's passkey for another's login (issues 13 and 14 together)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.authenticator import SoftAuthenticator
from tests.conftest import TEST_PASSWORD, login, post_form
from tests.test_passkeys import add_passkey, login_options, options, passkey_login, text
from webapp.extensions import db
from webapp.models import RefreshToken, WebAuthnCredential

VERIFY = "/login/verify"


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def password_step(client, identifier: str = "alice"):
    return post_form(client, "/login", {"identifier": identifier, "password": TEST_PASSWORD})


def use_passkey(client, key: SoftAuthenticator):
    found = options(client, f"{VERIFY}/passkey-options", VERIFY)
    return post_form(client, VERIFY, {"credential": key.get(found)}, page=VERIFY)


def with_passkey(client, identifier: str, key: SoftAuthenticator) -> None:
    """Sign `identifier` in by password (no second factor yet) and add a passkey on `key`."""
    assert password_step(client, identifier).status_code == 302
    assert add_passkey(client, key).status_code == 302


def devices_of(user) -> list[RefreshToken]:
    db.session.expire_all()
    return list(db.session.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id)))


def test_a_password_for_an_account_with_a_passkey_asks_for_it(client, new_client, user):
    key = SoftAuthenticator()
    with_passkey(client, "alice", key)
    browser = new_client()
    response = password_step(browser)
    assert response.headers["Location"] == VERIFY
    assert len(devices_of(user)) == 1  # no device before the second factor
    page = text(browser.get(VERIFY))
    assert ">Use a passkey</button>" in page
    response = use_passkey(browser, key)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    newest = max(devices_of(user), key=lambda d: d.id)
    assert newest.auth_method == "password+passkey" and newest.mfa_at is not None
    assert browser.get("/account").status_code == 200


def test_another_users_passkey_cannot_complete_the_step(client, new_client, user, make_user):
    mallory_key = SoftAuthenticator()
    make_user("mallory", "mallory@example.com")
    with_passkey(new_client(), "mallory", mallory_key)
    with_passkey(client, "alice", SoftAuthenticator())
    browser = new_client()
    password_step(browser)
    found = options(browser, f"{VERIFY}/passkey-options", VERIFY)
    response = post_form(browser, VERIFY, {"credential": mallory_key.get(found)}, page=VERIFY)
    assert response.status_code == 400
    assert "Use a passkey" in text(response)
    assert browser.get("/account").status_code == 302


def test_an_admin_whose_only_second_factor_is_a_passkey_reaches_admin_pages(new_client, make_user):
    admin = make_user("boss", "boss@example.com", role="admin", two_factor=False)
    key = SoftAuthenticator()
    browser = new_client()
    password_step(browser, "boss")
    assert browser.get("/admin/").status_code == 302  # confined to the set-up pages
    assert add_passkey(browser, key).status_code == 302
    assert browser.get("/admin/").status_code == 200  # this browser just passed it
    other = new_client()
    response = passkey_login(other, key.get(login_options(other)))
    assert response.status_code == 302
    assert other.get("/admin/").status_code == 200  # a passkey is both factors
    assert admin.role.name == "admin"


def test_the_last_second_factor_of_an_admin_cannot_be_removed(new_client, make_user):
    make_user("boss", "boss@example.com", role="admin", two_factor=False)
    browser = new_client()
    password_step(browser, "boss")
    add_passkey(browser, SoftAuthenticator())
    passkey_id = db.session.scalar(select(WebAuthnCredential.id))
    response = post_form(
        browser, f"/account/security/passkeys/{passkey_id}/remove", page="/account/security"
    )
    assert response.status_code == 302
    page = text(browser.get("/account/security"))
    assert "Your role requires two-factor authentication." in page
    assert db.session.scalar(select(WebAuthnCredential.id)) == passkey_id


def test_a_passkey_lets_a_user_turn_the_authenticator_app_off_under_a_role_that_requires_one(
    new_client, make_user
):
    make_user("boss", "boss@example.com", role="admin")  # has an authenticator app
    browser = new_client()
    login(browser, "boss")
    response = post_form(browser, "/account/security/totp/disable", page="/account/security")
    assert "Turn off authenticator app" in text(browser.get("/account/security"))  # refused
    add_passkey(browser, SoftAuthenticator())
    response = post_form(browser, "/account/security/totp/disable", page="/account/security")
    assert response.status_code == 302
    assert "Set up authenticator app" in text(browser.get("/account/security"))
