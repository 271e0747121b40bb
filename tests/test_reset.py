"""Password reset by mail: same answer for every email, single-use timed links, sign-out."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update

from tests.conftest import TEST_PASSWORD, cookie, csrf_token, login, post_form
from tests.smtp import reset_link, text_of
from webapp.extensions import db
from webapp.models import AuditEvent, RefreshToken, RevokeReason, User
from webapp.security import reset_tokens

NEW_PASSWORD = "a-brand-new-passphrase-42"


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def ask_for_link(client, email: str = "alice@example.com", **kwargs):
    return post_form(client, "/reset-password", {"email": email}, **kwargs)


def path_of(link: str) -> str:
    return urlsplit(link).path


def mailed_path(smtp, client, email: str = "alice@example.com") -> str:
    """Ask for a reset link and return the path of the one mailed."""
    ask_for_link(client, email)
    return path_of(reset_link(smtp.to(email)[-1]))


def set_password(
    client, path: str, password: str = NEW_PASSWORD, confirm: str | None = None, page=None
):
    return post_form(
        client,
        path,
        {"new_password": password, "confirm_new_password": confirm or password},
        page=page,
    )


def test_request_page_has_contract_labels_and_a_link_from_login(client):
    login_page = client.get("/login").get_data(as_text=True)
    assert 'href="/reset-password"' in login_page
    assert "Forgot your password?" in login_page
    page = client.get("/reset-password").get_data(as_text=True)
    assert '<label for="email">Email</label>' in page
    assert 'value="Send reset link"' in page


def test_known_and_unknown_emails_get_the_same_answer(client, new_client, user, smtp):
    known = ask_for_link(client, "alice@example.com")
    unknown = ask_for_link(new_client(), "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert "Check your email" in known.get_data(as_text=True)
    assert len(smtp.messages) == 1
    assert smtp.to("nobody@example.com") == []


def test_the_request_does_the_same_work_for_known_and_unknown_emails(
    app, client, new_client, user, smtp, count_queries, held_jobs
):
    """With mail sent in the background, the request itself never looks the email up."""
    statements = {}
    for email in ("alice@example.com", "nobody@example.com"):
        browser = new_client()
        token = csrf_token(browser, "/reset-password")
        with count_queries() as seen:
            browser.post("/reset-password", data={"csrf_token": token, "email": email})
        statements[email] = seen
    assert statements["alice@example.com"] == statements["nobody@example.com"]
    assert not any("users" in s for s in statements["alice@example.com"])
    assert smtp.messages == []
    held_jobs.run()
    assert len(smtp.to("alice@example.com")) == 1


def test_bad_email_is_a_form_error(client, smtp):
    response = ask_for_link(client, "not an email")
    assert response.status_code == 200
    assert "Enter a valid email address." in response.get_data(as_text=True)
    assert smtp.messages == []


def test_email_lookup_ignores_case(client, user, smtp):
    ask_for_link(client, "  ALICE@Example.COM ")
    assert len(smtp.to("alice@example.com")) == 1


def test_inactive_account_gets_no_mail_and_the_same_answer(client, new_client, make_user, smtp):
    make_user("bob", "bob@example.com", active=False)
    inactive = ask_for_link(client, "bob@example.com")
    unknown = ask_for_link(new_client(), "nobody@example.com")
    assert inactive.get_data() == unknown.get_data()
    assert smtp.messages == []


def test_reset_page_has_contract_labels(client, user, smtp):
    page = client.get(mailed_path(smtp, client)).get_data(as_text=True)
    assert '<label for="new_password">New password</label>' in page
    assert '<label for="confirm_new_password">Confirm new password</label>' in page
    assert 'value="Set password"' in page


def test_full_reset_signs_out_every_device_and_does_not_sign_in(client, new_client, user, smtp):
    other = new_client()
    login(other, remember=True)
    remember = cookie(other, "remember")
    assert remember is not None
    assert other.get("/account").status_code == 200

    response = set_password(client, mailed_path(smtp, client))
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    # Not signed in by the reset: the user logs in with the new password.
    assert client.get("/account").status_code == 302

    # The other browser's session and its remember cookie are both dead.
    assert other.get("/account").status_code == 302
    replay = new_client()
    replay.set_cookie("remember", remember.value)
    assert replay.get("/account").status_code == 302
    devices = db.session.scalars(select(RefreshToken)).all()
    assert devices and all(d.is_revoked for d in devices)
    assert {d.revoked_reason for d in devices} == {RevokeReason.RESET}

    assert login(new_client(), password=TEST_PASSWORD).status_code == 200
    assert login(new_client(), password=NEW_PASSWORD).status_code == 302
    events = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_username == "alice")
    ).all()
    assert "password_reset" in events


def test_reset_mails_a_notice(client, user, smtp):
    set_password(client, mailed_path(smtp, client))
    notice = smtp.to("alice@example.com")[-1]
    assert notice["Subject"] == "Your Keystone password was changed"
    assert "changed from Chrome on Linux at" in text_of(notice)


def test_link_works_once(client, user, smtp):
    path = mailed_path(smtp, client)
    assert set_password(client, path).status_code == 302
    again = client.get(path)
    assert again.status_code == 400
    assert "This link does not work" in again.get_data(as_text=True)
    # Posting to it again changes nothing either.
    response = client.post(
        path,
        data={
            "csrf_token": csrf_token(client, "/reset-password"),
            "new_password": "yet-another-passphrase-7",
            "confirm_new_password": "yet-another-passphrase-7",
        },
    )
    assert response.status_code == 400
    assert login(client, password=NEW_PASSWORD).status_code == 302


def test_link_dies_when_the_password_changes_another_way(client, user, smtp):
    path = mailed_path(smtp, client)
    from webapp.domain.credentials import set_password as store_password

    store_password(user, "changed-elsewhere-99")
    db.session.commit()
    assert client.get(path).status_code == 400


def test_invalid_link_page_offers_to_ask_again(client):
    response = client.get("/reset-password/garbage")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This link does not work" in page
    assert 'href="/reset-password"' in page


def test_link_expires_after_an_hour(client, user, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        path = mailed_path(smtp, client)
        clock.shift(timedelta(minutes=59))
        assert client.get(path).status_code == 200
        clock.shift(timedelta(minutes=2))
        assert client.get(path).status_code == 400
        assert set_password(client, path, page="/reset-password").status_code == 400
    assert login(client, password=TEST_PASSWORD).status_code == 302


def test_link_lifetime_is_configurable(app, client, user, smtp):
    app.config["RESET_TOKEN_MAX_AGE"] = 600
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        path = mailed_path(smtp, client)
        assert "for 10 minutes" in text_of(smtp.messages[-1])
        clock.shift(timedelta(minutes=11))
        assert client.get(path).status_code == 400


def test_tampered_token_is_refused(client, user, smtp):
    path = mailed_path(smtp, client)
    token = path.rsplit("/", 1)[1]
    # Change a character in the middle of the signature (the last one may
    # carry only padding bits).
    middle = len(token) - 8
    swapped = "A" if token[middle] != "A" else "B"
    tampered = token[:middle] + swapped + token[middle + 1 :]
    assert client.get(f"/reset-password/{tampered}").status_code == 400
    payload, _, rest = token.partition(".")
    forged = json.dumps({"u": str(user.id), "f": "0" * 32}).encode()
    forged_payload = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    assert client.get(f"/reset-password/{forged_payload}.{rest}").status_code == 400


def test_token_signed_for_another_purpose_is_refused(app, client, user):
    for salt in ("email-confirm", "itsdangerous"):
        serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=salt)
        token = serializer.dumps(
            {"u": str(user.id), "f": reset_tokens.fingerprint(user.password_hash)}
        )
        assert client.get(f"/reset-password/{token}").status_code == 400
    # The same payload under the reset salt does work: only the salt differs.
    good = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=reset_tokens.SALT).dumps(
        {"u": str(user.id), "f": reset_tokens.fingerprint(user.password_hash)}
    )
    assert client.get(f"/reset-password/{good}").status_code == 200


@pytest.mark.parametrize("payload", [[], "x", {"u": 1, "f": 2}, {"u": "not-a-uuid", "f": "x"}])
def test_odd_payloads_signed_with_the_right_salt_are_refused(app, client, payload):
    token = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=reset_tokens.SALT).dumps(payload)
    assert client.get(f"/reset-password/{token}").status_code == 400


def test_token_payload_holds_no_password_hash(client, user, smtp):
    token = mailed_path(smtp, client).rsplit("/", 1)[1]
    compressed = token.startswith(".")
    payload = token.lstrip(".").split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    decoded = (zlib.decompress(decoded) if compressed else decoded).decode()
    assert str(user.id) in decoded
    assert "$2b$" not in decoded
    assert user.password_hash not in decoded
    assert user.password_hash[-31:] not in decoded


def test_link_host_comes_from_public_url_not_the_request(app, client, user, smtp):
    app.config["PUBLIC_URL"] = "https://keystone.example.org"
    evil = "http://evil.test"
    token = csrf_token(client, "/reset-password", base_url=evil)
    response = client.post(
        "/reset-password",
        data={"csrf_token": token, "email": "alice@example.com"},
        base_url=evil,
        headers={"X-Forwarded-Host": "evil.test"},
    )
    assert response.status_code == 200
    link = reset_link(smtp.to("alice@example.com")[-1])
    assert link.startswith("https://keystone.example.org/reset-password/")
    assert "evil" not in text_of(smtp.messages[-1])


def test_reset_pages_send_no_referrer(client, user, smtp):
    path = mailed_path(smtp, client)
    for response in (
        client.get("/reset-password"),
        client.get(path),
        set_password(client, path, "short", "short"),
        client.get("/reset-password/garbage"),
    ):
        assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("password1234", None, "too easy to guess"),
        ("short", None, "at least 8 characters"),
        ("a" * 73, None, "longer than 72 bytes"),
        ("€" * 25, None, "longer than 72 bytes"),
        ("alice@example.com", None, "must not be your email"),
        (NEW_PASSWORD, "something-else-entirely", "do not match"),
    ],
)
def test_new_password_follows_the_policy(client, user, smtp, password, confirm, message):
    path = mailed_path(smtp, client)
    response = set_password(client, path, password, confirm)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    # Nothing changed: the link still works and the old password too.
    assert client.get(path).status_code == 200
    assert login(client, password=TEST_PASSWORD).status_code == 302


def test_reset_post_without_csrf_is_refused(client, user, smtp):
    path = mailed_path(smtp, client)
    response = client.post(
        path, data={"new_password": NEW_PASSWORD, "confirm_new_password": NEW_PASSWORD}
    )
    assert response.status_code == 400
    assert login(client, password=TEST_PASSWORD).status_code == 302


def test_reset_works_while_the_account_is_throttled(client, new_client, user, smtp):
    attacker = new_client()
    for _ in range(5):
        login(attacker, password="wrong-guess")
    assert login(attacker, password=TEST_PASSWORD).status_code == 429

    assert set_password(client, mailed_path(smtp, client)).status_code == 302
    assert login(new_client(), password=NEW_PASSWORD).status_code == 302


def test_one_address_gets_a_limited_number_of_mails(app, client, new_client, user, smtp):
    app.config["RESET_MAIL_LIMIT"] = "3 per hour"
    pages = [ask_for_link(new_client()).get_data() for _ in range(5)]
    assert len(set(pages)) == 1
    assert len(smtp.to("alice@example.com")) == 3


def test_signed_in_user_asking_for_a_link_goes_to_the_account(client, user):
    login(client)
    response = client.get("/reset-password")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


def test_reset_from_a_signed_in_browser_signs_it_out(client, user, smtp):
    path = mailed_path(smtp, client)
    login(client)
    assert set_password(client, path).status_code == 302
    assert client.get("/account").status_code == 302


def test_concurrent_second_use_loses(client, user, smtp):
    """The update is conditional on the old hash: of two uses of one link, one wins."""
    from webapp.domain.credentials import reset_password
    from webapp.security.passwords import hash_password

    token = mailed_path(smtp, client).rsplit("/", 1)[1]
    checked = reset_tokens.check_token(token)
    assert checked is not None
    # Another request with the same link commits first.
    db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(password_hash=hash_password(NEW_PASSWORD))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    assert not reset_password(checked.user, "another-passphrase-77")
    db.session.rollback()
    assert login(client, password=NEW_PASSWORD).status_code == 302
