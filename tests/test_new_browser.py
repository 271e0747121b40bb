"""The new-browser alert: one mail per browser the account has not used, and "This wasn't me"."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select, text

from tests.conftest import TEST_PASSWORD, cookie, csrf_token, login, post_form
from tests.smtp import html_of, text_of
from webapp.extensions import db
from webapp.models import AuditEvent, KnownBrowser, RefreshToken, SecurityEvent, User

FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
SUBJECT = "New sign-in to your Keystone account"
NOT_ME_RE = re.compile(r"https?://\S+/not-me/([A-Za-z0-9_-]{43})")


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def alerts(smtp, address: str = "alice@example.com") -> list:
    return [m for m in smtp.to(address) if m["Subject"] == SUBJECT]


def browser_from(new_client, ip: str, user_agent: str = FIREFOX_MAC):
    client = new_client(user_agent)
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def not_me_path(message) -> str:
    match = NOT_ME_RE.search(text_of(message))
    assert match, "no This wasn't me link"
    return f"/not-me/{match.group(1)}"


def test_the_first_sign_in_mails_nothing_a_new_browser_mails_once(app, new_client, user, smtp):
    home = browser_from(new_client, "10.0.0.2")
    login(home)  # the account's first sign-in: nothing to compare with
    assert alerts(smtp) == []
    post_form(home, "/logout", page="/account")
    login(home)  # the same browser again
    assert alerts(smtp) == []

    away = browser_from(new_client, "81.2.69.160")
    login(away)
    [message] = alerts(smtp)
    text, page = text_of(message), html_of(message)
    for body in (text, page):
        assert "a browser we have not seen on your account" in body
        assert "Firefox on Mac OS X" in body and "81.2.69.160" in body
        assert "United Kingdom" in body
        assert "http://localhost:5000/account/devices" in body
        assert "/not-me/" in body
    assert "This wasn't me" in page
    post_form(away, "/logout", page="/account")
    login(away)  # the same browser again
    assert len(alerts(smtp)) == 1
    events = db.session.scalars(
        select(SecurityEvent).where(SecurityEvent.event == "new_browser_login")
    ).all()
    assert len(events) == 1 and events[0].ip_address == "81.2.69.160"


def test_no_mail_at_the_sign_in_that_follows_signup(app, new_client, smtp):
    client = new_client()
    post_form(
        client,
        "/signup",
        {
            "username": "frank",
            "email": "frank@example.com",
            "password": TEST_PASSWORD,
            "confirm_password": TEST_PASSWORD,
        },
    )
    assert alerts(smtp, "frank@example.com") == []
    login(new_client(FIREFOX_MAC), "frank")
    assert len(alerts(smtp, "frank@example.com")) == 1


def test_only_the_hash_of_the_browser_cookie_is_stored(app, client, user):
    login(client)
    value = cookie(client, app.config["KNOWN_BROWSER_COOKIE_NAME"]).value
    assert len(value) >= 43
    stored = db.session.scalars(select(KnownBrowser.browser_hash)).all()
    assert stored == [hashlib.sha256(value.encode()).hexdigest()]


def test_browser_cookie_attributes(app, new_client, user):
    response = login(new_client())
    [header] = [
        h
        for h in response.headers.getlist("Set-Cookie")
        if h.startswith(app.config["KNOWN_BROWSER_COOKIE_NAME"] + "=")
    ]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Max-Age=34560000" in header


def test_one_browser_known_to_two_accounts_keeps_one_cookie(app, new_client, user, make_user):
    make_user("bob")
    shared = new_client()
    login(shared)
    first = cookie(shared, app.config["KNOWN_BROWSER_COOKIE_NAME"]).value
    post_form(shared, "/logout", page="/account")
    login(shared, "bob")
    assert cookie(shared, app.config["KNOWN_BROWSER_COOKIE_NAME"]).value == first
    assert db.session.scalar(select(func.count()).select_from(KnownBrowser)) == 2


def test_this_wasnt_me_signs_out_exactly_that_device_once(app, new_client, user, smtp):
    owner = browser_from(
        new_client,
        "10.0.0.2",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
    )
    login(owner)
    other = browser_from(new_client, "10.0.0.3")
    login(other)  # new: mailed
    intruder = browser_from(new_client, "8.8.8.8")
    login(intruder)  # new: mailed
    first_link, intruder_link = (not_me_path(m) for m in alerts(smtp))
    intruder_device = db.session.scalars(
        select(RefreshToken).where(RefreshToken.ip_address == "8.8.8.8")
    ).one()

    # GET shows the sign-in and the button, and changes nothing (mail scanners open links).
    reader = new_client()
    page = reader.get(intruder_link)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Sign out that device" in body and "8.8.8.8" in body and "United States" in body
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert intruder.get("/account").status_code == 200

    # POST without a CSRF token: 400 and nothing changes.
    assert reader.post(intruder_link).status_code == 400
    assert intruder.get("/account").status_code == 200

    response = post_form(reader, intruder_link)
    assert response.status_code == 302
    assert response.headers["Location"] == "/reset-password"
    assert "Now choose a new password" in reader.get("/reset-password").get_data(as_text=True)
    assert intruder.get("/account").status_code == 302
    assert owner.get("/account").status_code == 200
    assert other.get("/account").status_code == 200
    db.session.refresh(intruder_device)
    assert intruder_device.is_revoked and intruder_device.revoked_reason == "not_me"
    revoked = [d for d in db.session.scalars(select(RefreshToken)) if d.is_revoked]
    assert [d.id for d in revoked] == [intruder_device.id]

    # Once only.
    again = reader.get(intruder_link)
    assert again.status_code == 400 and "This link does not work" in again.get_data(as_text=True)
    token = csrf_token(reader, first_link)
    assert reader.post(intruder_link, data={"csrf_token": token}).status_code == 400
    recorded = db.session.scalars(
        select(SecurityEvent).where(SecurityEvent.event == "device_revoked_not_me")
    ).all()
    assert len(recorded) == 1 and recorded[0].details["device"] == intruder_device.id
    activity = owner.get("/account/activity").get_data(as_text=True)
    assert "A device was signed out from the “This wasn&#39;t me” link" in activity


def test_signed_in_owner_goes_on_to_change_the_password(app, new_client, user, smtp):
    owner = new_client()
    login(owner)
    login(browser_from(new_client, "8.8.8.8"))
    link = not_me_path(alerts(smtp)[0])
    response = post_form(owner, link)
    assert response.headers["Location"] == "/account/password"


def test_the_link_expires_after_7_days(app, new_client, user, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(new_client())
        intruder = browser_from(new_client, "8.8.8.8")
        login(intruder)
        link = not_me_path(alerts(smtp)[0])
        clock.shift(timedelta(days=6, hours=23))
        assert new_client().get(link).status_code == 200
        clock.shift(timedelta(hours=2))
        assert new_client().get(link).status_code == 400


def test_at_most_5_alerts_an_hour(app, new_client, user, smtp):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(new_client())
        for n in range(8):
            login(browser_from(new_client, f"8.8.8.{n + 1}"))
            clock.shift(timedelta(minutes=1))
        assert len(alerts(smtp)) == 5
        recorded = db.session.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.event == "new_browser_login")
        )
        assert recorded == 8  # every new browser is on the activity page
        clock.shift(timedelta(minutes=55))
        login(browser_from(new_client, "8.8.4.4"))
        assert len(alerts(smtp)) == 6


def test_unticking_the_box_stops_the_mails(app, new_client, user, smtp):
    owner = new_client()
    login(owner)
    page = owner.get("/account/security").get_data(as_text=True)
    assert '<label for="new_browser_alerts">Email me when a new browser signs in</label>' in page
    assert 'id="new_browser_alerts" name="new_browser_alerts" value="y" checked' in page
    assert 'value="Save"' in page
    response = post_form(
        owner, "/account/security/new-browser-alerts", {}, page="/account/security"
    )
    assert response.status_code == 302
    assert db.session.get(User, user.id).new_browser_alerts is False
    page = owner.get("/account/security").get_data(as_text=True)
    assert 'value="y" checked' not in page
    login(browser_from(new_client, "8.8.8.8"))
    assert alerts(smtp) == []
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.event == "new_browser_login")
        )
        == 1
    )

    post_form(
        owner,
        "/account/security/new-browser-alerts",
        {"new_browser_alerts": "y"},
        page="/account/security",
    )
    assert db.session.get(User, user.id).new_browser_alerts is True
    login(browser_from(new_client, "8.8.4.4"))
    assert len(alerts(smtp)) == 1


def test_the_setting_needs_a_fresh_session_and_a_csrf_token(app, new_client, user):
    owner = new_client()
    login(owner, remember=True)
    assert owner.post("/account/security/new-browser-alerts", data={}).status_code == 400
    assert owner.get("/account/security/new-browser-alerts").status_code == 405
    owner.delete_cookie(app.config["SESSION_COOKIE_NAME"])
    response = post_form(
        owner, "/account/security/new-browser-alerts", {}, page="/account/security"
    )
    assert "Confirm your password" in response.get_data(as_text=True)
    assert db.session.get(User, user.id).new_browser_alerts is True


def test_a_failed_request_mails_nothing(app, new_client, user, smtp, monkeypatch):
    from webapp.domain import audit

    login(new_client())
    original = audit.record

    def failing(action, **kwargs):
        event = original(action, **kwargs)
        if action == "login":
            raise RuntimeError("the database went away")
        return event

    monkeypatch.setattr("webapp.auth.routes.record", failing)
    response = login(browser_from(new_client, "8.8.8.8"))
    assert response.status_code == 500
    assert alerts(smtp) == []


def test_a_sign_in_from_a_known_browser_costs_two_statements_more(app, client, user, count_queries):
    """The browser lookup and the security event: no UPDATE, no count, no mail."""
    login(client)
    post_form(client, "/logout", page="/account")
    token = csrf_token(client, "/login")
    with count_queries() as statements:
        response = client.post(
            "/login", data={"csrf_token": token, "identifier": "alice", "password": TEST_PASSWORD}
        )
    assert response.status_code == 302
    assert not any(s.lstrip().upper().startswith("UPDATE") for s in statements)
    assert sum("known_browsers" in s for s in statements) == 1
    assert (
        sum(s.lstrip().upper().startswith("INSERT INTO SECURITY_EVENTS") for s in statements) == 1
    )
    assert len(statements) <= 6


def test_the_hourly_alert_count_reads_only_the_alerts(app, new_client, user, query_plans):
    """Not every event of the hour: each failed login before it would slow the next sign-in."""
    now = datetime.now(UTC)
    db.session.add_all(
        SecurityEvent(user_id=user.id, event="login_failed", created_at=now) for _ in range(300)
    )
    db.session.commit()
    postgres = db.engine.dialect.name == "postgresql"
    login(new_client())  # the account's first browser: nothing to count yet
    with query_plans(
        lambda sql: sql.startswith("SELECT count(*)") and "security_events" in sql
    ) as plans:
        login(browser_from(new_client, "8.8.8.8"))
    assert len(plans) == 1
    assert re.search(r"\bix_security_events_alerts\b", plans[0]), plans
    # ... an index of the events with a link only.
    if postgres:
        sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_security_events_alerts'"
    else:
        sql = "SELECT sql FROM sqlite_master WHERE name = 'ix_security_events_alerts'"
    definition = db.session.execute(text(sql)).scalar_one()
    assert re.search(r"WHERE \(?alert_token_hash IS NOT NULL\)?$", definition), definition


def test_a_new_browser_sign_in_stores_its_events_in_order_with_the_mailed_links_hash(
    app, new_client, user, smtp, count_queries
):
    """Two audit rows and two security events, each written once, in the order recorded.

    They go through the unit of work (issue 24: writing them by hand, in one
    INSERT a table, saved under 1 % of a login at bcrypt cost 12).
    """
    login(browser_from(new_client, "10.0.0.2"))  # the account's first sign-in
    away = browser_from(new_client, "81.2.69.160")
    token = csrf_token(away, "/login")
    with count_queries() as statements:
        response = away.post(
            "/login", data={"csrf_token": token, "identifier": "alice", "password": TEST_PASSWORD}
        )
    assert response.status_code == 302
    inserts = [s.lstrip().split(" (", 1)[0].upper() for s in statements if "INSERT" in s.upper()]
    # SQLite's unit of work writes one INSERT an event; PostgreSQL's batches
    # them (insertmanyvalues). Either way each table is written, nothing more.
    assert 1 <= inserts.count("INSERT INTO AUDIT_EVENTS") <= 2
    assert 1 <= inserts.count("INSERT INTO SECURITY_EVENTS") <= 2
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["new_browser_login", "login"]  # in the order recorded
    events = db.session.scalars(
        select(SecurityEvent).where(SecurityEvent.user_id == user.id).order_by(SecurityEvent.id)
    ).all()
    assert [e.event for e in events[-2:]] == ["new_browser_login", "login"]
    assert events[-1].alert_token_hash is None
    # The hash stored is the mailed link's: "This wasn't me" finds its event.
    [message] = alerts(smtp)
    link_token = NOT_ME_RE.search(text_of(message)).group(1)
    assert events[-2].alert_token_hash == hashlib.sha256(link_token.encode()).hexdigest()
