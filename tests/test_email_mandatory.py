"""EMAIL_VERIFICATION=mandatory: no sign-in before confirming; signup tells nobody who is here."""

from __future__ import annotations

import math
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD, csrf_token, login, post_form
from tests.smtp import text_of
from webapp.extensions import db
from webapp.models import AuditEvent, RefreshToken, User

VERIFY_RE = re.compile(r"https?://\S+/verify-email/[A-Za-z0-9_\-]+")
PASSWORD = "correct horse battery"


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config, "EMAIL_VERIFICATION": "mandatory"}


def signup(client, username: str = "bob", email: str = "bob@example.com"):
    return post_form(
        client,
        "/signup",
        {"username": username, "email": email, "password": PASSWORD, "confirm_password": PASSWORD},
    )


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def verify_path(message) -> str:
    return urlsplit(VERIFY_RE.search(text_of(message)).group(0)).path


def test_signup_signs_nobody_in_and_says_check_your_email(client, smtp):
    response = signup(client)
    assert response.status_code == 200
    assert "Check your email" in response.get_data(as_text=True)
    assert count(RefreshToken) == 0
    assert client.get("/account").status_code == 302
    [message] = smtp.to("bob@example.com")
    assert message["Subject"] == "Confirm your email address for Keystone"


def test_unconfirmed_login_creates_no_device_and_asks_to_confirm(client, new_client, smtp):
    signup(client)
    browser = new_client()
    response = login(browser, "bob", PASSWORD)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>Confirm your email address</h1>" in page
    assert "Send confirmation email" in page
    assert count(RefreshToken) == 0
    assert browser.get("/account").status_code == 302
    # A wrong password says nothing about the address.
    wrong = login(new_client(), "bob", "not the password")
    assert "Invalid username/email or password." in wrong.get_data(as_text=True)
    assert "Confirm your email address" not in wrong.get_data(as_text=True)


def test_the_confirm_page_sends_a_new_link_then_confirming_lets_the_login_in(
    client, new_client, smtp
):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        signup(client)
        browser = new_client()
        login(browser, "bob", PASSWORD)
        too_soon = post_form(browser, "/verify-email", page="/login")
        assert too_soon.headers["Location"] == "/login"
        assert "less than 2 minutes ago" in browser.get("/login").get_data(as_text=True)
        assert len(smtp.to("bob@example.com")) == 1

        clock.shift(timedelta(minutes=3))
        login(browser, "bob", PASSWORD)
        post_form(browser, "/verify-email", page="/login")
        assert "We sent a confirmation link to bob@example.com" in browser.get("/login").get_data(
            as_text=True
        )
        [_, newest] = smtp.to("bob@example.com")
        response = post_form(browser, verify_path(newest), page="/login")
        assert response.headers["Location"] == "/login"
        assert count(RefreshToken) == 0  # confirming signs nobody in
        assert login(browser, "bob", PASSWORD).headers["Location"] == "/account"


def test_send_confirmation_without_a_refused_login_sends_nothing(client, smtp):
    signup(client)
    response = post_form(client, "/verify-email", page="/login")
    assert response.headers["Location"] == "/login"
    assert "Log in again" in client.get("/login").get_data(as_text=True)
    assert len(smtp.to("bob@example.com")) == 1


def test_the_refused_login_is_remembered_only_briefly(client, new_client, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        signup(client)
        browser = new_client()
        login(browser, "bob", PASSWORD)
        clock.shift(timedelta(minutes=16))
        post_form(browser, "/verify-email", page="/login")
        assert "Log in again" in browser.get("/login").get_data(as_text=True)
    assert len(smtp.to("bob@example.com")) == 1


def test_a_taken_address_gets_the_same_answer_and_its_owner_a_mail(client, new_client, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        signup(client, "owner", "owner@example.com")
        # Past the owner's own signup mail: signups with one address share its limit.
        clock.shift(timedelta(minutes=3))
        new = signup(new_client(), "newcomer", "newcomer@example.com")
        taken = signup(new_client(), "intruder", "Owner@Example.com")
    assert new.status_code == taken.status_code == 200
    assert new.get_data() == taken.get_data()
    assert sorted(new.headers.keys()) == sorted(taken.headers.keys())
    assert db.session.scalars(select(User.username).order_by(User.username)).all() == [
        "newcomer",
        "owner",
    ]
    [_, warning] = smtp.to("owner@example.com")
    assert warning["Subject"] == "Someone tried to sign up to Keystone with your email address"
    text = text_of(warning)
    assert "http://localhost:5000/reset-password" in text
    assert "http://localhost:5000/login" in text
    assert smtp.to("intruder") == []
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "signup_existing_email")
    ).all()
    assert [e.target_username for e in events] == ["owner"]


def test_a_taken_username_is_still_a_form_error(client, new_client, smtp):
    signup(client, "owner", "owner@example.com")
    response = signup(new_client(), "OWNER", "someone@example.com")
    assert "That username is taken." in response.get_data(as_text=True)
    assert smtp.to("someone@example.com") == []


def test_the_owner_is_not_flooded_with_warnings(client, new_client, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        signup(client, "owner", "owner@example.com")
        clock.shift(timedelta(minutes=3))
        for n in range(4):
            signup(new_client(), f"intruder{n}", "owner@example.com")
    assert len(smtp.to("owner@example.com")) == 2  # the confirmation and one warning


def _signup_form(browser, username: str, email: str) -> dict:
    return {
        "csrf_token": csrf_token(browser, "/signup"),
        "username": username,
        "email": email,
        "password": PASSWORD,
        "confirm_password": PASSWORD,
    }


def test_the_request_does_the_same_work_for_new_and_taken_addresses(
    new_client, smtp, count_queries, held_jobs
):
    """The account is made (or its owner warned) off the request: the request never
    looks the address up, and runs the same statements either way."""
    with time_machine.travel(datetime.now(UTC) - timedelta(minutes=3)):
        # Earlier: the owner's own signup mail does not hold back the warning below.
        signup(new_client(), "owner", "owner@example.com")
        held_jobs.run()
    delivered = len(smtp.messages)
    statements = {}
    for username, email in (
        ("newcomer", "newcomer@example.com"),
        ("intruder", "owner@example.com"),
    ):
        browser = new_client()
        data = _signup_form(browser, username, email)
        with count_queries() as seen:
            assert browser.post("/signup", data=data).status_code == 200
        statements[email] = seen
    assert statements["newcomer@example.com"] == statements["owner@example.com"]
    assert not any("email" in s.split("FROM")[0] for s in statements["owner@example.com"])
    assert len(smtp.messages) == delivered  # nothing yet: the work waits in the background
    held_jobs.run()
    assert smtp.to("owner@example.com")[-1]["Subject"].startswith("Someone tried to sign up")
    assert smtp.to("newcomer@example.com")[-1]["Subject"].startswith("Confirm your email")


def rank_sum_z(first: list[float], second: list[float]) -> float:
    """Return the Mann-Whitney U statistic of two samples as a z-score (0: same distribution)."""
    ranked = sorted([(value, 0) for value in first] + [(value, 1) for value in second])
    rank_sum = sum(rank for rank, (_, group) in enumerate(ranked, start=1) if group == 0)
    n1, n2 = len(first), len(second)
    u = rank_sum - n1 * (n1 + 1) / 2
    return (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)


def test_new_and_taken_addresses_take_the_same_time(app, new_client, smtp, held_jobs):
    """20 signups each, interleaved, with bcrypt at cost 10 so it dominates as in production.

    A rank test (Mann-Whitney U) asks whether one kind tends to answer
    faster than the other: |z| < 3.29 is p > 0.001, so an honest run fails
    about once in a thousand, while a taken address that skipped the hash
    (or did its work before answering) answers faster every time (|z| > 5).
    """
    app.config["BCRYPT_ROUNDS"] = 10
    signup(new_client(), "owner", "owner@example.com")
    for n in range(2):  # warm up templates and connections
        signup(new_client(), f"warm{n}", f"warm{n}@example.com")
        signup(new_client(), f"warmtaken{n}", "owner@example.com")
    held_jobs.run()

    timings: dict[str, list[float]] = {"new": [], "taken": []}
    bodies: dict[str, set[bytes]] = {"new": set(), "taken": set()}
    for n in range(20):
        for kind in ("new", "taken") if n % 2 == 0 else ("taken", "new"):
            browser = new_client()
            email = f"new{n}@example.com" if kind == "new" else "owner@example.com"
            data = _signup_form(browser, f"{kind}{n}", email)
            started = time.perf_counter()
            response = browser.post("/signup", data=data)
            timings[kind].append(time.perf_counter() - started)
            assert response.status_code == 200
            bodies[kind].add(response.get_data())
    assert bodies["new"] == bodies["taken"] and len(bodies["new"]) == 1
    z = rank_sum_z(timings["new"], timings["taken"])
    medians = [round(statistics.median(timings[kind]) * 1000, 1) for kind in ("new", "taken")]
    assert abs(z) < 3.29, f"z={z:.2f}, median ms new/taken {medians}"

    held_jobs.run()
    assert count(User) == 1 + 2 + 20
    assert len(smtp.to("new7@example.com")) == 1


def test_purge_deletes_accounts_never_confirmed_after_seven_days(
    app, runner, client, new_client, make_user, smtp
):
    with time_machine.travel(datetime.now(UTC) - timedelta(days=8), tick=False):
        squatter = make_user("squatter", "victim@example.com")
        old_member = make_user("oldmember", "old@example.com")  # from before it was mandatory
        confirmed = make_user("confirmed", "confirmed@example.com")
        confirmed.email_verified_at = datetime.now(UTC)
        db.session.commit()
    app.config["EMAIL_VERIFICATION"] = "optional"
    login(new_client(), "oldmember")
    app.config["EMAIL_VERIFICATION"] = "mandatory"
    young = make_user("young", "young@example.com")
    assert squatter and old_member and young

    result = runner.invoke(args=["purge-devices"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 account whose email address was never confirmed." in result.output
    assert db.session.scalars(select(User.username).order_by(User.username)).all() == [
        "confirmed",
        "oldmember",
        "young",
    ]
    # The address is free again for its real owner.
    assert signup(client, "victim", "victim@example.com").status_code == 200
    assert "victim" in db.session.scalars(select(User.username)).all()


def test_purge_keeps_unconfirmed_accounts_when_confirmation_is_optional(app, runner, make_user):
    app.config["EMAIL_VERIFICATION"] = "optional"
    with time_machine.travel(datetime.now(UTC) - timedelta(days=30), tick=False):
        make_user("relaxed", "relaxed@example.com")
    result = runner.invoke(args=["purge-devices"])
    assert result.exit_code == 0
    assert "never confirmed" not in result.output
    assert count(User) == 1


def test_login_for_a_confirmed_address_works_as_before(client, make_user):
    user = make_user("carol", "carol@example.com")
    user.email_verified_at = datetime.now(UTC)
    db.session.commit()
    assert login(client, "carol", TEST_PASSWORD).headers["Location"] == "/account"
