"""Email addresses: confirmation links, the email change and its cancel link, as people see them."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, post_form
from tests.smtp import html_of, reset_link, text_of
from webapp.extensions import db
from webapp.models import AuditEvent, EmailToken, RefreshToken, RevokeReason, User

VERIFY_RE = re.compile(r"https?://\S+/verify-email/[A-Za-z0-9_\-]+")
CANCEL_RE = re.compile(r"https?://\S+/account/email/cancel/[A-Za-z0-9_\-]+")
SIGNUP = {
    "username": "bob",
    "email": "Bob@Example.COM",
    "password": "correct horse battery",
    "confirm_password": "correct horse battery",
}
INVALID = "This link is invalid or has expired."


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def signup(client, **overrides):
    return post_form(client, "/signup", {**SIGNUP, **overrides})


def path_in(message, pattern: re.Pattern = VERIFY_RE) -> str:
    """Return the path of the link a mail's plain-text part holds."""
    match = pattern.search(text_of(message))
    assert match, f"no link in the mail {message['Subject']!r}"
    return urlsplit(match.group(0)).path


def press(client, path: str, **kwargs):
    """Press the one button of a link's page (its POST, with the page's CSRF token)."""
    return post_form(client, path, **kwargs)


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def actions(username: str) -> list[str]:
    return db.session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.target_username == username)
        .order_by(AuditEvent.id)
    ).all()


def device_count() -> int:
    return db.session.scalar(select(func.count()).select_from(RefreshToken))


# --- confirmation at signup ---------------------------------------------------


def test_signup_mails_a_confirmation_link_in_text_and_html(client, smtp):
    assert signup(client).headers["Location"] == "/account"
    [message] = smtp.to("bob@example.com")
    assert message["Subject"] == "Confirm your email address for Keystone"
    assert message["From"] == "keystone@example.org"
    link = VERIFY_RE.search(text_of(message)).group(0)
    assert link.startswith("http://localhost:5000/verify-email/")
    html = html_of(message)
    assert f'href="{link}"' in html
    assert "Keystone" in html and "48 hours" in text_of(message)
    # No tracking: no images, no links but our own.
    assert "<img" not in html.lower()
    hosts = {urlsplit(url).netloc for url in re.findall(r'href="([^"]+)"', html)}
    assert hosts == {"localhost:5000"}


def test_the_link_page_changes_nothing_and_its_button_confirms_once(client, new_client, smtp):
    signup(client)
    path = path_in(smtp.to("bob@example.com")[-1])
    user = db.session.scalars(select(User)).one()

    scanner = new_client()
    for _ in range(3):  # a mail scanner opening the link, several times
        page = scanner.get(path)
        assert page.status_code == 200
        assert "Confirm email address" in page.get_data(as_text=True)
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert fresh(user).email_verified_at is None

    response = press(client, path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    page = client.get("/account").get_data(as_text=True)
    assert "Your email address is confirmed." in page
    assert "Not confirmed" not in page and "Confirmed" in page
    assert "Send confirmation email" not in page
    assert fresh(user).email_verified_at is not None
    assert actions("bob").count("email_confirmed") == 1

    # Used: a second press and a second look both get the invalid page, never a 500.
    for again in (press(client, path, page="/account"), client.get(path)):
        assert again.status_code == 400
        assert INVALID in again.get_data(as_text=True)
    assert actions("bob").count("email_confirmed") == 1


def test_confirming_signs_nobody_in(client, new_client, smtp):
    signup(client)
    path = path_in(smtp.to("bob@example.com")[-1])
    stranger = new_client()
    before = device_count()
    response = press(stranger, path)
    assert response.headers["Location"] == "/login"
    assert "Your email address is confirmed." in stranger.get("/login").get_data(as_text=True)
    assert stranger.get("/account").status_code == 302
    assert device_count() == before


def test_altered_and_unknown_links_get_the_invalid_page(client, smtp):
    signup(client)
    path = path_in(smtp.to("bob@example.com")[-1])
    token = path.rsplit("/", 1)[1]
    altered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in (altered, token[:-1], token + "x", "x" * 43, "garbage", "%00", "..%2f..%2fetc"):
        for response in (
            client.get(f"/verify-email/{bad}"),
            press(client, f"/verify-email/{bad}", page="/account"),
        ):
            assert response.status_code in (400, 404)
            if response.status_code == 400:
                assert INVALID in response.get_data(as_text=True)
    assert db.session.scalars(select(User)).one().email_verified_at is None


def test_link_expires_after_48_hours(client, new_client, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        signup(client)
        path = path_in(smtp.to("bob@example.com")[-1])
        clock.shift(timedelta(hours=47, minutes=59))
        assert client.get(path).status_code == 200
        clock.shift(timedelta(minutes=2))
        assert client.get(path).status_code == 400
        assert press(new_client(), path, page="/login").status_code == 400
    assert db.session.scalars(select(User)).one().email_verified_at is None


def test_only_the_hash_of_a_link_is_stored(client, smtp):
    signup(client)
    token = path_in(smtp.to("bob@example.com")[-1]).rsplit("/", 1)[1]
    row = db.session.scalars(select(EmailToken)).one()
    assert row.token_hash != token and token not in row.token_hash
    assert len(row.token_hash) == 64


def test_parallel_presses_of_one_link_confirm_once(client, new_client, smtp):
    signup(client)
    path = path_in(smtp.to("bob@example.com")[-1])
    clients = [new_client() for _ in range(4)]
    tokens = [csrf_token(c, "/login") for c in clients]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def press_now(browser, token) -> None:
        start.wait()
        statuses.append(browser.post(path, data={"csrf_token": token}).status_code)

    threads = [
        threading.Thread(target=press_now, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302, 400, 400, 400]
    assert actions("bob").count("email_confirmed") == 1


def test_account_page_says_not_confirmed_with_a_button(client, smtp):
    signup(client)
    page = client.get("/account").get_data(as_text=True)
    assert "Not confirmed" in page
    assert "Send confirmation email" in page
    assert 'action="/verify-email"' in page


def test_send_confirmation_email_at_most_once_per_two_minutes(client, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        signup(client)
        first = path_in(smtp.to("bob@example.com")[-1])
        response = post_form(client, "/verify-email", page="/account")
        assert response.headers["Location"] == "/account"
        page = client.get("/account").get_data(as_text=True)
        assert "less than 2 minutes ago" in page
        assert len(smtp.to("bob@example.com")) == 1

        clock.shift(timedelta(minutes=2, seconds=1))
        post_form(client, "/verify-email", page="/account")
        assert "We sent a confirmation link to bob@example.com" in client.get("/account").get_data(
            as_text=True
        )
        assert len(smtp.to("bob@example.com")) == 2
        second = path_in(smtp.to("bob@example.com")[-1])
        # The newer link voided the older one.
        assert client.get(first).status_code == 400
        assert press(client, second).headers["Location"] == "/account"
    assert actions("bob").count("email_confirmation_sent") == 2


def test_the_confirm_button_needs_csrf(client, new_client, smtp):
    signup(client)
    path = path_in(smtp.to("bob@example.com")[-1])
    assert new_client().post(path).status_code == 400
    assert db.session.scalars(select(User)).one().email_verified_at is None
    assert new_client().get(path).status_code == 200  # the link still works


def test_send_confirmation_needs_a_post_with_csrf(client, smtp):
    signup(client)
    assert client.get("/verify-email").status_code == 405
    assert client.post("/verify-email").status_code == 400
    assert len(smtp.to("bob@example.com")) == 1


def test_a_confirmed_password_reset_confirms_the_address(client, user, smtp):
    assert user.email_verified_at is None
    post_form(client, "/reset-password", {"email": "alice@example.com"})
    path = urlsplit(reset_link(smtp.to("alice@example.com")[-1])).path
    password = "a-brand-new-passphrase-42"
    response = post_form(client, path, {"new_password": password, "confirm_new_password": password})
    assert response.headers["Location"] == "/login"
    assert fresh(user).email_verified_at is not None
    assert "email_confirmed" in actions("alice")


def test_without_mail_server_the_confirmation_link_goes_to_the_log(app, client, caplog):
    app.config["MAIL_SERVER"] = ""
    with caplog.at_level(logging.INFO, logger="webapp.mail"):
        signup(client)
    lines = [r.getMessage() for r in caplog.records if r.name == "webapp.mail"]
    links = [line for line in lines if "/verify-email/" in line]
    assert len(links) == 1
    assert re.fullmatch(r"\| http://localhost:5000/verify-email/[A-Za-z0-9_-]{43}", links[0])


def test_a_failed_transaction_mails_no_link(app, client, user, smtp):
    """Mail waits for the commit: a link whose token was rolled back is never sent."""
    from webapp.domain.addresses import send_confirmation

    with app.test_request_context():
        assert send_confirmation(fresh(user))
        db.session.rollback()
    assert smtp.messages == []
    assert db.session.scalar(select(func.count()).select_from(EmailToken)) == 0


# --- the public pages describe themselves ---------------------------------------


@pytest.mark.parametrize("path", ["/", "/signup", "/login", "/reset-password"])
def test_public_pages_have_a_meta_description(client, path):
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'<meta name="description" content="([^"]+)">', page)
    assert match and len(match.group(1)) > 40


def test_signed_in_pages_have_no_empty_description(client, user):
    login(client)
    assert 'name="description"' not in client.get("/account").get_data(as_text=True)


# --- email change ---------------------------------------------------------------


def change_email(client, new_email: str):
    return post_form(client, "/account/email", {"new_email": new_email})


def test_change_page_has_the_contract_labels_and_a_link_from_the_account(client, user):
    login(client)
    assert 'href="/account/email"' in client.get("/account").get_data(as_text=True)
    page = client.get("/account/email").get_data(as_text=True)
    assert '<label for="new_email">New email</label>' in page
    assert 'value="Change email"' in page


def test_a_change_mails_the_new_address_a_link_and_the_old_one_a_notice(client, user, smtp):
    login(client)
    response = change_email(client, "Alice.New@Example.org")
    assert response.headers["Location"] == "/account"

    [confirm] = smtp.to("alice.new@example.org")
    assert confirm["Subject"] == "Confirm your new email address for Keystone"
    assert "2 hours" in text_of(confirm)
    path_in(confirm)

    [notice] = smtp.to("alice@example.com")
    assert notice["Subject"] == "Your Keystone email address is about to change"
    text = text_of(notice)
    assert "a***@e***.org" in text and "alice.new@example.org" not in text
    assert "Chrome on Linux" in text and "127.0.0.1" in text and " UTC" in text
    assert "7 days" in text
    assert path_in(notice, CANCEL_RE).startswith("/account/email/cancel/")
    assert "alice.new@example.org" not in html_of(notice)

    # Nothing switched yet; the account page shows the address waiting.
    assert fresh(user).email == "alice@example.com"
    page = client.get("/account").get_data(as_text=True)
    assert "Changing to <strong>alice.new@example.org</strong>" in page
    assert "email_change_requested" in actions("alice")


def test_following_the_link_switches_the_address_and_tells_the_old_one(
    client, new_client, user, smtp
):
    login(client)
    change_email(client, "alice.new@example.org")
    path = path_in(smtp.to("alice.new@example.org")[-1])
    page = new_client().get(path).get_data(as_text=True)
    assert "alice.new@example.org" in page and "Confirm email address" in page
    assert fresh(user).email == "alice@example.com"

    assert press(new_client(), path).headers["Location"] == "/login"
    changed = fresh(user)
    assert changed.email == "alice.new@example.org"
    assert changed.email_verified_at is not None
    assert changed.pending_change is None
    [_, done] = smtp.to("alice@example.com")
    assert done["Subject"] == "Your Keystone email address was changed"
    assert "a***@e***.org" in text_of(done)
    path_in(done, CANCEL_RE)
    assert {"email_change_requested", "email_changed"} <= set(actions("alice"))
    assert login(new_client(), "alice.new@example.org").status_code == 302
    assert login(new_client(), "alice@example.com").status_code == 200
    assert "Changing to" not in client.get("/account").get_data(as_text=True)


def test_an_old_reset_link_stops_working_after_the_change(client, new_client, user, smtp):
    post_form(new_client(), "/reset-password", {"email": "alice@example.com"})
    old_reset = urlsplit(reset_link(smtp.to("alice@example.com")[-1])).path
    assert new_client().get(old_reset).status_code == 200

    login(client)
    change_email(client, "alice.new@example.org")
    press(new_client(), path_in(smtp.to("alice.new@example.org")[-1]))

    response = new_client().get(old_reset)
    assert response.status_code == 400
    assert "This link does not work" in response.get_data(as_text=True)


def test_a_change_needs_a_fresh_session(new_client, user):
    first = new_client()
    login(first, remember=True)
    restored = new_client()
    restored.set_cookie("remember", first.get_cookie("remember").value)
    page = restored.get("/account/email").get_data(as_text=True)
    assert "Confirm your password" in page
    response = post_form(
        restored, "/account/email", {"new_email": "x@example.org"}, page="/account"
    )
    assert "Confirm your password" in response.get_data(as_text=True)
    assert fresh(user).pending_email is None


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "Enter your email address."),
        ("not an email", "Enter a valid email address."),
        ("a" * 250 + "@example.org", "Use at most 255 characters."),
        ("ALICE@example.com", "That is already your email address."),
    ],
)
def test_bad_new_addresses_are_form_errors(client, user, smtp, address, message):
    login(client)
    response = change_email(client, address)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert smtp.messages == []


def test_a_change_to_a_taken_address_gets_the_same_answer_and_mails_its_holder_nothing(
    client, new_client, make_user, smtp
):
    make_user("alice", "alice@example.com")
    make_user("carol", "carol@example.com")
    make_user("holder", "taken@example.org")

    def ask(username: str, address: str) -> tuple[str, str]:
        browser = new_client()
        login(browser, username)
        response = change_email(browser, address)
        assert response.status_code == 302
        account = browser.get("/account").get_data(as_text=True)
        return response.headers["Location"], account.replace(username, "NAME").replace(
            address, "ADDRESS"
        )

    free = ask("alice", "free@example.org")
    taken = ask("carol", "taken@example.org")
    assert free[0] == taken[0]
    strip = re.compile(r'name="csrf_token" value="[^"]+"|\d+ \w+ \d{4}, \d\d:\d\d UTC')
    assert strip.sub("", free[1].replace("alice", "NAME")) == strip.sub(
        "", taken[1].replace("carol", "NAME")
    )
    assert smtp.to("taken@example.org") == []
    assert len(smtp.to("free@example.org")) == 1
    # The old addresses hear the same thing either way.
    assert [m["Subject"] for m in smtp.to("carol@example.com")] == [
        m["Subject"] for m in smtp.to("alice@example.com")
    ]


def test_an_address_taken_while_the_link_waited_is_a_form_error(
    client, new_client, user, make_user, smtp
):
    login(client)
    change_email(client, "wanted@example.org")
    path = path_in(smtp.to("wanted@example.org")[-1])
    make_user("quick", "wanted@example.org")

    response = press(new_client(), path)
    assert response.status_code == 200
    assert "Another account uses this address now" in response.get_data(as_text=True)
    assert fresh(user).email == "alice@example.com"
    assert [u.email for u in db.session.scalars(select(User).order_by(User.username))] == [
        "alice@example.com",
        "wanted@example.org",
    ]


def test_a_new_change_voids_the_older_link(client, new_client, user, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False):
        login(client)
        change_email(client, "first@example.org")
        first = path_in(smtp.to("first@example.org")[-1])
        change_email(client, "second@example.org")
        second = path_in(smtp.to("second@example.org")[-1])
    assert new_client().get(first).status_code == 400
    assert press(new_client(), second).status_code == 302
    assert fresh(user).email == "second@example.org"


def test_the_change_link_lasts_two_hours(client, new_client, user, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(client)
        change_email(client, "late@example.org")
        path = path_in(smtp.to("late@example.org")[-1])
        clock.shift(timedelta(hours=2, minutes=1))
        assert press(new_client(), path, page="/login").status_code == 400
        assert "Changing to" not in client.get("/account").get_data(as_text=True)
    assert fresh(user).email == "alice@example.com"


# --- cancel -------------------------------------------------------------------------


def test_cancel_after_the_switch_restores_the_address_and_signs_out_everywhere(
    client, new_client, user, smtp
):
    login(client)
    other = new_client()
    login(other, remember=True)
    change_email(client, "thief@example.org")
    press(new_client(), path_in(smtp.to("thief@example.org")[-1]))
    assert fresh(user).email == "thief@example.org"
    cancel = path_in(change_notices(smtp, "alice@example.com")[0], CANCEL_RE)

    owner = new_client()
    page = owner.get(cancel)
    assert page.status_code == 200
    assert "Cancel the change" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert fresh(user).email == "thief@example.org"  # a GET changes nothing

    response = press(owner, cancel)
    assert response.headers["Location"] == "/reset-password"
    told = owner.get("/reset-password").get_data(as_text=True)
    assert "The change is cancelled" in told and "choose a new one now" in told

    restored = fresh(user)
    assert restored.email == "alice@example.com"
    assert restored.email_verified_at is not None
    assert client.get("/account").status_code == 302
    assert other.get("/account").status_code == 302
    revoked = db.session.scalars(select(RefreshToken)).all()
    assert revoked and all(d.is_revoked for d in revoked)
    assert {d.revoked_reason for d in revoked} == {RevokeReason.EMAIL_CANCELLED}
    assert "email_change_cancelled" in actions("alice")
    assert login(new_client(), "thief@example.org").status_code == 200
    # Once only.
    assert press(owner, cancel, page="/login").status_code == 400


def test_cancel_before_the_switch_kills_the_pending_link(client, new_client, user, smtp):
    login(client)
    change_email(client, "thief@example.org")
    confirm = path_in(smtp.to("thief@example.org")[-1])
    cancel = path_in(smtp.to("alice@example.com")[-1], CANCEL_RE)
    assert press(new_client(), cancel).headers["Location"] == "/reset-password"
    assert press(new_client(), confirm, page="/login").status_code == 400
    assert fresh(user).email == "alice@example.com"
    assert fresh(user).pending_change is None
    assert client.get("/account").status_code == 302


def test_a_later_change_cannot_take_away_the_first_address_way_back(client, new_client, user, smtp):
    """A -> B -> C by a thief: B's cancel link cannot void A's, and A's voids B's."""
    login(client)
    change_email(client, "b@example.org")
    press(new_client(), path_in(smtp.to("b@example.org")[-1]))
    cancel_a = path_in(change_notices(smtp, "alice@example.com")[0], CANCEL_RE)
    change_email(client, "c@example.org")
    press(new_client(), path_in(smtp.to("c@example.org")[-1]))
    cancel_b = path_in(smtp.to("b@example.org")[-1], CANCEL_RE)

    assert press(new_client(), cancel_b).status_code == 302
    assert fresh(user).email == "b@example.org"
    assert press(new_client(), cancel_a).status_code == 302
    assert fresh(user).email == "alice@example.com"


def test_the_cancel_link_lasts_seven_days(client, new_client, user, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(client)
        change_email(client, "thief@example.org")
        cancel = path_in(smtp.to("alice@example.com")[-1], CANCEL_RE)
        clock.shift(timedelta(days=7, minutes=1))
        response = new_client().get(cancel)
    assert response.status_code == 400
    assert INVALID in response.get_data(as_text=True)


def test_cancel_posts_need_csrf(client, new_client, user, smtp):
    login(client)
    change_email(client, "thief@example.org")
    cancel = path_in(smtp.to("alice@example.com")[-1], CANCEL_RE)
    assert new_client().post(cancel).status_code == 400
    assert client.get("/account").status_code == 200


# --- admin -----------------------------------------------------------------------


def test_admin_sees_confirmation_and_filters_unconfirmed(client, admin, make_user):
    confirmed = make_user("confirmed", "confirmed@example.com")
    confirmed.email_verified_at = datetime.now(UTC)
    make_user("pending", "pending@example.com")
    db.session.commit()
    login(client, "root-admin")

    page = client.get(f"/admin/users/{confirmed.id}").get_data(as_text=True)
    assert "Email confirmed" in page and "Not confirmed" not in page
    pending = db.session.scalars(select(User).where(User.username == "pending")).one()
    assert "Not confirmed" in client.get(f"/admin/users/{pending.id}").get_data(as_text=True)

    everyone = client.get("/admin/users").get_data(as_text=True)
    assert ">confirmed</a>" in everyone and ">pending</a>" in everyone
    assert '<label for="unconfirmed">Only unconfirmed email addresses</label>' in everyone
    only = client.get("/admin/users?unconfirmed=y").get_data(as_text=True)
    assert ">pending</a>" in only and ">confirmed</a>" not in only


def test_audit_log_names_the_email_events(client, admin):
    from webapp.domain.administration import KNOWN_ACTIONS

    for code in (
        "email_confirmation_sent",
        "email_confirmed",
        "email_change_requested",
        "email_changed",
        "email_change_cancelled",
        "signup_existing_email",
    ):
        assert code in KNOWN_ACTIONS
    login(client, "root-admin")
    assert "Email change cancelled" in client.get("/admin/audit").get_data(as_text=True)


def test_email_verification_setting_is_checked(monkeypatch, tmp_path):
    from webapp.config import ConfigError, load_config

    monkeypatch.setenv("EMAIL_VERIFICATION", "sometimes")
    with pytest.raises(ConfigError, match="EMAIL_VERIFICATION"):
        load_config(str(tmp_path))
    monkeypatch.setenv("EMAIL_VERIFICATION", "Mandatory")
    assert load_config(str(tmp_path))["EMAIL_VERIFICATION"] == "mandatory"
    monkeypatch.delenv("EMAIL_VERIFICATION")
    assert load_config(str(tmp_path))["EMAIL_VERIFICATION"] == "optional"


def test_create_admin_vouches_for_the_address(runner):
    result = runner.invoke(
        args=[
            "create-admin",
            "--username",
            "boss",
            "--email",
            "boss@example.com",
            "--password-stdin",
        ],
        input="a long admin passphrase\n",
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalars(select(User)).one().email_verified_at is not None


def test_mask_hides_most_of_an_address():
    from webapp.domain.addresses import mask

    assert mask("bob@example.com") == "b***@e***.com"
    assert mask("x@localhost") == "x***@l***"
    assert mask("alice.smith@mail.example.co.uk") == "a***@m***.uk"


def change_notices(smtp, address: str) -> list:
    """Return the mails to `address` about its email change (not, say, sign-in alerts)."""
    return [m for m in smtp.to(address) if "email address" in str(m["Subject"])]
