"""Security activity: every event on its own account's page, with its device and IP."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from tests.conftest import cookie, csrf_token, login, post_form
from tests.smtp import reset_link
from webapp.extensions import db
from webapp.models import RefreshToken, Role, SecurityEvent, User

FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
UK = "81.2.69.160"  # RIR data: GB
US = "8.8.8.8"  # RIR data: US
ROW_RE = re.compile(r"<tr(?: class=\"activity-current\")?>\s*(.*?)</tr>", re.S)
CELL_RE = re.compile(r"<td>(.*?)</td>", re.S)


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def at(client, ip: str):
    """Make the client's requests come from `ip` (no proxy in front)."""
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def rows(client, **query) -> list[dict]:
    """Return the activity page's rows, as text: what, browser, ip, location, current."""
    response = client.get("/account/activity", query_string=query)
    assert response.status_code == 200
    found = []
    for row in ROW_RE.findall(response.get_data(as_text=True)):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in CELL_RE.findall(row)]
        if not cells:
            continue
        when, what, browser, ip, location = cells
        found.append(
            {
                "what": what,
                "browser": browser.replace("This device", "").strip(),
                "ip": ip,
                "location": location,
                "current": "This device" in browser,
            }
        )
    return found


def whats(client, **query) -> list[str]:
    return [row["what"] for row in rows(client, **query)]


def find(client, what: str) -> dict:
    matching = [row for row in rows(client) if row["what"] == what]
    assert matching, f"{what!r} not on the page: {whats(client)}"
    return matching[0]


def test_page_is_for_signed_in_users_only(client):
    response = client.get("/account/activity")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_signup_and_sign_in_show_with_device_browser_ip_and_location(app, new_client):
    first = at(new_client(), UK)
    response = post_form(
        first,
        "/signup",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password": "Tr0ub4dor&3-horse",
            "confirm_password": "Tr0ub4dor&3-horse",
        },
    )
    assert response.status_code == 302
    created = find(first, "Account created")
    assert created == {
        "what": "Account created",
        "browser": "Chrome on Linux",
        "ip": UK,
        "location": "United Kingdom",
        "current": True,
    }
    second = at(new_client(FIREFOX_MAC), US)
    login(second, "erin")
    signed_in = find(second, "Signed in with a password")
    assert signed_in["browser"] == "Firefox on Mac OS X"
    assert signed_in["ip"] == US and signed_in["location"] == "United States"
    assert signed_in["current"] is True
    # From the first browser, the second's sign-in is not "This device".
    assert find(first, "Signed in with a password")["current"] is False
    assert find(first, "Signed in from a new browser")["ip"] == US


def test_failed_sign_ins_land_on_the_account_they_name_and_the_page_stays_the_same(
    app, client, new_client, user, make_user
):
    make_user("bob")
    stranger = at(new_client(FIREFOX_MAC), US)
    for identifier in ("alice", "ALICE@example.com"):
        response = login(stranger, identifier, "wrong password")
        assert "Invalid username/email or password." in response.get_data(as_text=True)
    nobody = login(stranger, "nobody-here", "wrong password").get_data(as_text=True)
    assert "Invalid username/email or password." in nobody
    login(at(client, UK), "alice")
    failures = [row for row in rows(client) if row["what"] == "Failed sign-in: wrong password"]
    assert len(failures) == 2
    assert all(r["ip"] == US and r["browser"] == "Firefox on Mac OS X" for r in failures)
    bob = new_client()
    login(bob, "bob")
    assert "Failed sign-in: wrong password" not in whats(bob)


def test_each_own_action_appears_with_its_device_and_ip(app, new_client, user, smtp):
    laptop = at(new_client(), UK)
    login(laptop, remember=True)
    phone = at(new_client(FIREFOX_MAC), US)
    login(phone)
    tablet = at(new_client(FIREFOX_MAC), "10.0.0.7")
    login(tablet)
    tablet_device = db.session.scalars(
        select(RefreshToken).where(RefreshToken.ip_address == "10.0.0.7")
    ).one()

    post_form(laptop, f"/account/devices/{tablet_device.id}/revoke", page="/account/devices")
    revoked = find(laptop, "A device was signed out from the device page")
    assert revoked["current"] and revoked["ip"] == UK
    post_form(laptop, "/account/devices/revoke-others", page="/account/devices")
    assert find(laptop, "Signed out 1 other device")["current"]

    post_form(
        laptop,
        "/account/password",
        {
            "current_password": "Tr0ub4dor&3-horse",
            "new_password": "correct horse battery staple",
            "confirm_new_password": "correct horse battery staple",
        },
    )
    changed = find(laptop, "Password changed")
    assert changed["current"] and changed["ip"] == UK and changed["browser"] == "Chrome on Linux"

    phone = at(new_client(FIREFOX_MAC), US)
    login(phone, password="correct horse battery staple")
    post_form(phone, "/logout", page="/account")
    signed_out = find(laptop, "Signed out")
    assert signed_out["ip"] == US and not signed_out["current"]


def test_password_reset_events_show_where_they_came_from(app, new_client, user, smtp):
    asker = at(new_client(FIREFOX_MAC), US)
    post_form(asker, "/reset-password", {"email": "alice@example.com"})
    link = reset_link(smtp.to("alice@example.com")[-1])
    post_form(
        asker,
        link,
        {
            "new_password": "correct horse battery staple",
            "confirm_new_password": "correct horse battery staple",
        },
    )
    owner = at(new_client(), UK)
    login(owner, password="correct horse battery staple")
    requested = find(owner, "Password reset link requested")
    assert requested["ip"] == US and requested["location"] == "United States"
    reset = find(owner, "Password reset with an emailed link")
    assert reset["ip"] == US and reset["browser"] == "Firefox on Mac OS X"


def test_what_an_admin_did_shows_without_the_admins_address(app, new_client, user, admin):
    admin_browser = at(new_client(FIREFOX_MAC), US)
    login(admin_browser, "root-admin")
    url = f"/admin/users/{user.id}"
    admin_role = db.session.scalar(select(Role.id).where(Role.name == "admin"))
    user_role = db.session.scalar(select(Role.id).where(Role.name == "user"))
    for data in (
        {"action": "role", "role": admin_role},
        {"action": "role", "role": user_role},
        {"action": "signout"},
        {"action": "deactivate"},
        {"action": "activate"},
    ):
        assert post_form(admin_browser, url, data).status_code == 302
    owner = at(new_client(), UK)
    login(owner)
    admin_rows = {row["what"]: row for row in rows(owner) if "administrator" in row["what"]}
    assert set(admin_rows) >= {
        "Role changed by an administrator to admin",
        "Role changed by an administrator to user",
        "Every device signed out by an administrator (0 devices)",
        "Account deactivated by an administrator",
        "Account reactivated by an administrator",
    }
    for row in admin_rows.values():
        assert row["ip"] == "—" and row["browser"] == "—" and not row["current"]
    # The admin's own page shows none of it.
    assert not any("administrator" in what for what in whats(admin_browser))


def test_a_stolen_token_shows_from_where_it_came_back(app, new_client, user, smtp):
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        owner = at(new_client(), UK)
        login(owner, remember=True)
        stolen = cookie(owner, name).value
        owner.delete_cookie(app.config["SESSION_COOKIE_NAME"])
        assert owner.get("/account").status_code == 200
        clock.shift(timedelta(minutes=5))
        thief = at(new_client(FIREFOX_MAC), US)
        thief.set_cookie(name, stolen)
        assert thief.get("/account").status_code == 302
    reader = at(new_client(), UK)
    login(reader)
    theft = find(reader, "A device was signed out: its sign-in token was used again from elsewhere")
    assert theft["ip"] == US and theft["browser"] == "Firefox on Mac OS X"
    event = db.session.scalars(
        select(SecurityEvent).where(SecurityEvent.event == "token_theft_suspected")
    ).one()
    assert (
        event.device_id
        == db.session.scalars(select(RefreshToken.id).order_by(RefreshToken.id)).first()
    )


def test_events_of_the_parallel_branches_read_in_plain_words(app, client, user):
    """Codes other features record (email, two-factor, passkeys) already have their words."""
    from webapp.domain.activity import EVENTS
    from webapp.domain.audit import record

    login(at(client, UK))
    codes = [
        "email_confirmation_sent",
        "email_confirmed",
        "email_change_requested",
        "email_changed",
        "email_change_cancelled",
        "signup_existing_email",
        "totp_enabled",
        "totp_disabled",
        "recovery_codes_generated",
        "recovery_code_used",
        "mfa_failed",
        "mfa_reset",
        "passkey_added",
        "passkey_removed",
    ]
    owner = db.session.get(User, user.id)
    with app.test_request_context(environ_base={"REMOTE_ADDR": US}):
        for code in codes:
            record(code, target_user=owner)
        db.session.commit()
    shown = whats(client)
    for code in codes:
        assert EVENTS[code] in shown, code
        assert "_" not in EVENTS[code]
    us_rows = [row for row in rows(client) if row["ip"] == US]
    assert len(us_rows) == len(codes)
    assert all(row["location"] == "United States" for row in us_rows)


def test_every_code_has_plain_words():
    from webapp.domain.activity import EVENTS

    contract = {
        "signup", "login", "login_failed", "logout", "password_changed",
        "password_reset_requested", "password_reset", "device_revoked",
        "token_theft_suspected", "role_changed", "user_deactivated", "user_activated",
        "devices_signed_out", "email_confirmation_sent", "email_confirmed",
        "email_change_requested", "email_changed", "email_change_cancelled",
        "signup_existing_email", "totp_enabled", "totp_disabled",
        "recovery_codes_generated", "recovery_code_used", "mfa_failed", "mfa_reset",
        "passkey_added", "passkey_removed", "new_browser_login", "device_revoked_not_me",
    }  # fmt: skip
    assert contract <= set(EVENTS)
    for code, words in EVENTS.items():
        assert words and words[0].isupper() and code not in words


def test_events_never_show_on_another_account(app, new_client, user, make_user):
    make_user("bob")
    alice = at(new_client(), UK)
    login(alice)
    post_form(alice, "/logout", page="/account")
    login(alice, "alice", "wrong")
    bob = at(new_client(), US)
    login(bob, "bob")
    bob_rows = rows(bob)
    assert [row["what"] for row in bob_rows] == ["Signed in with a password"]
    assert bob_rows[0]["ip"] == US


def test_newest_first_50_a_page_and_one_query_for_the_rows(app, client, user, count_queries):
    login(client)
    client.get("/account/activity")
    with count_queries() as few:
        client.get("/account/activity")
    start = datetime.now(UTC) - timedelta(days=1)
    db.session.add_all(
        SecurityEvent(
            user_id=user.id,
            event="login_failed",
            ip_address="10.0.0.1",
            country="XL",
            created_at=start + timedelta(minutes=n),
        )
        for n in range(120)
    )
    db.session.commit()
    with count_queries() as many:
        page = client.get("/account/activity").get_data(as_text=True)
    assert len(many) == len(few) == 2  # the signed-in user, then the rows
    first = rows(client)
    assert len(first) == 50
    assert first[0]["what"] == "Signed in with a password"  # the newest
    after = re.search(r'href="/account/activity\?after=([^"]+)"', page).group(1)
    second = rows(client, after=after)
    assert len(second) == 50
    third_after = re.search(
        r'href="/account/activity\?after=([^"]+)"',
        client.get("/account/activity", query_string={"after": after}).get_data(as_text=True),
    ).group(1)
    assert len(rows(client, after=third_after)) == 21
    assert "Local network" in {row["location"] for row in second}
    before = re.search(
        r'href="/account/activity\?before=([^"]+)"',
        client.get("/account/activity", query_string={"after": after}).get_data(as_text=True),
    ).group(1)
    assert rows(client, before=before) == first


def test_linked_from_the_account_and_device_pages(client, user):
    login(client)
    for page in ("/account", "/account/devices"):
        assert 'href="/account/activity"' in client.get(page).get_data(as_text=True)


# Location ------------------------------------------------------------------


@pytest.fixture
def proxied_app(app_config):
    from tests.conftest import serve

    yield from serve({**app_config, "TRUSTED_PROXIES": 1})


def test_location_from_the_trusted_proxy_header(proxied_app, user):
    from tests.conftest import browser

    client = browser(proxied_app)
    client.environ_base["HTTP_X_FORWARDED_FOR"] = UK
    login(client)
    signed_in = find(client, "Signed in with a password")
    assert signed_in["ip"] == UK and signed_in["location"] == "United Kingdom"
    devices_page = client.get("/account/devices").get_data(as_text=True)
    assert "Approximate location" in devices_page and "United Kingdom" in devices_page
    device = db.session.scalars(select(RefreshToken)).one()
    assert device.country == "GB"
    stored = db.session.scalars(select(SecurityEvent).where(SecurityEvent.event == "login")).one()
    assert stored.country == "GB"

    for private in ("192.168.1.20", "10.1.2.3", "127.0.0.1", "::1", "fd00::1"):
        other = browser(proxied_app)
        other.environ_base["HTTP_X_FORWARDED_FOR"] = private
        login(other)
        assert find(other, "Signed in with a password")["location"] == "Local network"
        assert "Local network" in other.get("/account/devices").get_data(as_text=True)


def test_location_module(app):
    from webapp.security.location import LOCAL_NETWORK, describe, locate

    assert locate(UK).country == "GB"
    assert locate("2001:4860:4860::8888").country == "US"
    assert locate("::ffff:192.168.0.1").country == LOCAL_NETWORK
    assert locate("169.254.1.1").country == LOCAL_NETWORK
    for junk in (None, "", "not an ip", "999.1.1.1", "\x00", "1" * 500):
        assert locate(junk).country is None
    assert describe(None) == "Unknown"
    assert describe("GB", "London") == "London, United Kingdom"
    assert describe("KR") == "South Korea"  # pycountry's common name
    assert describe("QQ") == "Unknown"
    assert describe(LOCAL_NETWORK, "ignored") == "Local network"


def test_a_maxmind_database_adds_the_city(app, tmp_path, user, client):
    from tests.mmdb import write_city_database

    path = tmp_path / "city.mmdb"
    write_city_database(path, {"81.2.69.0/24": ("GB", "London"), "8.8.8.0/24": ("US", None)})
    app.config["GEOIP_MMDB_PATH"] = str(path)
    from webapp.security.location import locate

    assert locate(UK).country == "GB" and locate(UK).city == "London"
    assert locate("8.8.8.8").city is None and locate("8.8.8.8").country == "US"
    assert locate("1.0.16.1").country == "JP"  # not in the file: the packaged data
    assert locate("2001:4860:4860::8888").country == "US"  # an IPv4-only file: packaged data
    login(at(client, UK))
    assert find(client, "Signed in with a password")["location"] == "London, United Kingdom"
    assert "London, United Kingdom" in client.get("/account/devices").get_data(as_text=True)


def test_a_missing_maxmind_database_falls_back_to_the_country(app, tmp_path):
    from webapp.security.location import locate

    app.config["GEOIP_MMDB_PATH"] = str(tmp_path / "missing.mmdb")
    assert locate(UK).country == "GB" and locate(UK).city is None
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a database")
    app.config["GEOIP_MMDB_PATH"] = str(broken)
    assert locate(UK).country == "GB" and locate(UK).city is None
    assert locate("8.8.8.8").country == "US"


# Retention -----------------------------------------------------------------


def test_purge_deletes_only_what_is_older_than_the_setting(app, runner, user):
    now = datetime.now(UTC)
    ages = [1, 10, 89, 91, 120, 400]
    db.session.add_all(
        SecurityEvent(user_id=user.id, event="login", created_at=now - timedelta(days=days))
        for days in ages
    )
    db.session.commit()
    result = runner.invoke(args=["purge-activity"])
    assert result.exit_code == 0, result.output
    assert "Purged 3 events older than 90 days." in result.output
    left = db.session.scalars(select(SecurityEvent.created_at)).all()
    assert sorted(round((now - when) / timedelta(days=1)) for when in left) == [1, 10, 89]

    app.config["SECURITY_LOG_DAYS"] = 5
    result = runner.invoke(args=["purge-activity"])
    assert "Purged 2 events" in result.output
    assert db.session.scalar(select(func.count()).select_from(SecurityEvent)) == 1
    assert "Purged 0 events" in runner.invoke(args=["purge-activity"]).output


def test_purge_works_in_batches(app, user):
    from webapp.domain.activity import purge_activity

    old = datetime.now(UTC) - timedelta(days=200)
    db.session.add_all(
        SecurityEvent(user_id=user.id, event="login", created_at=old) for _ in range(25)
    )
    db.session.commit()
    assert purge_activity(batch_size=10) == 25
    assert db.session.scalar(select(func.count()).select_from(SecurityEvent)) == 0


def test_events_go_with_their_account(app, client, user):
    login(client)
    token = csrf_token(client, "/account/delete")
    client.post("/account/delete", data={"csrf_token": token, "password": "Tr0ub4dor&3-horse"})
    assert db.session.scalar(select(func.count()).select_from(SecurityEvent)) == 0


def test_a_signup_without_a_sign_in_keeps_no_device(app, client, user):
    """A signup that signed nobody in (mandatory confirmation) is not "This device" later."""
    from webapp.domain.audit import record

    owner = db.session.get(User, user.id)
    with app.test_request_context(environ_base={"REMOTE_ADDR": US}):
        record("signup", actor=owner, target_user=owner)
        db.session.commit()
    login(at(client, UK))
    created = find(client, "Account created")
    assert created["ip"] == US and created["current"] is False
    signup_event = db.session.scalars(
        select(SecurityEvent).where(SecurityEvent.event == "signup")
    ).one()
    assert signup_event.device_id is None
