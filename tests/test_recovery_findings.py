"""The second attacker's review (issue 25): each finding, performed as the attack.

Passkeys here use the software authenticator of `tests/authenticator.py`;
tests/browser/test_recovery.py repeats the passkey ones with Chromium's
virtual authenticator.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from tests.authenticator import SoftAuthenticator
from tests.conftest import TEST_PASSWORD, cookie, login, post_form
from tests.test_passkeys import SECURITY, add_passkey, login_options, passkey_login
from webapp.extensions import db
from webapp.models import (
    KnownBrowser,
    RefreshToken,
    SecurityEvent,
    User,
    WebAuthnCredential,
)

NEW_BROWSER_ALERTS = "/account/security/new-browser-alerts"


@pytest.fixture
def app_config(app_config, mail_config, request):
    """The suite's settings with mail, and a test's own on top (indirect parametrize)."""
    return {**app_config, **mail_config, **getattr(request, "param", {})}


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def live_devices(user: User) -> list[RefreshToken]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(RefreshToken).where(
                RefreshToken.user_id == user.id, RefreshToken.is_revoked.is_(False)
            )
        )
    )


# --- 1. an admin's "Reset two-factor" leaves the passkeys --------------------------


def test_an_admins_two_factor_reset_removes_the_passkeys_too(
    client, new_client, user, make_user, smtp
):
    lost = SoftAuthenticator()
    login(client)
    assert add_passkey(client, lost, "Lost phone").status_code == 302
    make_user("root-admin", "admin@example.com", role="admin")
    admin = new_client()
    login(admin, "root-admin")
    url = f"/admin/users/{user.id}"
    assert post_form(admin, url, {"action": "reset_two_factor"}).status_code == 302

    # Whoever holds the lost passkey signs in nowhere.
    finder = new_client()
    refused = passkey_login(finder, lost.get(login_options(finder)))
    assert refused.status_code == 400 and finder.get("/account").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0
    assert "Two-factor</dt><dd>Off" in admin.get(url).text
    assert client.get("/account").status_code == 302  # signed out everywhere
    from webapp.models import AuditEvent

    [reset] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mfa_reset")).all()
    assert reset.details["passkeys"] == 1
    [mail] = [
        m
        for m in smtp.to("alice@example.com")
        if m["Subject"] == "An administrator reset two-factor authentication on your account"
    ]
    assert "passkeys no longer work" in mail.get_body(("plain",)).get_content()


# --- 3. another account spends an address's confirmation-mail limit -------------------


def test_another_accounts_change_request_never_delays_the_owners_confirmation(
    client, new_client, make_user, smtp
):
    owner = make_user("olga", "olga@example.com")  # not confirmed yet
    make_user("mallory", "mallory@example.com")
    stranger = new_client()
    login(stranger, "mallory")
    with time_machine.travel(datetime.now(UTC), tick=False):
        for _ in range(3):
            post_form(stranger, "/account/email", {"new_email": "olga@example.com"})
        login(client, "olga")
        response = post_form(client, "/verify-email", page="/account")
        assert response.headers["Location"] == "/account"
        page = client.get("/account").text
    assert "We sent a confirmation link to olga@example.com" in page
    assert any(
        m["Subject"] == "Confirm your email address for Keystone"
        for m in smtp.to("olga@example.com")
    )
    assert not fresh(owner).email_confirmed


def test_change_requests_are_limited_per_account(client, user):
    login(client)
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for n in range(3):
            answer = post_form(client, "/account/email", {"new_email": f"new{n}@example.com"})
            assert answer.status_code == 302
        refused = post_form(client, "/account/email", {"new_email": "new9@example.com"})
        assert "Wait a few minutes" in refused.text
        clock.shift(timedelta(minutes=11))
        again = post_form(client, "/account/email", {"new_email": "new9@example.com"})
        assert again.status_code == 302


@pytest.mark.parametrize(
    "app_config",
    [{"RATELIMIT_ENABLED": True, "RATELIMIT_EMAIL_CHANGE": "3 per minute"}],
    indirect=True,
    ids=["limits"],
)
def test_change_requests_are_limited_per_ip(client, new_client, make_user):
    codes = []
    for n in range(4):
        someone = make_user(f"u{n}")
        browser = new_client()
        login(browser, someone.username)
        answer = post_form(browser, "/account/email", {"new_email": f"x{n}@example.org"})
        codes.append(answer.status_code)
    assert codes == [302, 302, 302, 429]


def test_mandatory_signup_spends_one_counter_for_new_and_taken_addresses(
    app, new_client, make_user, smtp
):
    """In mandatory mode a stranger's probe (signup, then "Change email" to the same
    address) answers the same for a registered and an unregistered address."""
    app.config["EMAIL_VERIFICATION"] = "mandatory"
    make_user("owner", "owner@example.com").email_verified_at = datetime.now(UTC)
    prober = make_user("prober", "prober@example.com")
    prober.email_verified_at = datetime.now(UTC)
    db.session.commit()
    browser = new_client()
    login(browser, "prober")
    answers = {}
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for n, address in enumerate(("owner@example.com", "nobody@example.com")):
            clock.shift(timedelta(minutes=11))
            visitor = new_client()
            data = {
                "username": f"probe{n}",
                "email": address,
                "password": TEST_PASSWORD,
                "confirm_password": TEST_PASSWORD,
            }
            assert post_form(visitor, "/signup", data).status_code == 200
            answer = post_form(browser, "/account/email", {"new_email": address})
            answers[address] = (answer.status_code, "Wait" in answer.text)
    assert answers["owner@example.com"] == answers["nobody@example.com"] == (302, False)
    # Both signups spent the address's signup counter: a second one within
    # 2 minutes mails neither address again.
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1), tick=False):
        counts = {}
        for n, address in enumerate(("owner@example.com", "nobody2@example.com")):
            before = len(smtp.to(address))
            for attempt in range(2):
                data = {
                    "username": f"again{n}{attempt}",
                    "email": address,
                    "password": TEST_PASSWORD,
                    "confirm_password": TEST_PASSWORD,
                }
                post_form(new_client(), "/signup", data)
            counts[address] = len(smtp.to(address)) - before
    assert counts == {"owner@example.com": 1, "nobody2@example.com": 1}


# --- 4. a first passkey does not re-key the device ------------------------------------


def test_a_first_passkey_re_keys_the_device_so_a_copied_session_stays_out(
    app, new_client, make_user
):
    make_user("boss", "boss@example.com", role="admin", two_factor=False)
    browser = new_client()
    assert login(browser, "boss").status_code == 302
    copy = new_client()
    copy.set_cookie(
        app.config["SESSION_COOKIE_NAME"], cookie(browser, app.config["SESSION_COOKIE_NAME"]).value
    )
    assert add_passkey(browser, SoftAuthenticator(), "Desk key").status_code == 302
    assert browser.get("/admin/").status_code == 200
    assert copy.get("/admin/").status_code == 302  # signed out, not an admin page


def test_a_first_authenticator_app_re_keys_the_device_even_without_signing_out_others(
    app, new_client, user
):
    from tests.conftest import set_up_totp

    browser = new_client()
    login(browser)
    copy = new_client()
    name = app.config["SESSION_COOKIE_NAME"]
    copy.set_cookie(name, cookie(browser, name).value)
    _, answer = set_up_totp(browser, sign_out_others=False)
    assert answer.status_code == 302
    assert browser.get("/account").status_code == 200
    assert copy.get("/account").status_code == 302


# --- 5. "Log in with a passkey" skips EMAIL_VERIFICATION=mandatory --------------------


def test_a_passkey_sign_in_waits_for_a_confirmed_address_in_mandatory_mode(
    app, client, new_client, user
):
    key = SoftAuthenticator()
    login(client)
    assert add_passkey(client, key).status_code == 302
    app.config["EMAIL_VERIFICATION"] = "mandatory"
    before = len(live_devices(user))
    browser = new_client()
    answer = passkey_login(browser, key.get(login_options(browser)))
    assert answer.status_code == 200
    assert "Confirm your email address" in answer.text
    assert browser.get("/account").status_code == 302
    assert len(live_devices(user)) == before  # no device
    # Confirmed, the same passkey signs in.
    fresh(user).email_verified_at = datetime.now(UTC)
    db.session.commit()
    assert passkey_login(browser, key.get(login_options(browser))).status_code == 302


# --- 6. the new-browser alert can be silenced -----------------------------------------


def test_turning_the_alerts_off_or_on_is_listed_and_mailed(client, user, smtp):
    login(client)
    post_form(client, NEW_BROWSER_ALERTS, {"new_browser_alerts": ""}, page=SECURITY)
    post_form(client, NEW_BROWSER_ALERTS, {"new_browser_alerts": "y"}, page=SECURITY)
    page = client.get("/account/activity").text
    assert "New-sign-in emails turned off" in page and "New-sign-in emails turned on" in page
    subject = "Your Keystone setting for new-sign-in emails was changed"
    mails = [m for m in smtp.to("alice@example.com") if m["Subject"] == subject]
    bodies = [m.get_body(("plain",)).get_content() for m in mails]
    assert len(bodies) == 2
    assert "turned off" in bodies[0] and "turned on" in bodies[1]
    # Saving the same setting again changes nothing and mails nothing.
    post_form(client, NEW_BROWSER_ALERTS, {"new_browser_alerts": "y"}, page=SECURITY)
    assert len([m for m in smtp.to("alice@example.com") if m["Subject"] == subject]) == 2


def test_purge_activity_forgets_browsers_not_seen_for_the_log_days(
    app, runner, new_client, user, smtp
):
    home = new_client()
    login(home)  # the account's first browser
    with time_machine.travel(datetime.now(UTC) - timedelta(days=200)):
        old = new_client()
        login(old)  # seen once, long ago
    recent = new_client()
    login(recent)
    result = runner.invoke(args=["purge-activity"])
    assert "Forgot 0 browsers" not in result.output
    assert "Forgot 1 browser not seen for 90 days." in result.output
    assert db.session.scalar(select(func.count()).select_from(KnownBrowser)) == 2
    # The forgotten browser is new again, and no later sign-in counts as the first.
    alerts = len(smtp.to("alice@example.com"))
    login(old)  # its session ended long ago
    assert len(smtp.to("alice@example.com")) == alerts + 1


def test_a_known_browser_is_seen_again_at_each_sign_in(app, new_client, user):
    with time_machine.travel(datetime.now(UTC) - timedelta(days=80)):
        home = new_client()
        login(home)
        post_form(home, "/logout", page="/account")
    login(home)
    [seen] = db.session.scalars(select(KnownBrowser.last_seen_at)).all()
    assert seen > datetime.now(UTC) - timedelta(minutes=1)


# --- 7. removing a passkey leaves its devices signed in -------------------------------


def test_removing_a_passkey_signs_out_the_devices_it_signed_in(app, client, new_client, user, smtp):
    stolen = SoftAuthenticator()
    login(client)
    assert add_passkey(client, stolen, "Old phone").status_code == 302
    thief = new_client()
    assert passkey_login(thief, stolen.get(login_options(thief)), remember="y").status_code == 302
    remember = cookie(thief, app.config["REMEMBER_DEVICE_COOKIE_NAME"]).value
    kept = SoftAuthenticator()
    assert add_passkey(client, kept, "Laptop").status_code == 302
    other = new_client()
    assert passkey_login(other, kept.get(login_options(other))).status_code == 302  # stays
    stored = db.session.scalars(
        select(WebAuthnCredential).where(WebAuthnCredential.name == "Old phone")
    ).one()
    answer = post_form(client, f"{SECURITY}/passkeys/{stored.id}/remove", page=SECURITY)
    assert answer.status_code == 302
    page = client.get(SECURITY).text
    assert "1 device that signed in with it is signed out" in page
    assert thief.get("/account").status_code == 302
    restored = new_client()
    restored.set_cookie(app.config["REMEMBER_DEVICE_COOKIE_NAME"], remember)
    assert restored.get("/account").status_code == 302  # the remember cookie is dead too
    assert other.get("/account").status_code == 200
    assert client.get("/account").status_code == 200


def test_a_device_records_the_passkey_it_signed_in_with(client, new_client, user):
    key = SoftAuthenticator()
    login(client)
    add_passkey(client, key)
    browser = new_client()
    passkey_login(browser, key.get(login_options(browser)))
    stored = db.session.scalars(select(WebAuthnCredential)).one()
    passkey_devices = [d for d in live_devices(user) if d.passkey_id is not None]
    assert [d.passkey_id for d in passkey_devices] == [stored.id]


# --- 8. the second-factor backoff checks before it counts ------------------------------


def test_simultaneous_wrong_codes_are_checked_at_most_up_to_the_threshold(app, user, monkeypatch):
    """20 wrong codes at once: each counts before it is checked, so at most the
    threshold of them reach the code check."""
    from webapp.domain import two_factor as domain
    from webapp.security import two_factor as mechanism
    from webapp.security.throttle import Throttled

    app.config["BACKOFF_THRESHOLD"] = 3
    checked = []
    lock = threading.Lock()
    arrived = threading.Barrier(20, timeout=30)

    def slow_wrong_code(someone, code, now=None):
        with lock:
            checked.append(code)
        threading.Event().wait(0.05)  # a check in flight while the others arrive
        return mechanism.CodeCheck(None)

    monkeypatch.setattr(mechanism, "check_code", slow_wrong_code)
    # Loaded once and shared: the guesses need no connection of their own, so
    # none waits on the pool while the others are held at the barrier.
    someone = db.session.get(User, user.id)
    db.session.expunge(someone)
    outcomes = []

    def guess(n: int) -> None:
        with app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.9"}):
            arrived.wait()
            try:
                domain.verify_second_factor(someone, f"{n:06d}")
                outcomes.append("checked")
            except Throttled:
                outcomes.append("throttled")
            finally:
                db.session.rollback()
                db.session.remove()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 20
    assert 1 <= len(checked) <= 3
    assert outcomes.count("throttled") == 20 - len(checked)


def test_after_the_wait_one_more_code_is_checked(app, user, monkeypatch):
    from webapp.domain import two_factor as domain
    from webapp.security import two_factor as mechanism
    from webapp.security.throttle import Throttled

    app.config["BACKOFF_THRESHOLD"] = 2
    checked = []
    monkeypatch.setattr(
        mechanism,
        "check_code",
        lambda u, c, now=None: checked.append(c) or mechanism.CodeCheck(None),
    )
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        with app.test_request_context():
            someone = db.session.get(User, user.id)
            domain.verify_second_factor(someone, "111111")
            domain.verify_second_factor(someone, "222222")
            for _ in range(3):
                with pytest.raises(Throttled):
                    domain.verify_second_factor(someone, "333333")
            clock.shift(timedelta(seconds=app.config["BACKOFF_BASE_SECONDS"] + 1))
            domain.verify_second_factor(someone, "444444")
            with pytest.raises(Throttled):
                domain.verify_second_factor(someone, "555555")
            db.session.rollback()
    assert checked == ["111111", "222222", "444444"]


# --- passwords -------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["Letm3in_", "P@ssw0rd1", "keystone2026"])
def test_guessable_passwords_are_refused_with_zxcvbns_reason(client, password):
    data = {
        "username": "bob",
        "email": "bob@example.com",
        "password": password,
        "confirm_password": password,
    }
    answer = post_form(client, "/signup", data)
    assert answer.status_code == 200
    assert "This password is too easy to guess." in answer.text
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_the_users_own_name_is_a_guessable_word(client):
    data = {
        "username": "zanzibarqueen",
        "email": "zq@example.com",
        "password": "Zanzibarqueen7",
        "confirm_password": "Zanzibarqueen7",
    }
    assert "too easy to guess" in post_form(client, "/signup", data).text
    data.update(username="someoneelse", email="se@example.com")
    assert post_form(client, "/signup", data).status_code == 302


def test_security_events_list_the_alert_setting_with_the_device(client, user):
    login(client)
    post_form(client, NEW_BROWSER_ALERTS, {"new_browser_alerts": ""}, page=SECURITY)
    [event] = db.session.scalars(
        select(SecurityEvent).where(SecurityEvent.event == "new_browser_alerts_off")
    ).all()
    assert event.device_id is not None


def test_the_confirm_first_page_sends_the_link_with_its_own_form(app, client, user, smtp):
    """The sign-in rules' "confirm your address first" answer keeps the session's
    CSRF token, so its "Send confirmation email" button works."""
    from tests.conftest import CSRF_RE

    app.config["EMAIL_VERIFICATION"] = "mandatory"
    page = post_form(client, "/login", {"identifier": "alice", "password": TEST_PASSWORD})
    assert "Confirm your email address" in page.text
    token = CSRF_RE.search(page.text).group(1)
    sent = client.post("/verify-email", data={"csrf_token": token})
    assert sent.status_code == 302 and sent.headers["Location"] == "/login"
    assert smtp.to("alice@example.com")[-1]["Subject"] == "Confirm your email address for Keystone"
