"""Taking an account back closes every door an intruder set up (issue 25).

The intruder knows the password (and once had a code): they signed in on
their own browser, asked to move the account to their address, left a
login's second step waiting in another browser, and opened a passkey
ceremony. Then the owner takes the account back, one action at a time.
Whatever the action, none of that may survive it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.conftest import (
    TEST_PASSWORD,
    cookie,
    current_code,
    enable_totp,
    login,
    post_form,
)
from tests.smtp import text_of
from webapp.extensions import db
from webapp.models import KnownBrowser, User, WebAuthnChallenge

NEW_PASSWORD = "Seven quiet otters juggle violet plums"
INTRUDER_EMAIL = "mallory@evil.example"
ALERT = "New sign-in to your Keystone account"
CHANGE_RE = re.compile(r"https?://\S+/verify-email/\S+")
NOT_ME_RE = re.compile(r"https?://\S+/not-me/[A-Za-z0-9_-]{43}")
INVALID = "This link is invalid or has expired."
ACTIONS = [
    "password_change",
    "password_reset",
    "sign_out_others",
    "not_me",
    "admin_sign_out",
    "admin_reset",
    "theft",
]


@pytest.fixture
def app_config(app_config, mail_config):
    # No grace: a replaced remember token coming back at all is a theft.
    return {**app_config, **mail_config, "REMEMBER_GRACE_SECONDS": 0}


def link_in(message, pattern: re.Pattern) -> str:
    match = pattern.search(text_of(message))
    assert match, f"no link in {message['Subject']!r}"
    return urlsplit(match.group(0)).path


def alerts(smtp) -> list:
    return [m for m in smtp.to("alice@example.com") if m["Subject"] == ALERT]


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


class Scene:
    """The owner at home, and what the intruder set up before the owner acts."""

    def __init__(self, app, new_client, user, smtp) -> None:
        self.app, self.new_client, self.user, self.smtp = app, new_client, user, smtp
        self.password = TEST_PASSWORD
        self.home = new_client()
        login(self.home, remember=True)  # the account's first sign-in: no alert
        self.intruder = new_client("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0")
        self.intruder.environ_base["REMOTE_ADDR"] = "81.2.69.160"
        assert login(self.intruder).status_code == 302
        [self.alert] = alerts(smtp)
        # A change of address to the intruder's, confirmed after the owner recovers.
        response = post_form(self.intruder, "/account/email", {"new_email": INTRUDER_EMAIL})
        assert response.status_code == 302
        self.change_link = link_in(smtp.to(INTRUDER_EMAIL)[-1], CHANGE_RE)
        # An open passkey ceremony.
        response = post_form(
            self.intruder, "/account/security/passkeys/options", page="/account/security"
        )
        assert response.status_code == 200
        # A second step left waiting in another browser.
        self.stepper = new_client("Mozilla/5.0 (X11; Linux x86_64) Firefox/127.0")
        step = post_form(self.stepper, "/login", {"identifier": "alice", "password": TEST_PASSWORD})
        assert step.headers["Location"] == "/login/verify"

    def take_back(self, action: str, admin_client) -> None:
        """The owner (or an administrator for them) takes the account back."""
        if action == "password_change":
            data = {
                "current_password": TEST_PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_new_password": NEW_PASSWORD,
            }
            assert post_form(self.home, "/account/password", data).status_code == 302
            self.password = NEW_PASSWORD
        elif action == "password_reset":
            from webapp.security.reset_tokens import make_token

            token = make_token(fresh(self.user))
            data = {"new_password": NEW_PASSWORD, "confirm_new_password": NEW_PASSWORD}
            response = post_form(self.new_client(), f"/reset-password/{token}", data)
            assert response.headers["Location"] == "/login"
            self.password = NEW_PASSWORD
        elif action == "sign_out_others":
            response = post_form(
                self.home, "/account/devices/revoke-others", page="/account/devices"
            )
            assert response.status_code == 302
        elif action == "not_me":
            path = link_in(self.alert, NOT_ME_RE)
            assert post_form(self.home, path).status_code == 302
        elif action in {"admin_sign_out", "admin_reset"}:
            url = f"/admin/users/{self.user.id}"
            what = "signout" if action == "admin_sign_out" else "reset_two_factor"
            assert post_form(admin_client(), url, {"action": what}).status_code == 302
        elif action == "theft":
            name = self.app.config["REMEMBER_DEVICE_COOKIE_NAME"]
            stolen = cookie(self.home, name).value
            self.home.delete_cookie(self.app.config["SESSION_COOKIE_NAME"])
            assert self.home.get("/account").status_code == 200  # rotated
            thief = self.new_client()
            thief.set_cookie(name, stolen)
            assert thief.get("/account").status_code == 302  # seen as stolen (no grace here)
        else:  # pragma: no cover
            raise AssertionError(action)


@pytest.fixture
def admin_client(new_client, make_user):
    def signed_in():
        make_user("root-admin", "admin@example.com", role="admin")
        browser = new_client()
        assert login(browser, "root-admin").status_code == 302
        return browser

    return signed_in


@pytest.fixture
def scene(app, new_client, user, smtp):
    enable_totp(user)
    return Scene(app, new_client, user, smtp)


@pytest.mark.parametrize("action", ACTIONS)
def test_a_pending_email_change_does_not_survive(scene, admin_client, new_client, user, action):
    scene.take_back(action, admin_client)
    # The link needs no session: the intruder confirms it from anywhere.
    page = new_client().get(scene.change_link)
    assert page.status_code == 400 and INVALID in page.text
    pressed = post_form(new_client(), scene.change_link, page="/login")
    assert pressed.status_code == 400 and INVALID in pressed.text
    owner = fresh(user)
    assert owner.email == "alice@example.com"
    assert owner.pending_change is None
    browser = new_client()
    login(browser, "alice", scene.password)
    assert INTRUDER_EMAIL not in browser.get("/account").text


@pytest.mark.parametrize("action", ACTIONS)
def test_a_waiting_second_step_does_not_survive(scene, admin_client, action):
    scene.take_back(action, admin_client)
    # The token of another page: the step's own page already sends the browser away.
    response = post_form(
        scene.stepper, "/login/verify", {"code": current_code("alice")}, page="/login"
    )
    assert response.headers["Location"] == "/login"
    assert scene.stepper.get("/account").status_code == 302


@pytest.mark.parametrize("action", ACTIONS)
def test_open_passkey_ceremonies_do_not_survive(scene, admin_client, user, action):
    scene.take_back(action, admin_client)
    left = db.session.scalar(
        select(func.count())
        .select_from(WebAuthnChallenge)
        .where(WebAuthnChallenge.user_id == user.id)
    )
    assert left == 0


@pytest.mark.parametrize("action", ACTIONS)
def test_the_intruders_browser_is_new_again(scene, admin_client, smtp, action):
    scene.take_back(action, admin_client)
    before = len(alerts(smtp))
    if scene.intruder.get("/account").status_code == 200:  # a theft signs out one device
        post_form(scene.intruder, "/logout", page="/account")
    assert login(scene.intruder, "alice", scene.password).status_code == 302
    assert len(alerts(smtp)) == before + 1


def test_the_owners_own_browser_stays_known(scene, admin_client, smtp, user):
    scene.take_back("sign_out_others", admin_client)
    known = db.session.scalar(
        select(func.count()).select_from(KnownBrowser).where(KnownBrowser.user_id == user.id)
    )
    assert known == 1  # home's
    before = len(alerts(smtp))
    post_form(scene.home, "/logout", page="/account")
    login(scene.home)
    assert len(alerts(smtp)) == before


def test_forgetting_every_browser_makes_no_later_sign_in_the_first(
    scene, admin_client, new_client, smtp
):
    """An admin's sign-out forgets every browser, the owner's too: all alert again."""
    scene.take_back("admin_sign_out", admin_client)
    before = len(alerts(smtp))
    login(scene.home)
    assert len(alerts(smtp)) == before + 1


def test_a_step_begun_after_the_recovery_goes_on(scene, admin_client, new_client):
    scene.take_back("sign_out_others", admin_client)
    browser = new_client()
    assert login(browser).headers["Location"] == "/account"


def test_pending_step_is_current_for_the_token_api(app, user):
    from webapp.domain.recovery import Recovery, take_account_back
    from webapp.security.recovery import pending_step_is_current

    with app.test_request_context():
        issued = datetime.now(UTC)
        owner = fresh(user)
        assert pending_step_is_current(owner, issued)
        take_account_back(owner, Recovery.SIGNED_OUT_OTHERS)
        db.session.commit()
        assert not pending_step_is_current(fresh(user), issued)
        assert not pending_step_is_current(fresh(user), issued.timestamp())
        assert pending_step_is_current(fresh(user), datetime.now(UTC) + timedelta(seconds=1))
