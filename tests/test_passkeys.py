"""Passkeys, server side: real registration and authentication responses, verified by py_webauthn.

The responses come from `tests/authenticator.py` (an EC P-256 key from
`cryptography`, CBOR from py_webauthn's helper), posted through the same
forms the browser posts. Nothing of ours is mocked.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.authenticator import SoftAuthenticator
from tests.conftest import TEST_PASSWORD, cookie, csrf_token, login, post_form
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    RefreshToken,
    User,
    WebAuthnChallenge,
    WebAuthnCredential,
    utc_now,
)

SECURITY = "/account/security"


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def options(client, url: str, page: str) -> dict:
    """Ask for ceremony options as static/js/passkeys.js does: a POST with the page's token."""
    response = post_form(client, url, page=page)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def add_passkey(client, authenticator: SoftAuthenticator, name: str = "Laptop", **bend):
    """Run the registration ceremony of the security page with `authenticator`."""
    found = options(client, f"{SECURITY}/passkeys/options", SECURITY)
    answer = authenticator.create(found, **bend)
    return post_form(
        client, f"{SECURITY}/passkeys", {"name": name, "credential": answer}, page=SECURITY
    )


def login_options(client) -> dict:
    return options(client, "/login/passkey/options", "/login")


def passkey_login(client, answer: str, **fields):
    return post_form(client, "/login/passkey", {"credential": answer, **fields}, page="/login")


def text(response) -> str:
    return response.get_data(as_text=True)


def audit(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def key():
    return SoftAuthenticator()


@pytest.fixture
def registered(client, user, key):
    """Alice, signed in on `client`, with one passkey on `key`."""
    login(client)
    response = add_passkey(client, key)
    assert response.status_code == 302, text(response)
    return key


# --- registration ------------------------------------------------------------


def test_add_a_passkey_lists_it_mails_the_owner_and_audits(client, user, key, smtp):
    login(client)
    page = text(client.get(SECURITY))
    assert '<label for="passkey_name">Passkey name</label>' in page
    assert ">Add a passkey</button>" in page or 'value="Add a passkey"' in page

    response = add_passkey(client, key, name="Work laptop")

    assert response.status_code == 302 and response.location.endswith(SECURITY)
    page = text(client.get(SECURITY))
    assert "Work laptop" in page and "Added" in page and "Last used" in page
    assert "Never" in page
    assert 'aria-label="Remove Work laptop"' in page
    [stored] = db.session.scalars(select(WebAuthnCredential)).all()
    assert stored.credential_id == key.credential_id
    assert stored.user_id == user.id and stored.sign_count == 0
    assert stored.transports == "internal"
    assert stored.aaguid == "01020304-0506-0708-0910-111213141516"
    assert stored.backup_eligible is False
    [event] = audit("passkey_added")
    assert event.target_username == "alice" and event.details["name"] == "Work laptop"
    [mail] = smtp.to("alice@example.com")
    assert mail["Subject"] == "A passkey was added to your Keystone account"
    assert "Work laptop" in mail.get_body(preferencelist=("plain",)).get_content()


def test_registration_options_require_a_resident_key_and_user_verification(client, user):
    login(client)
    found = options(client, f"{SECURITY}/passkeys/options", SECURITY)
    assert found["rp"] == {"name": "Keystone", "id": "localhost"}
    assert found["authenticatorSelection"]["residentKey"] == "required"
    assert found["authenticatorSelection"]["requireResidentKey"] is True
    assert found["authenticatorSelection"]["userVerification"] == "required"
    assert found["user"]["name"] == "alice"
    assert found["excludeCredentials"] == []


def test_the_user_handle_is_random_stable_and_never_the_user_id(client, user):
    login(client)
    first = options(client, f"{SECURITY}/passkeys/options", SECURITY)["user"]["id"]
    second = options(client, f"{SECURITY}/passkeys/options", SECURITY)["user"]["id"]
    assert first == second
    db.session.refresh(user)
    assert len(user.webauthn_handle) == 32
    assert user.id.bytes not in user.webauthn_handle
    assert user.id.hex not in first and str(user.id) not in first


def test_existing_passkeys_are_excluded_from_registration(client, registered):
    found = options(client, f"{SECURITY}/passkeys/options", SECURITY)
    assert [item["id"] for item in found["excludeCredentials"]] == [registered.id]
    assert found["excludeCredentials"][0]["transports"] == ["internal"]


def test_the_same_credential_cannot_be_registered_twice(client, registered):
    response = add_passkey(client, registered, name="Again")
    assert response.status_code == 400
    assert "That passkey is already registered." in text(response)
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 1


def test_a_passkey_needs_a_name(client, user, key):
    login(client)
    response = add_passkey(client, key, name="  ")
    assert response.status_code == 400
    assert "Give the passkey a name" in text(response)
    assert 'aria-invalid="true"' in text(response)
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0


@pytest.mark.parametrize(
    ("bend", "why"),
    [
        ({"origin": "https://evil.example"}, "another origin"),
        ({"origin": "http://localhost:5001"}, "another port"),
        ({"origin": "http://localhost:5000/"}, "a trailing slash"),
        ({"rp_id": "evil.example"}, "another RP ID"),
        ({"verified": False}, "no user verification"),
    ],
)
def test_a_registration_for_another_site_or_without_verification_is_refused(
    client, user, key, bend, why
):
    login(client)
    response = add_passkey(client, key, **bend)
    assert response.status_code == 400, why
    assert "That passkey could not be verified. Try again." in text(response)
    assert "Unexpected" not in text(response)  # never the library's words
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0
    [event] = audit("passkey_refused")
    assert event.details == {"ceremony": "register", "reason": "verification"}


def test_a_replayed_registration_response_is_refused(client, user, smtp):
    login(client)
    found = options(client, f"{SECURITY}/passkeys/options", SECURITY)
    first = SoftAuthenticator()
    answer = first.create(found)
    data = {"name": "One", "credential": answer}
    assert post_form(client, f"{SECURITY}/passkeys", data, page=SECURITY).status_code == 302
    db.session.execute(WebAuthnCredential.__table__.delete())
    db.session.commit()

    replay = post_form(client, f"{SECURITY}/passkeys", data, page=SECURITY)

    assert replay.status_code == 400
    assert "expired or was already used" in text(replay)
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0


def test_another_users_registration_challenge_does_not_work(client, new_client, user, make_user):
    login(client)
    found = options(client, f"{SECURITY}/passkeys/options", SECURITY)
    make_user("bob")
    bob = new_client()
    login(bob, "bob")
    answer = SoftAuthenticator().create(found)
    response = post_form(
        bob, f"{SECURITY}/passkeys", {"name": "Stolen", "credential": answer}, page=SECURITY
    )
    assert response.status_code == 400
    assert "expired or was already used" in text(response)


def test_registration_needs_a_fresh_session(client, new_client, user, key):
    login(client, remember=True)
    restored = new_client()
    restored.set_cookie("remember", cookie(client, "remember").value)
    found = options(restored, f"{SECURITY}/passkeys/options", SECURITY)
    response = post_form(
        restored,
        f"{SECURITY}/passkeys",
        {"name": "Laptop", "credential": key.create(found)},
        page=SECURITY,
    )
    assert response.status_code == 200
    assert "Confirm your password" in text(response)
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0


def test_passkey_pages_want_a_signed_in_user_and_post_with_csrf(client, user):
    assert client.get(SECURITY).status_code == 302
    assert client.post(f"{SECURITY}/passkeys/options").status_code in {302, 400}
    login(client)
    assert client.get(f"{SECURITY}/passkeys").status_code == 405
    assert client.get(f"{SECURITY}/passkeys/options").status_code == 405
    assert client.post(f"{SECURITY}/passkeys/options").status_code == 400
    assert client.post("/login/passkey/options").status_code == 400
    assert db.session.scalar(select(func.count()).select_from(WebAuthnChallenge)) == 0


# --- signing in --------------------------------------------------------------


def test_log_in_with_a_passkey_signs_in_and_honours_remember(registered, new_client):
    browser = new_client()
    assert ">Log in with a passkey</button>" in text(browser.get("/login"))
    found = login_options(browser)
    assert found["rpId"] == "localhost"
    assert found["userVerification"] == "required"
    assert found["allowCredentials"] == []

    response = passkey_login(browser, registered.get(found), remember="y")

    assert response.status_code == 302 and response.location.endswith("/account")
    assert browser.get("/account").status_code == 200
    assert cookie(browser, "remember") is not None
    device = db.session.scalars(select(RefreshToken).order_by(RefreshToken.id.desc())).first()
    assert device.is_remembered is True
    event = audit("login")[-1]
    assert event.details == {"remember": True, "method": "passkey"}
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    assert stored.sign_count == 1 and stored.last_used_at is not None


def test_log_in_with_a_passkey_without_remember_sets_no_cookie(registered, new_client):
    browser = new_client()
    response = passkey_login(
        browser, registered.get(login_options(browser)), next="/account/devices"
    )
    assert response.status_code == 302 and response.location.endswith("/account/devices")
    assert cookie(browser, "remember") is None


def test_a_replayed_login_response_is_refused(registered, new_client):
    browser = new_client()
    answer = registered.get(login_options(browser))
    assert passkey_login(browser, answer).status_code == 302

    thief = new_client()
    replay = passkey_login(thief, answer)

    assert replay.status_code == 400
    assert "expired or was already used" in text(replay)
    assert thief.get("/account").status_code == 302


@pytest.mark.parametrize(
    ("bend", "why"),
    [
        ({"origin": "https://evil.example"}, "another origin"),
        ({"origin": "http://127.0.0.1:5000"}, "the IP address instead of the name"),
        ({"rp_id": "evil.example"}, "another RP ID"),
        ({"tamper": True}, "a tampered signature"),
        ({"verified": False}, "no user verification"),
    ],
)
def test_a_login_response_for_another_site_or_forged_is_refused(registered, new_client, bend, why):
    browser = new_client()
    response = passkey_login(browser, registered.get(login_options(browser), **bend))
    assert response.status_code == 400, why
    page = text(response)
    assert "That passkey could not be verified. Try again." in page
    assert "signature" not in page.lower() and "Unexpected" not in page
    assert browser.get("/account").status_code == 302
    event = audit("login_failed")[-1]
    assert event.target_username == "alice"
    assert event.details["method"] == "passkey" and event.details["reason"] == "verification"


def test_a_signature_over_other_data_is_refused(registered, new_client):
    """A good signature, but the authenticator data was changed after signing."""
    browser = new_client()
    answer = json.loads(registered.get(login_options(browser)))
    data = bytearray(_b64(answer["response"]["authenticatorData"]))
    data[-1] ^= 0x01  # the sign count, as an attacker would lower or raise it
    answer["response"]["authenticatorData"] = _b64e(bytes(data))
    response = passkey_login(browser, json.dumps(answer))
    assert response.status_code == 400
    assert "could not be verified" in text(response)


def test_an_unknown_passkey_is_refused_and_audited(app, user, new_client):
    browser = new_client()
    stranger = SoftAuthenticator()
    stranger.rp_id = "localhost"
    stranger.user_handle = b"x" * 32
    response = passkey_login(browser, stranger.get(login_options(browser)))
    assert response.status_code == 400
    assert "That passkey is not registered here." in text(response)
    [event] = audit("login_failed")
    assert event.details == {"method": "passkey", "ceremony": "login", "reason": "unknown"}


def test_a_passkey_answering_with_another_users_handle_is_refused(registered, new_client):
    browser = new_client()
    response = passkey_login(
        browser, registered.get(login_options(browser), user_handle=b"\x00" * 32)
    )
    assert response.status_code == 400
    assert "not registered here" in text(response)


def test_an_expired_challenge_is_refused(registered, new_client):
    browser = new_client()
    found = login_options(browser)
    token = csrf_token(browser, "/login")
    with time_machine.travel(utc_now() + timedelta(minutes=5, seconds=5)):
        response = browser.post(
            "/login/passkey", data={"csrf_token": token, "credential": registered.get(found)}
        )
    assert response.status_code == 400
    assert "expired or was already used" in text(response)


def test_challenges_expire_after_five_minutes_and_are_cleared(registered, new_client):
    browser = new_client()
    login_options(browser)
    row = db.session.scalars(select(WebAuthnChallenge)).one()
    assert row.expires_at - row.created_at == timedelta(minutes=5)
    assert row.user_id is None and row.purpose == "authenticate"
    with time_machine.travel(utc_now() + timedelta(minutes=6)):
        login_options(new_client())
    assert db.session.scalar(select(func.count()).select_from(WebAuthnChallenge)) == 1


def test_a_confirmation_challenge_does_not_sign_anyone_in(registered, client, new_client):
    """A challenge issued to confirm a password cannot be spent at the login."""
    found = options(client, "/account/confirm/passkey-options", SECURITY)
    response = passkey_login(new_client(), registered.get(found))
    assert response.status_code == 400
    assert "expired or was already used" in text(response)


def test_an_inactive_users_passkey_does_not_sign_in(registered, user, new_client):
    user.is_active = False
    db.session.commit()
    browser = new_client()
    response = passkey_login(browser, registered.get(login_options(browser)))
    assert response.status_code == 400
    assert "cannot be used to sign in" in text(response)
    assert browser.get("/account").status_code == 302


def test_a_sign_count_going_backwards_is_refused_and_audited(registered, new_client):
    browser = new_client()
    for _ in range(3):
        assert passkey_login(browser, registered.get(login_options(browser))).status_code == 302
        browser = new_client()
    response = passkey_login(browser, registered.get(login_options(browser), sign_count=2))
    assert response.status_code == 400
    assert "may have been copied" in text(response)
    event = audit("login_failed")[-1]
    assert event.details["reason"] == "sign_count" and event.target_username == "alice"
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    assert stored.sign_count == 3


def test_a_synced_passkey_that_keeps_its_count_at_zero_signs_in_every_time(
    client, user, new_client
):
    synced = SoftAuthenticator(synced=True, counter=False)
    login(client)
    assert add_passkey(client, synced, name="Phone").status_code == 302
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    assert stored.backup_eligible is True and stored.backup_state is True
    assert "Synced" in text(client.get(SECURITY))
    for _ in range(3):
        browser = new_client()
        assert passkey_login(browser, synced.get(login_options(browser))).status_code == 302
    db.session.refresh(stored)
    assert stored.sign_count == 0


def test_a_device_bound_passkey_without_a_counter_signs_in_too(client, user, new_client):
    no_counter = SoftAuthenticator(counter=False)
    login(client)
    assert add_passkey(client, no_counter).status_code == 302
    for _ in range(2):
        browser = new_client()
        assert passkey_login(browser, no_counter.get(login_options(browser))).status_code == 302


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "x",
        "{}",
        "[]",
        "null",
        '{"id": 1}',
        '{"id": "a", "rawId": "a", "type": "public-key", "response": {}}',
        '{"id": "!!", "rawId": "!!", "type": "public-key", "response": {"clientDataJSON": "!!",'
        ' "authenticatorData": "!!", "signature": "!!"}}',
        "a" * 40_000,
    ],
)
def test_garbage_instead_of_a_passkey_is_a_message_never_a_500(app, user, new_client, garbage):
    browser = new_client()
    login_options(browser)
    response = passkey_login(browser, garbage)
    assert response.status_code == 400
    assert re.search(r"Your browser did not send a passkey|could not be verified", text(response))


def test_a_signed_in_browser_gets_no_login_options(registered, client):
    response = post_form(client, "/login/passkey/options", page=SECURITY)
    assert response.status_code == 400


# --- a given user's passkey (the second factor's check) ----------------------


def test_a_passkey_of_one_user_never_completes_a_step_for_another(app, registered, make_user):
    from webapp.domain.passkeys import PasskeyRefused, second_factor_options, verify_passkey_for

    alice = db.session.scalars(select(User).where(User.username == "alice")).one()
    bob = make_user("bob")
    with app.test_request_context("/login/verify"):
        found = json.loads(second_factor_options(bob))
        assert found["allowCredentials"] == []  # bob has no passkey
        with pytest.raises(PasskeyRefused) as refused:
            verify_passkey_for(bob, registered.get(found))
        assert refused.value.reason == "unknown"
        db.session.commit()

        found = json.loads(second_factor_options(alice))
        assert [item["id"] for item in found["allowCredentials"]] == [registered.id]
        # Alice's answer to her own challenge does not pass as Bob's step either.
        with pytest.raises(PasskeyRefused):
            verify_passkey_for(bob, registered.get(found))
        db.session.rollback()

        found = json.loads(second_factor_options(alice))
        assert verify_passkey_for(alice, registered.get(found)).user_id == alice.id
        db.session.commit()


def test_has_passkey_and_passkey_count(app, registered, make_user):
    from webapp.domain.passkeys import has_passkey, passkey_count

    alice = db.session.scalars(select(User).where(User.username == "alice")).one()
    bob = make_user("bob")
    assert has_passkey(alice) is True and passkey_count(alice) == 1
    assert has_passkey(bob) is False and passkey_count(bob) == 0


# --- confirming a sensitive action -------------------------------------------


def test_use_a_passkey_on_confirm_your_password_carries_on_with_the_action(
    registered, client, new_client
):
    remembered = new_client()
    # A passkey is a second factor now: this browser signs in with it.
    passkey_login(remembered, registered.get(login_options(remembered)), remember="y")
    restored = new_client()
    restored.set_cookie("remember", cookie(remembered, "remember").value)
    page = post_form(restored, "/account/devices/revoke-others", page="/account/devices")
    assert "Confirm your password" in text(page)
    assert ">Use a passkey</button>" in text(page)
    token = csrf_token(restored, "/account/devices")
    found = options(restored, "/account/confirm/passkey-options", "/account/devices")
    assert [item["id"] for item in found["allowCredentials"]] == [registered.id]

    response = restored.post(
        "/account/devices/revoke-others",
        data={
            "csrf_token": token,
            "reauth_for": "POST",
            "reauth_passkey": registered.get(found),
        },
    )

    assert response.status_code == 302 and response.location.endswith("/account/devices")
    others = db.session.scalars(
        select(RefreshToken).where(RefreshToken.is_revoked.is_(False))
    ).all()
    assert len(others) == 1  # only the browser that confirmed
    assert client.get("/account").status_code == 302


def test_a_failed_passkey_confirmation_says_so_and_does_nothing(registered, client, new_client):
    remembered = new_client()
    # A passkey is a second factor now: this browser signs in with it.
    passkey_login(remembered, registered.get(login_options(remembered)), remember="y")
    restored = new_client()
    restored.set_cookie("remember", cookie(remembered, "remember").value)
    token = csrf_token(restored, "/account/devices")
    found = options(restored, "/account/confirm/passkey-options", "/account/devices")
    response = restored.post(
        "/account/devices/revoke-others",
        data={
            "csrf_token": token,
            "reauth_for": "POST",
            "reauth_passkey": registered.get(found, verified=False),
        },
    )
    assert response.status_code == 200
    assert "Confirm your password" in text(response)
    assert "That passkey could not be verified. Try again." in text(response)
    assert client.get("/account").status_code == 200
    [event] = audit("passkey_refused")
    assert event.details["ceremony"] == "reauthenticate"


def test_no_passkey_button_for_a_user_without_one(user, client, new_client):
    login(client, remember=True)
    restored = new_client()
    restored.set_cookie("remember", cookie(client, "remember").value)
    page = post_form(restored, "/account/devices/revoke-others", page="/account/devices")
    assert "Confirm your password" in text(page)
    assert "Use a passkey" not in text(page)


# --- rename and remove -------------------------------------------------------


def test_rename_a_passkey(registered, client):
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    response = post_form(
        client, f"{SECURITY}/passkeys/{stored.id}/rename", {"name": "Desk key"}, page=SECURITY
    )
    assert response.status_code == 302
    assert "Desk key" in text(client.get(SECURITY))


def test_remove_a_passkey_mails_audits_and_it_no_longer_signs_in(
    registered, client, new_client, smtp
):
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    response = post_form(client, f"{SECURITY}/passkeys/{stored.id}/remove", page=SECURITY)
    assert response.status_code == 302
    assert "You have no passkeys yet." in text(client.get(SECURITY))
    [event] = audit("passkey_removed")
    assert event.target_username == "alice" and event.details["name"] == "Laptop"
    assert smtp.to("alice@example.com")[-1]["Subject"] == (
        "A passkey was removed from your Keystone account"
    )

    browser = new_client()
    refused = passkey_login(browser, registered.get(login_options(browser)))
    assert refused.status_code == 400
    assert "not registered here" in text(refused)


def test_another_users_passkey_cannot_be_renamed_or_removed(registered, make_user, new_client):
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    make_user("bob")
    bob = new_client()
    login(bob, "bob")
    for action in ("rename", "remove"):
        response = post_form(
            bob, f"{SECURITY}/passkeys/{stored.id}/{action}", {"name": "Mine"}, page=SECURITY
        )
        assert response.status_code == 404
    assert (
        post_form(bob, f"{SECURITY}/passkeys/99999999999/remove", page=SECURITY).status_code == 404
    )
    db.session.refresh(stored)
    assert stored.name == "Laptop"


def test_removing_a_passkey_needs_a_fresh_session(registered, client, new_client):
    remembered = new_client()
    # A passkey is a second factor now: this browser signs in with it.
    passkey_login(remembered, registered.get(login_options(remembered)), remember="y")
    restored = new_client()
    restored.set_cookie("remember", cookie(remembered, "remember").value)
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    response = post_form(restored, f"{SECURITY}/passkeys/{stored.id}/remove", page=SECURITY)
    assert "Confirm your password" in text(response)
    confirmed = restored.post(
        f"{SECURITY}/passkeys/{stored.id}/remove",
        data={
            "csrf_token": csrf_token(restored, SECURITY),
            "reauth_for": "POST",
            "reauth_password": TEST_PASSWORD,
        },
    )
    assert confirmed.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0


def test_deleting_the_account_deletes_its_passkeys(registered, client):
    response = post_form(client, "/account/delete", {"password": TEST_PASSWORD})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0


# --- the relying party -------------------------------------------------------


def test_the_relying_party_comes_from_public_url_never_the_request(app, client, user):
    app.config["PUBLIC_URL"] = "https://keys.example.org"
    login(client)
    found = options(client, f"{SECURITY}/passkeys/options", SECURITY)
    assert found["rp"]["id"] == "keys.example.org"
    from webapp.security.passkeys import relying_party

    with app.test_request_context("/", base_url="https://evil.example"):
        assert relying_party().id == "keys.example.org"
        assert relying_party().origin == "https://keys.example.org"


def test_the_default_public_url_is_localhost(monkeypatch, tmp_path):
    from webapp.config import load_config

    monkeypatch.delenv("PUBLIC_URL", raising=False)
    assert load_config(str(tmp_path))["PUBLIC_URL"] == "http://localhost:5000"
    monkeypatch.setenv("PUBLIC_URL", "https://keys.example.org:8443/")
    assert load_config(str(tmp_path))["PUBLIC_URL"] == "https://keys.example.org:8443"


def _b64(value: str) -> bytes:
    from webauthn.helpers import base64url_to_bytes

    return base64url_to_bytes(value)


def _b64e(value: bytes) -> str:
    from webauthn.helpers import bytes_to_base64url

    return bytes_to_base64url(value)


# --- hostile input -----------------------------------------------------------

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
nasty_text = st.one_of(
    st.text(max_size=300),
    st.just("x" * 5_000),
    st.just("<script>alert(1)</script>"),
    st.just("\x00\x01\x02"),
    st.just('{"id": "\\u0000", "rawId": [], "type": "public-key", "response": null}'),
)


@FUZZ
@given(answer=nasty_text, remember=nasty_text, next_=nasty_text)
def test_any_text_as_a_passkey_answer_is_a_page_never_a_500(client, answer, remember, next_):
    token = csrf_token(client, "/login")
    response = client.post(
        "/login/passkey",
        data={"csrf_token": token, "credential": answer, "remember": remember, "next": next_},
    )
    assert response.status_code in (400, 413)
    assert client.get("/account").status_code == 302


@FUZZ
@given(name=nasty_text, answer=nasty_text)
def test_passkey_names_and_answers_are_any_text_but_stay_escaped(registered, client, name, answer):
    if client.get(SECURITY).status_code != 200:
        login(client)
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    token = csrf_token(client, SECURITY)
    renamed = client.post(
        f"{SECURITY}/passkeys/{stored.id}/rename", data={"csrf_token": token, "name": name}
    )
    assert renamed.status_code in (302, 413)
    added = client.post(
        f"{SECURITY}/passkeys", data={"csrf_token": token, "name": name, "credential": answer}
    )
    assert added.status_code in (400, 413)
    page = text(client.get(SECURITY))
    assert "<script>alert(1)</script>" not in page
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 1


@FUZZ
@given(segment=st.text(min_size=1, max_size=60))
def test_arbitrary_passkey_ids_in_paths(registered, client, segment):
    own = db.session.scalar(select(WebAuthnCredential.id))
    try:
        assume(int(segment) != own)  # removing one's own passkey by its id is allowed
    except ValueError:
        pass
    path = quote(segment, safe="")
    for action in ("rename", "remove"):
        if client.get(SECURITY).status_code != 200:
            login(client)
        response = client.post(
            f"{SECURITY}/passkeys/{path}/{action}",
            data={"csrf_token": csrf_token(client, SECURITY), "name": "x"},
        )
        assert response.status_code in (302, 400, 404, 405)
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 1


def test_a_hostile_origin_cannot_forge_a_log_line(registered, new_client, caplog):
    browser = new_client()
    answer = registered.get(login_options(browser), origin="https://x.example\nINFO admin ok")
    with caplog.at_level("INFO", logger="webapp.passkeys"):
        assert passkey_login(browser, answer).status_code == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "webapp.passkeys"]
    assert lines and all("\n" not in line for line in lines)
