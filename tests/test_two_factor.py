"""Two-factor authentication: set-up, the login's second step, recovery codes,
replay across processes, roles that require it, and an admin's reset."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import func, select

from tests.conftest import (
    TEST_PASSWORD,
    TOTP_SECRETS,
    IsolatedClient,
    cookie,
    csrf_token,
    enable_totp,
    login,
    post_form,
    set_up_totp,
)
from webapp import create_app
from webapp.extensions import db
from webapp.models import AuditEvent, RecoveryCode, RefreshToken, Role, TotpAuthenticator, User

RECOVERY_LIST = re.compile(r'<ul class="recovery-codes">(.*?)</ul>', re.S)
RECOVERY_ITEM = re.compile(r"<li><code>([0-9a-z-]+)</code></li>")
ROLE_REQUIRES = "Your role requires two-factor authentication."
WRONG_CODE = "That code is not right."


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def devices_of(user: User) -> list[RefreshToken]:
    return list(
        db.session.scalars(
            select(RefreshToken).where(RefreshToken.user_id == user.id).order_by(RefreshToken.id)
        )
    )


def password_step(client, identifier: str = "alice", **extra):
    """Send the login form only: the first step."""
    data = {"identifier": identifier, "password": TEST_PASSWORD, **extra}
    return post_form(client, "/login", data)


def code_step(client, code: str):
    return post_form(client, "/login/verify", {"code": code}, page="/login")


def code_at(user: User, offset_steps: int = 0) -> str:
    return pyotp.TOTP(TOTP_SECRETS[user.id]).at(time.time() + 30 * offset_steps)


def forget_last_step(user: User) -> None:
    """Stand for time passing since the last code (each code works once)."""
    found = db.session.scalars(
        select(TotpAuthenticator).where(TotpAuthenticator.user_id == user.id)
    ).one()
    found.last_step = None
    db.session.commit()


def recovery_codes_on(page: str) -> list[str]:
    (inner,) = RECOVERY_LIST.findall(page)
    return RECOVERY_ITEM.findall(inner)


def turned_on(client) -> tuple[str, list[str]]:
    """Set up the authenticator app through the pages; return its secret and the codes shown."""
    secret, response = set_up_totp(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/security/recovery-codes"
    page = client.get("/account/security/recovery-codes").get_data(as_text=True)
    return secret, recovery_codes_on(page)


def mid_step(now: datetime) -> datetime:
    """Return the next moment in the middle of a 30-second step, so ±1 step is exact.

    Never earlier than `now`: a signed session from the future is refused.
    """
    start = int(now.timestamp()) // 30 * 30 + 15
    return datetime.fromtimestamp(start if start >= now.timestamp() + 1 else start + 30, UTC)


# --- set-up -------------------------------------------------------------------------


def test_setup_page_shows_a_qr_code_as_inline_svg_and_the_key_as_text(client, user):
    login(client)
    response = client.get("/account/security/totp")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Setup key:" in html
    assert '<label for="code">Authentication code</label>' in html
    assert '<label for="sign_out_others">Sign out all other devices</label>' in html
    assert re.search(r'id="sign_out_others"[^>]*checked', html)  # ticked by default
    assert ">Turn on<" in html or 'value="Turn on"' in html
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert "style" not in svg.lower() and "data:" not in html
    assert "<script" not in html.split("</head>")[1].replace('src="/static/js/app.js"', "")
    key = re.search(r'id="setup-key">([A-Z2-7 ]+)<', html).group(1)
    assert len(key.replace(" ", "")) == 32  # 160 bits, base32


def test_the_secret_stays_the_same_while_the_person_retries(client, user):
    login(client)
    first = re.search(r'id="setup-key">([A-Z2-7 ]+)<', client.get("/account/security/totp").text)
    wrong = post_form(client, "/account/security/totp", {"code": "000000"})
    assert wrong.status_code == 200 and "That code is not right." in wrong.text
    again = re.search(r'id="setup-key">([A-Z2-7 ]+)<', wrong.text)
    assert first.group(1) == again.group(1)
    assert db.session.scalar(select(func.count()).select_from(TotpAuthenticator)) == 0
    assert [e.details for e in events("mfa_failed")] == [{"during": "setup"}]


def test_turning_on_shows_ten_recovery_codes_once_and_mails_the_owner(client, user, smtp):
    login(client)
    secret, codes = turned_on(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        # 12 symbols of a 32-letter alphabet: 60 bits each.
        assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", code)
    again = client.get("/account/security/recovery-codes")
    assert again.status_code == 302 and again.headers["Location"] == "/account/security"
    security = client.get("/account/security").get_data(as_text=True)
    assert "10 left" in security and "Turn off authenticator app" in security
    assert [m["Subject"] for m in smtp.to("alice@example.com")] == [
        "Two-factor authentication is on for your Keystone account"
    ]
    assert len(events("totp_enabled")) == 1 and len(events("recovery_codes_generated")) == 1
    assert events("totp_enabled")[0].target_username == "alice"


def test_secrets_and_recovery_codes_are_not_stored_in_the_clear(app, client, user):
    login(client)
    secret, codes = turned_on(client)
    stored = db.session.scalars(select(TotpAuthenticator)).one()
    assert secret not in stored.secret_encrypted
    from webapp.security import two_factor

    assert two_factor.decrypt(stored.secret_encrypted) == secret
    hashes = set(db.session.scalars(select(RecoveryCode.code_hash)))
    assert len(hashes) == 10
    for code in codes:
        plain = code.replace("-", "")
        assert plain not in hashes and all(plain not in h for h in hashes)


def test_a_configured_key_encrypts_and_another_key_cannot_read(app_config, user):
    from cryptography.fernet import Fernet

    from tests.conftest import serve
    from webapp.security import two_factor

    key = Fernet.generate_key().decode()
    for running in serve({**app_config, "MFA_ENCRYPTION_KEY": key}):
        with running.test_request_context():
            token = two_factor.encrypt("JBSWY3DPEHPK3PXP")
            assert Fernet(key).decrypt(token.encode()) == b"JBSWY3DPEHPK3PXP"
            running.config["MFA_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
            assert two_factor.decrypt(token) is None
            running.config["MFA_ENCRYPTION_KEY"] = "not a fernet key"
            with pytest.raises(two_factor.MFAConfigError):
                two_factor.encrypt("x")


def test_the_default_key_is_derived_from_secret_key(app):
    from webapp.security import two_factor

    with app.test_request_context():
        token = two_factor.encrypt("JBSWY3DPEHPK3PXP")
        assert two_factor.decrypt(token) == "JBSWY3DPEHPK3PXP"
        app.config["SECRET_KEY"] = "another-secret-key"
        assert two_factor.decrypt(token) is None


def test_turning_on_signs_out_other_devices_when_ticked(client, new_client, user):
    other = new_client()
    login(other)
    login(client)
    set_up_totp(client, sign_out_others=True)
    assert other.get("/account").status_code == 302
    assert client.get("/account").status_code == 200
    assert events("totp_enabled")[0].details == {"others_signed_out": 1}


def test_turning_on_keeps_other_devices_when_unticked(client, new_client, user):
    other = new_client()
    login(other)
    login(client)
    set_up_totp(client, sign_out_others=False)
    assert other.get("/account").status_code == 200


def test_setup_from_a_remembered_session_asks_for_the_password_first(app, new_client, user):
    first = new_client()
    login(first, remember=True)
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    restored = new_client()
    restored.set_cookie(name, cookie(first, name).value)
    page = restored.get("/account/security/totp").get_data(as_text=True)
    assert "Confirm your password" in page and "Setup key:" not in page
    done = post_form(
        restored,
        "/account/security/totp",
        {"reauth_for": "GET", "reauth_password": TEST_PASSWORD},
    )
    assert done.status_code == 302
    assert "Setup key:" in restored.get("/account/security/totp").get_data(as_text=True)


# --- the second step of a login -------------------------------------------------


@pytest.fixture
def carol(make_user):
    """A plain user with an authenticator app."""
    return make_user("carol", two_factor=True)


def test_a_right_password_creates_no_device_and_no_session(client, carol):
    response = password_step(client, "carol")
    assert response.status_code == 302 and response.headers["Location"] == "/login/verify"
    assert devices_of(carol) == []
    assert client.get("/account").status_code == 302  # treated as signed out
    assert client.get("/account").headers["Location"].startswith("/login")
    assert client.get("/admin/").status_code == 302
    page = client.get("/login/verify").get_data(as_text=True)
    assert '<label for="code">Authentication code</label>' in page and "Verify" in page


def test_the_right_code_signs_in_and_the_device_records_how(client, carol):
    password_step(client, "carol", next="/account/devices")
    response = code_step(client, code_at(carol))
    assert response.status_code == 302 and response.headers["Location"] == "/account/devices"
    assert client.get("/account").status_code == 200
    (device,) = devices_of(carol)
    assert device.auth_method == "password+totp" and device.mfa_at is not None
    (event,) = events("login")
    assert event.details == {"remember": False, "method": "password+totp"}


def test_a_password_only_sign_in_records_its_method(client, user):
    login(client)
    (device,) = devices_of(user)
    assert device.auth_method == "password" and device.mfa_at is None
    assert events("login")[0].details["method"] == "password"


def test_a_wrong_code_is_refused_counted_and_audited(client, carol):
    password_step(client, "carol")
    response = code_step(client, "123456" if code_at(carol) != "123456" else "654321")
    assert response.status_code == 200 and WRONG_CODE in response.text
    assert devices_of(carol) == []
    (failed,) = events("mfa_failed")
    assert failed.target_username == "carol" and failed.details == {"during": "login"}


def test_five_wrong_codes_end_the_step(client, carol):
    password_step(client, "carol")
    wrong = "000000" if code_at(carol) != "000000" else "111111"
    for _ in range(4):
        assert WRONG_CODE in code_step(client, wrong).text
    fifth = code_step(client, wrong)
    assert fifth.status_code == 302 and fifth.headers["Location"] == "/login"
    later = client.get("/login/verify")
    assert later.status_code == 302 and later.headers["Location"] == "/login"
    assert devices_of(carol) == []


def test_wrong_codes_count_toward_the_backoff_that_a_password_does_not_clear(client, carol):
    with time_machine.travel(mid_step(datetime.now(UTC)), tick=False) as clock:
        wrong = "000000" if code_at(carol) != "000000" else "111111"
        password_step(client, "carol")
        for _ in range(5):
            code_step(client, wrong)
        # The account now waits: even the right password is not checked.
        waiting = password_step(client, "carol")
        assert waiting.status_code == 429 and "Too many failed attempts" in waiting.text
        clock.shift(timedelta(seconds=61))
        # The right password does not buy five fresh guesses at the code:
        # one more wrong code, and the next, even the right one, waits longer.
        assert password_step(client, "carol").headers["Location"] == "/login/verify"
        assert WRONG_CODE in code_step(client, wrong).text
        refused = code_step(client, code_at(carol))
        assert refused.status_code == 429 and "Too many failed attempts" in refused.text
    assert devices_of(carol) == []


def test_the_step_expires_after_five_minutes(client, carol):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        password_step(client, "carol")
        clock.shift(timedelta(seconds=301))
        response = code_step(client, pyotp.TOTP(TOTP_SECRETS[carol.id]).now())
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert devices_of(carol) == []


def test_without_a_password_step_the_code_page_sends_to_login(client, carol):
    response = client.get("/login/verify")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    token = csrf_token(client, "/login")
    posted = client.post("/login/verify", data={"csrf_token": token, "code": code_at(carol)})
    assert posted.status_code == 302 and posted.headers["Location"] == "/login"
    assert devices_of(carol) == []


def test_a_new_login_replaces_the_pending_step(client, make_user, carol):
    dave = make_user("dave", two_factor=True)
    password_step(client, "carol")
    password_step(client, "dave")
    # Carol's code no longer means anything here: the step is Dave's now.
    assert WRONG_CODE in code_step(client, code_at(carol)).text
    assert code_step(client, code_at(dave)).status_code == 302
    assert devices_of(carol) == [] and len(devices_of(dave)) == 1
    assert "dave" in client.get("/account").text


def test_a_login_without_second_factor_ends_a_pending_step(client, user, carol):
    password_step(client, "carol")
    assert password_step(client, "alice").headers["Location"] == "/account"
    assert client.get("/login/verify").headers["Location"] == "/account"
    assert devices_of(carol) == []


def test_remember_choice_applies_after_the_code_and_is_not_asked_again(
    app, client, new_client, carol
):
    password_step(client, "carol", remember="y")
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    assert cookie(client, name) is None  # nothing remembered before the second factor
    code_step(client, code_at(carol))
    remembered = cookie(client, name)
    assert remembered is not None
    restored = new_client()
    restored.set_cookie(name, remembered.value)
    assert restored.get("/account").status_code == 200  # no code asked
    (device,) = devices_of(carol)
    assert device.is_remembered and device.mfa_at is not None


# --- codes: drift and replay -------------------------------------------------------


def test_the_same_code_twice_is_refused_logged_and_the_owner_told(client, new_client, carol, smtp):
    code = code_at(carol)
    password_step(client, "carol")
    assert code_step(client, code).status_code == 302
    again = new_client()
    password_step(again, "carol")
    assert WRONG_CODE in code_step(again, code).text
    (replayed,) = events("mfa_failed")
    assert replayed.details == {"during": "login", "replayed": True}
    assert [m["Subject"] for m in smtp.to("carol@example.com")] == [
        "A used sign-in code was tried again on your Keystone account"
    ]


def test_the_same_code_through_two_processes_is_accepted_once(app_config, client, carol):
    """Two app instances on one database stand for two processes (no shared memory)."""
    other = create_app(app_config)
    other.test_client_class = IsolatedClient
    try:
        through_b = other.test_client()
        code = code_at(carol)
        password_step(client, "carol")
        password_step(through_b, "carol")
        first = code_step(client, code)
        second = code_step(through_b, code)
        assert first.status_code == 302
        assert second.status_code == 200 and WRONG_CODE in second.text
        assert len(devices_of(carol)) == 1
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_an_earlier_code_after_a_later_one_is_refused(client, new_client, carol):
    with time_machine.travel(mid_step(datetime.now(UTC)), tick=False):
        password_step(client, "carol")
        assert code_step(client, code_at(carol, +1)).status_code == 302
        late = new_client()
        password_step(late, "carol")
        assert WRONG_CODE in code_step(late, code_at(carol, 0)).text


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_one_step_of_drift_either_way_at_login(client, carol, offset, accepted):
    with time_machine.travel(mid_step(datetime.now(UTC)), tick=False):
        password_step(client, "carol")
        response = code_step(client, code_at(carol, offset))
    assert (response.status_code == 302) is accepted
    assert (WRONG_CODE in response.text) is not accepted


@pytest.mark.parametrize(("offset", "accepted"), [(-2, False), (-1, True), (1, True), (2, False)])
def test_one_step_of_drift_either_way_at_setup(client, user, offset, accepted):
    login(client)
    with time_machine.travel(mid_step(datetime.now(UTC)), tick=False):
        page = client.get("/account/security/totp").get_data(as_text=True)
        secret = re.search(r'id="setup-key">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
        code = pyotp.TOTP(secret).at(time.time() + 30 * offset)
        response = post_form(client, "/account/security/totp", {"code": code})
    assert (response.status_code == 302) is accepted


def test_the_setup_code_cannot_be_replayed_at_login(client, new_client, user):
    login(client)
    with time_machine.travel(mid_step(datetime.now(UTC)), tick=False):
        page = client.get("/account/security/totp").get_data(as_text=True)
        secret = re.search(r'id="setup-key">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
        code = pyotp.TOTP(secret).now()
        assert post_form(client, "/account/security/totp", {"code": code}).status_code == 302
        browser = new_client()
        password_step(browser)
        assert WRONG_CODE in code_step(browser, code).text


# --- recovery codes ------------------------------------------------------------------


def test_each_recovery_code_works_once_and_mails_the_owner(client, new_client, user, smtp):
    login(client)
    _, codes = turned_on(client)
    first = new_client()
    password_step(first)
    response = code_step(first, codes[0].upper().replace("-", " "))  # as typed by hand
    assert response.status_code == 302
    assert devices_of(user)[-1].auth_method == "password+recovery"
    second = new_client()
    password_step(second)
    assert WRONG_CODE in code_step(second, codes[0]).text
    assert code_step(second, codes[1]).status_code == 302
    assert "8 left" in second.get("/account/security").text
    used = events("recovery_code_used")
    assert [e.details for e in used] == [{"left": 9}, {"left": 8}]
    subjects = [m["Subject"] for m in smtp.to("alice@example.com")]
    assert subjects.count("A recovery code was used to sign in to your Keystone account") == 2


def test_new_recovery_codes_void_the_old_ones(client, new_client, user):
    login(client)
    _, old = turned_on(client)
    response = post_form(client, "/account/security/recovery-codes", page="/account/security")
    assert response.headers["Location"] == "/account/security/recovery-codes"
    new = recovery_codes_on(client.get("/account/security/recovery-codes").text)
    assert len(new) == 10 and not set(new) & set(old)
    browser = new_client()
    password_step(browser)
    assert WRONG_CODE in code_step(browser, old[2]).text
    assert code_step(browser, new[2]).status_code == 302
    assert len(events("recovery_codes_generated")) == 2


def test_recovery_codes_cannot_be_generated_without_a_second_factor(client, user):
    login(client)
    response = post_form(client, "/account/security/recovery-codes", page="/account/security")
    assert response.headers["Location"] == "/account/security"
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0


# --- turning off ---------------------------------------------------------------------


def test_turning_off_mails_the_owner_and_the_next_login_asks_no_code(
    client, new_client, user, smtp
):
    login(client)
    _, codes = turned_on(client)
    response = post_form(client, "/account/security/totp/disable", page="/account/security")
    assert response.headers["Location"] == "/account/security"
    page = client.get("/account/security").text
    assert "Set up authenticator app" in page and "The authenticator app is off." in page
    assert events("totp_disabled")[0].target_username == "alice"
    assert "Two-factor authentication was turned off on your Keystone account" in [
        m["Subject"] for m in smtp.to("alice@example.com")
    ]
    assert password_step(new_client()).headers["Location"] == "/account"
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0


def test_turning_off_is_refused_when_the_role_requires_it(client, admin):
    login(client, "root-admin")
    response = post_form(client, "/account/security/totp/disable", page="/account/security")
    assert response.headers["Location"] == "/account/security"
    page = client.get("/account/security").text
    assert "cannot be turned off" in page
    assert db.session.scalar(select(func.count()).select_from(TotpAuthenticator)) == 1
    assert events("totp_disabled") == []


def test_turning_off_from_a_remembered_session_asks_for_the_password(app, new_client, carol):
    first = new_client()
    login(first, "carol", remember=True)
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    restored = new_client()
    restored.set_cookie(name, cookie(first, name).value)
    token = csrf_token(restored, "/account/security")
    page = restored.post("/account/security/totp/disable", data={"csrf_token": token})
    assert page.status_code == 200 and "Confirm your password" in page.text
    assert db.session.scalar(select(func.count()).select_from(TotpAuthenticator)) == 1


@pytest.mark.parametrize(
    "url",
    [
        "/account/security/totp/disable",
        "/account/security/recovery-codes",
        "/account/security/totp",
    ],
)
def test_new_posts_without_csrf_token_are_400_and_change_nothing(client, carol, url):
    login(client, "carol")
    response = client.post(url, data={"code": "123456"})
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(TotpAuthenticator)) == 1


def test_disable_is_post_only(client, carol):
    login(client, "carol")
    assert client.get("/account/security/totp/disable").status_code == 405


# --- roles that require two-factor ----------------------------------------------------


@pytest.fixture
def bare_admin(make_user):
    """An admin without a second factor yet, as `flask create-admin` makes one."""
    return make_user("bare-admin", role="admin", two_factor=False)


def test_an_admin_without_two_factor_is_confined_to_the_setup_pages(client, bare_admin):
    assert login(client, "bare-admin").headers["Location"] == "/account"
    for path in ["/account", "/account/devices", "/account/password", "/admin/", "/admin/users"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == "/account/security", path
    page = client.get("/account/security").get_data(as_text=True)
    assert ROLE_REQUIRES in page
    assert client.get("/account/security/totp").status_code == 200
    token = csrf_token(client, "/account/security")
    refused = client.post("/account/devices/revoke-others", data={"csrf_token": token})
    assert refused.headers["Location"] == "/account/security"
    assert client.post("/logout", data={"csrf_token": token}).headers["Location"] == "/login"


def test_a_plain_user_without_two_factor_is_not_confined(client, user):
    login(client)
    for path in ["/account", "/account/devices", "/account/password", "/account/security"]:
        assert client.get(path).status_code == 200, path


def test_turning_on_in_a_session_from_before_lets_it_into_admin_pages(client, bare_admin):
    login(client, "bare-admin")
    set_up_totp(client)
    (device,) = devices_of(bare_admin)
    assert device.mfa_at is not None
    assert client.get("/admin/").status_code == 200
    assert client.get("/account").status_code == 200


def test_admin_pages_refuse_a_device_that_passed_no_second_factor(client, new_client, bare_admin):
    login(client, "bare-admin")
    enable_totp(bare_admin)  # set up in another browser: this one never passed a code
    assert client.get("/account").status_code == 200
    refused = client.get("/admin/users")
    assert refused.status_code == 302 and refused.headers["Location"] == "/account/security"
    assert "this browser to have passed two-factor" in client.get("/account/security").text
    fresh = new_client()
    login(fresh, "bare-admin")
    assert fresh.get("/admin/users").status_code == 200


def test_a_custom_role_can_require_two_factor(client, new_client, admin, make_user):
    login(client, "root-admin")
    post_form(
        client,
        "/admin/roles",
        {"name": "auditors", "description": "Read the log", "mfa_required": "y"},
    )
    role = db.session.scalars(select(Role).where(Role.name == "auditors")).one()
    assert role.mfa_required
    member = make_user("member")
    member.role_id = role.id
    db.session.commit()
    browser = new_client()
    login(browser, "member")
    assert browser.get("/account").headers["Location"] == "/account/security"
    post_form(client, f"/admin/roles/{role.id}", {"name": "auditors", "description": "Read"})
    assert browser.get("/account").status_code == 200
    assert [e.details.get("mfa_required") for e in events("role_updated")] == [None, False]


def test_the_admin_role_always_requires_two_factor(client, admin):
    login(client, "root-admin")
    role = db.session.scalars(select(Role).where(Role.name == "admin")).one()
    page = client.get(f"/admin/roles/{role.id}").get_data(as_text=True)
    assert "always requires two-factor authentication" in page
    post_form(client, f"/admin/roles/{role.id}", {"name": "admin", "description": "Ops"})
    db.session.refresh(role)
    assert role.mfa_required and role.description == "Ops"
    roles_page = client.get("/admin/roles").get_data(as_text=True)
    assert '<label for="mfa_required">Require two-factor authentication</label>' in roles_page


def test_a_signed_in_page_still_costs_one_query_with_two_factor(client, admin, count_queries):
    login(client, "root-admin")
    client.get("/account")
    with count_queries() as statements:
        assert client.get("/account").status_code == 200
    assert len(statements) == 1
    with count_queries() as statements:
        assert client.get("/admin/").status_code == 200
    assert len(statements) == 1


# --- an admin's reset ----------------------------------------------------------------


def test_an_admin_resets_a_users_two_factor(client, new_client, admin, carol, smtp):
    carols = new_client()
    login(carols, "carol")
    login(client, "root-admin")
    url = f"/admin/users/{carol.id}"
    page = client.get(url).get_data(as_text=True)
    assert "Two-factor</dt><dd>On" in page and "Reset two-factor" in page
    response = post_form(client, url, {"action": "reset_two_factor"})
    assert response.status_code == 302
    assert "Two-factor</dt><dd>Off" in client.get(url).text
    assert carols.get("/account").status_code == 302  # signed out everywhere
    assert db.session.scalar(select(func.count()).select_from(TotpAuthenticator)) == 1  # admin's
    (reset,) = events("mfa_reset")
    assert reset.actor_username == "root-admin" and reset.target_username == "carol"
    assert "An administrator reset two-factor authentication on your account" in [
        m["Subject"] for m in smtp.to("carol@example.com")
    ]
    assert password_step(new_client(), "carol").headers["Location"] == "/account"


def test_an_admin_cannot_reset_their_own_two_factor_there(client, admin):
    login(client, "root-admin")
    url = f"/admin/users/{admin.id}"
    assert "Reset two-factor" not in client.get(url).text
    response = post_form(client, url, {"action": "reset_two_factor"})
    assert "sign-in methods page" in client.get(response.headers["Location"]).text
    assert events("mfa_reset") == []


def test_new_audit_actions_have_readable_names(client, admin):
    from webapp.domain.administration import KNOWN_ACTIONS

    for action in [
        "totp_enabled",
        "totp_disabled",
        "recovery_codes_generated",
        "recovery_code_used",
        "mfa_failed",
        "mfa_reset",
    ]:
        assert action in KNOWN_ACTIONS


def test_secrets_and_codes_never_reach_the_logs(client, new_client, user, caplog):
    caplog.set_level("DEBUG")
    login(client)
    secret, codes = turned_on(client)
    browser = new_client()
    password_step(browser)
    code_step(browser, codes[0])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in logged
    for code in codes:
        assert code not in logged and code.replace("-", "") not in logged
    stored = "\n".join(str(e.details) for e in db.session.scalars(select(AuditEvent)))
    assert secret not in stored and codes[0] not in stored
