"""Devices: every signed-in browser is a row, revocable, and stays out once revoked."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from tests.conftest import HTTPS, TEST_PASSWORD, cookie, login, post_form
from webapp.extensions import db
from webapp.models import AuditEvent, RefreshToken, RevokeReason

FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"


def remember_name(app) -> str:
    return app.config["REMEMBER_DEVICE_COOKIE_NAME"]


def session_name(app) -> str:
    return app.config["SESSION_COOKIE_NAME"]


def devices_of(user) -> list[RefreshToken]:
    return db.session.scalars(
        select(RefreshToken).where(RefreshToken.user_id == user.id).order_by(RefreshToken.id)
    ).all()


def remembered_browser(app, new_client, user_agent=None):
    """Sign a new browser in with "Remember this device"; return it and its cookie."""
    browser = new_client(user_agent) if user_agent else new_client()
    login(browser, remember=True)
    return browser, cookie(browser, remember_name(app)).value


def secret_hash(cookie_value: str) -> str:
    """Return what the database stores for a remember cookie: the SHA-256 of its secret."""
    return hashlib.sha256(cookie_value.split(".")[1].encode()).hexdigest()


def cookie_only_browser(app, new_client, token: str):
    """A browser that kept only its remember cookie (the session cookie is gone)."""
    browser = new_client()
    browser.set_cookie(remember_name(app), token)
    return browser


# The device page -----------------------------------------------------------


def test_device_page_lists_each_browser(app, client, new_client, user):
    login(client)
    remembered_browser(app, new_client, FIREFOX_MAC)
    page = client.get("/account/devices").get_data(as_text=True)
    assert page.count('class="device') >= 2
    assert "Chrome on Linux" in page
    assert "Firefox on Mac OS X" in page
    assert "This device" in page
    assert "127.0.0.1" in page
    assert "Remembered until" in page
    assert page.count('value="Revoke"') + page.count(">Revoke<") == 1
    assert "Sign out all other devices" in page


def test_unknown_user_agent_reads_unknown_browser(app, new_client, user):
    browser = new_client("")
    login(browser)
    assert "Unknown browser" in browser.get("/account/devices").get_data(as_text=True)


def test_device_page_lists_only_own_devices(app, client, new_client, user, make_user):
    make_user("mallory")
    login(new_client(FIREFOX_MAC), "mallory")
    login(client)
    page = client.get("/account/devices").get_data(as_text=True)
    assert "Firefox" not in page


def test_device_page_costs_the_same_queries_for_1_or_50_devices(app, client, user, count_queries):
    from webapp.security.devices import create_device

    login(client)
    client.get("/account/devices")
    with count_queries() as one:
        client.get("/account/devices")
    for index in range(49):
        create_device(user, remember=index % 2 == 0, user_agent=FIREFOX_MAC, ip_address="10.0.0.9")
    db.session.commit()
    with count_queries() as fifty:
        page = client.get("/account/devices").get_data(as_text=True)
    assert page.count('<h2 class="device-name">Firefox on Mac OS X') == 49
    assert len(fifty) == len(one)


def test_device_page_shows_each_time_under_its_label(app, client, new_client, user):
    """Sign-in, last use and end are distinct times, each printed under its own label."""
    app.config.update(SESSION_IDLE_HOURS=2, SESSION_MAX_HOURS=12)
    with time_machine.travel(datetime(2030, 3, 1, 9, 5, tzinfo=UTC), tick=False) as clock:
        login(client)
        clock.shift(timedelta(minutes=20))
        remembered_browser(app, new_client, FIREFOX_MAC)
        clock.shift(timedelta(minutes=42))
        page = client.get("/account/devices").get_data(as_text=True)
    items = page.split('<li class="device')[1:]
    this = next(item for item in items if "This device" in item)
    other = next(item for item in items if "Firefox on Mac OS X" in item)
    assert "<dt>Signed in</dt><dd>1 Mar 2030, 09:05 UTC</dd>" in this
    assert "<dt>Last active</dt><dd>1 Mar 2030, 10:07 UTC</dd>" in this
    assert "<dt>Expires</dt><dd>1 Mar 2030, 12:07 UTC</dd>" in this  # idle limit first
    assert "<dt>Signed in</dt><dd>1 Mar 2030, 09:25 UTC</dd>" in other
    assert "<dt>Last active</dt><dd>1 Mar 2030, 09:25 UTC</dd>" in other
    assert "<dt>Remembered until</dt><dd>15 Mar 2030, 09:25 UTC</dd>" in other


def rename_own_device(client, user, name: str) -> str:
    """Log in, give this browser's device `name`, and return the device page."""
    login(client)
    device = devices_of(user)[0]
    post_form(
        client, f"/account/devices/{device.id}/rename", {"name": name}, page="/account/devices"
    )
    return client.get("/account/devices").get_data(as_text=True)


def test_user_can_name_a_device(app, client, user):
    page = rename_own_device(client, user, "Work laptop")
    assert "Work laptop" in page
    assert "Chrome on Linux" in page  # still shown, beside the name


def test_device_name_is_escaped(app, client, user):
    page = rename_own_device(client, user, "<img src=x>")
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page


def test_hostile_device_name_is_escaped_everywhere_it_prints(app, client, new_client, user):
    """Another device's name prints in its heading, rename field, confirm text and labels."""
    login(client)
    remembered_browser(app, new_client, FIREFOX_MAC)
    other = devices_of(user)[-1]
    other.name = '"><script>alert(1)</script>'
    db.session.commit()
    escaped = "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    page = client.get("/account/devices").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert page.count(escaped) == 4  # heading, field value, data-confirm, aria-label
    other.is_revoked, other.revoked_reason = True, RevokeReason.THEFT
    db.session.commit()
    page = client.get("/account/devices").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert page.count(escaped) == 2  # heading, the dismiss button's aria-label


# Revoking -------------------------------------------------------------------


def test_revoke_one_device_signs_that_browser_out(app, client, new_client, user):
    login(client)
    other, token = remembered_browser(app, new_client)
    target = devices_of(user)[1]
    response = post_form(client, f"/account/devices/{target.id}/revoke", page="/account/devices")
    assert response.headers["Location"] == "/account/devices"
    # Its session and its remember cookie are both dead.
    response = other.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert cookie_only_browser(app, new_client, token).get("/account").status_code == 302
    assert client.get("/account").status_code == 200
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "device_revoked"))
    assert event.one().actor_username == "alice"


def test_revoking_the_current_device_is_a_logout(app, client, user):
    login(client, remember=True)
    device = devices_of(user)[0]
    response = post_form(client, f"/account/devices/{device.id}/revoke", page="/account/devices")
    assert response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302
    assert cookie(client, remember_name(app)) is None


def test_revoke_another_users_device_is_404(app, client, new_client, user, make_user):
    make_user("mallory")
    login(new_client(), "mallory")
    victim_device = db.session.scalars(select(RefreshToken)).one()
    login(client)
    response = post_form(
        client, f"/account/devices/{victim_device.id}/revoke", page="/account/devices"
    )
    assert response.status_code == 404
    db.session.refresh(victim_device)
    assert victim_device.is_revoked is False


def test_revoke_is_post_only_and_needs_csrf(app, client, new_client, user):
    login(client)
    remembered_browser(app, new_client)
    target = devices_of(user)[1]
    assert client.get(f"/account/devices/{target.id}/revoke").status_code == 405
    assert client.post(f"/account/devices/{target.id}/revoke").status_code == 400
    db.session.refresh(target)
    assert target.is_revoked is False


def test_sign_out_all_other_devices(app, client, new_client, user):
    login(client)
    others = [remembered_browser(app, new_client)[0] for _ in range(3)]
    response = post_form(client, "/account/devices/revoke-others", page="/account/devices")
    assert response.status_code == 302
    assert all(other.get("/account").status_code == 302 for other in others)
    assert client.get("/account").status_code == 200
    live = [d for d in devices_of(user) if not d.is_revoked]
    assert len(live) == 1


def test_a_users_live_devices_are_found_through_their_own_index(
    app, client, user, make_user, query_plans
):
    """Not every live device of the site: the cap at sign-in, the device page, sign out others."""
    from webapp.security.devices import create_device

    someone = make_user("bob", "bob@example.com")
    for _ in range(20):
        create_device(someone, remember=True, user_agent=None, ip_address=None)
    db.session.commit()

    def on_devices(sql: str) -> bool:
        table = sql.startswith("UPDATE refresh_tokens") or "FROM refresh_tokens" in sql
        return table and "is_revoked" in sql.split("WHERE", 1)[-1]

    with query_plans(on_devices) as plans:
        login(client)
        assert client.get("/account/devices").status_code == 200
        post_form(client, "/account/devices/revoke-others", page="/account/devices")
    assert len(plans) >= 3
    for plan in plans:
        assert "ix_refresh_tokens_user_id_is_revoked" in plan, plan


def test_logout_revokes_device_and_deletes_remember_cookie(app, client, new_client, user):
    login(client, remember=True)
    token = cookie(client, remember_name(app)).value
    response = post_form(client, "/logout", page="/account")
    deletion = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(remember_name(app) + "=")
    ]
    assert deletion and "Max-Age=0" in deletion[0]
    assert "HttpOnly" in deletion[0] and "SameSite=Lax" in deletion[0] and "Path=/" in deletion[0]
    assert devices_of(user)[0].is_revoked
    assert cookie_only_browser(app, new_client, token).get("/account").status_code == 302


def test_deactivated_user_is_signed_out_everywhere(app, client, new_client, user):
    login(client)
    _, token = remembered_browser(app, new_client)
    user.is_active = False
    db.session.commit()
    assert client.get("/account").status_code == 302
    assert cookie_only_browser(app, new_client, token).get("/account").status_code == 302


# The remember cookie ----------------------------------------------------------


def test_remember_cookie_attributes(app, client, user):
    response = login(client, remember=True)
    header = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(remember_name(app) + "=")
    )
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert f"Max-Age={30 * 24 * 3600}" in header
    assert "Domain" not in header


def test_secure_cookies_when_cookie_secure(secure_app):
    """With COOKIE_SECURE (the production default) cookies are __Host- and Secure."""
    from webapp.domain.users import create_user

    create_user("alice", "alice@example.com", TEST_PASSWORD)
    db.session.commit()
    response = post_form(
        secure_app.test_client(),
        "/login",
        {"identifier": "alice", "password": TEST_PASSWORD, "remember": "y"},
        **HTTPS,
    )
    assert response.status_code == 302
    headers = response.headers.getlist("Set-Cookie")
    assert {h.split("=", 1)[0] for h in headers} == {
        "__Host-session",
        "__Host-remember",
        "__Host-browser",  # marks the browser for the new-sign-in alert
    }
    for header in headers:
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
        assert "Path=/" in header and "Domain" not in header
    assert "max-age=63072000" in response.headers["Strict-Transport-Security"]


def test_remember_cookie_signs_in_not_fresh_and_rotates(app, new_client, user):
    _, token = remembered_browser(app, new_client)
    browser = cookie_only_browser(app, new_client, token)
    response = browser.get("/account")
    assert response.status_code == 200
    rotated = cookie(browser, remember_name(app)).value
    assert rotated != token
    device = devices_of(user)[0]
    assert device.token_hash == secret_hash(rotated)
    assert rotated.split(".")[0] == token.split(".")[0]  # same series, new secret
    # The new token works in yet another browser.
    assert cookie_only_browser(app, new_client, rotated).get("/account").status_code == 200
    # Not fresh: a sensitive page asks for the password first.
    page = browser.get("/account/password").get_data(as_text=True)
    assert "Confirm your password" in page


def test_a_signed_in_browser_keeps_its_remember_cookie_unrotated(app, new_client, user):
    """The cookie signs in only a browser whose session does not: no rotation, no write."""
    browser, token = remembered_browser(app, new_client)
    stored = devices_of(user)[0].token_hash
    for _ in range(3):
        assert browser.get("/account").status_code == 200
    assert cookie(browser, remember_name(app)).value == token
    db.session.expire_all()
    assert devices_of(user)[0].token_hash == stored == secret_hash(token)


def test_database_stores_only_the_hash_of_the_token(app, new_client, user):
    _, token = remembered_browser(app, new_client)
    device = devices_of(user)[0]
    series, secret = token.split(".")
    assert secret not in repr(device.__dict__)
    assert device.token_hash == secret_hash(token)
    assert len(series) >= 22 and len(secret) >= 43  # 128-bit selector, 256-bit verifier


def test_tokens_are_unique_across_many_logins(app, new_client, make_user):
    from webapp.security.devices import new_token

    tokens = {new_token()[0] for _ in range(1000)}
    assert len(tokens) == 1000


def test_replaced_token_within_grace_period_still_works(app, new_client, user):
    _, token = remembered_browser(app, new_client)
    cookie_only_browser(app, new_client, token).get("/account")
    late = cookie_only_browser(app, new_client, token)
    assert late.get("/account").status_code == 200
    assert devices_of(user)[0].is_revoked is False


def test_replaced_token_after_grace_period_is_theft(app, new_client, user):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        _, token = remembered_browser(app, new_client)
        clock.shift(timedelta(minutes=5))
        legit = cookie_only_browser(app, new_client, token)
        assert legit.get("/account").status_code == 200
        clock.shift(timedelta(minutes=5))
        thief = cookie_only_browser(app, new_client, token)
        response = thief.get("/account")
        assert response.status_code == 302
        assert cookie(thief, remember_name(app)) is None
        # The device is revoked: the legitimate browser is signed out too.
        assert legit.get("/account").status_code == 302
    device = devices_of(user)[0]
    assert device.is_revoked and device.revoked_reason == "theft"
    assert db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "token_theft_suspected")
    ).one()


def test_stolen_device_notice_shows_until_dismissed(app, client, new_client, user):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        _, token = remembered_browser(app, new_client)
        cookie_only_browser(app, new_client, token).get("/account")
        clock.shift(timedelta(minutes=2))
        cookie_only_browser(app, new_client, token).get("/account")
        login(client)
        page = client.get("/account/devices").get_data(as_text=True)
        assert "its sign-in token was used from elsewhere" in page
        stolen = devices_of(user)[0]
        post_form(client, f"/account/devices/{stolen.id}/dismiss", page="/account/devices")
        page = client.get("/account/devices").get_data(as_text=True)
        assert "its sign-in token was used from elsewhere" not in page


def test_parallel_requests_with_one_cookie_all_succeed(app, new_client, user):
    _, token = remembered_browser(app, new_client)
    browsers = [cookie_only_browser(app, new_client, token) for _ in range(10)]
    statuses: list[int] = []
    barrier = threading.Barrier(len(browsers))

    def fetch(browser) -> None:
        barrier.wait()
        statuses.append(browser.get("/account").status_code)

    threads = [threading.Thread(target=fetch, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    device = devices_of(user)[0]
    assert device.is_revoked is False
    returned = {cookie(b, remember_name(app)).value for b in browsers} - {token}
    assert len(returned) == 1  # exactly one request won the rotation
    for value in returned:
        assert cookie_only_browser(app, new_client, value).get("/account").status_code == 200


@pytest.mark.parametrize(
    "value",
    ["", "x", "a.b.c", "%%%not-base64%%%", "é" * 43, "A" * 10_000, "A" * 43, "\x00" * 43],
)
def test_bad_remember_cookies_are_ignored_quietly(app, user, value):
    browser = app.test_client(use_cookies=False)  # sends the raw Cookie header as given
    response = browser.get("/account", headers={"Cookie": f"{remember_name(app)}={value}"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    deletion = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(remember_name(app) + "=")
    ]
    if value:  # an empty cookie is no cookie to the server: nothing to delete
        assert deletion and "Max-Age=0" in deletion[0]
    assert browser.get("/", headers={"Cookie": f"{remember_name(app)}={value}"}).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_revoked_and_expired_cookies_are_ignored_quietly(app, new_client, user):
    _, token = remembered_browser(app, new_client)
    device = devices_of(user)[0]
    device.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    browser = cookie_only_browser(app, new_client, token)
    assert browser.get("/account").status_code == 302
    assert cookie(browser, remember_name(app)) is None


# Expiry ---------------------------------------------------------------------------


def test_remembered_device_expires_after_remember_days(app, new_client, user):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        browser, _ = remembered_browser(app, new_client)
        for _ in range(4):  # used every 10 days, so never idle
            clock.shift(timedelta(days=7))
            assert browser.get("/account").status_code == 200
        clock.shift(timedelta(days=3))
        assert browser.get("/account").status_code == 302


def test_remembered_device_expires_when_idle(app, new_client, user):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        browser, token = remembered_browser(app, new_client)
        clock.shift(timedelta(days=14, minutes=1))
        assert cookie_only_browser(app, new_client, token).get("/account").status_code == 302


def test_session_device_expires_when_idle(app, client, user):
    app.config.update(SESSION_IDLE_HOURS=2, SESSION_MAX_HOURS=12)
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(client)
        clock.shift(timedelta(hours=1, minutes=59))
        assert client.get("/account").status_code == 200
        clock.shift(timedelta(hours=1, minutes=59))  # idle time counts from the last use
        assert client.get("/account").status_code == 200
        clock.shift(timedelta(hours=2, minutes=2))
        assert client.get("/account").status_code == 302


def test_session_device_ends_after_max_hours_even_when_used(app, client, user):
    app.config.update(SESSION_IDLE_HOURS=12, SESSION_MAX_HOURS=12)
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(client)
        for _ in range(3):
            clock.shift(timedelta(hours=3, minutes=50))
            assert client.get("/account").status_code == 200
        clock.shift(timedelta(hours=1))
        assert client.get("/account").status_code == 302


def test_captured_session_cookie_is_rejected_after_idle_limit(app, client, new_client, user):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(client)
        captured = cookie(client, session_name(app)).value
        clock.shift(timedelta(hours=13))
        replay = new_client()
        replay.set_cookie(session_name(app), captured)
        assert replay.get("/account").status_code == 302


def test_last_used_is_written_at_most_once_a_minute(app, client, user, count_queries):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        login(client)
        clock.shift(timedelta(seconds=30))
        with count_queries() as quiet:
            client.get("/account")
        assert not any(s.lstrip().upper().startswith("UPDATE") for s in quiet)
        clock.shift(timedelta(minutes=2))
        with count_queries() as touched:
            client.get("/account")
        assert sum(s.lstrip().upper().startswith("UPDATE") for s in touched) == 1


def test_signed_in_request_costs_one_query(app, client, user, count_queries):
    login(client)
    client.get("/account")
    with count_queries() as statements:
        assert client.get("/account").status_code == 200
    assert len(statements) == 1


def test_remember_cookie_sign_in_costs_at_most_three_queries_and_no_bcrypt(
    app, new_client, user, count_queries, monkeypatch
):
    import bcrypt

    _, token = remembered_browser(app, new_client)
    browser = cookie_only_browser(app, new_client, token)

    def no_bcrypt(*args, **kwargs):
        raise AssertionError("bcrypt on a cookie sign-in")

    monkeypatch.setattr(bcrypt, "checkpw", no_bcrypt)
    monkeypatch.setattr(bcrypt, "hashpw", no_bcrypt)
    with count_queries() as statements:
        assert browser.get("/account").status_code == 200
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert len(statements) <= 3
    assert len(writes) == 1


def test_a_user_keeps_at_most_100_live_devices(app, new_client, user):
    from webapp.security.devices import create_device

    for _ in range(100):
        create_device(user, remember=True, user_agent=None, ip_address=None)
    db.session.commit()
    oldest = devices_of(user)[0]
    login(new_client(), remember=True)
    live = [d for d in devices_of(user) if not d.is_revoked]
    assert len(live) == 100
    db.session.refresh(oldest)
    assert oldest.is_revoked and oldest.revoked_reason == "evicted"


def test_the_device_evicted_is_the_least_recently_used_live_one(app, new_client, user):
    """Not the oldest: the first browser, still in daily use, stays signed in."""
    from webapp.security.devices import create_device

    for _ in range(100):
        create_device(user, remember=True, user_agent=None, ip_address=None)
    first, idle, already_revoked, *rest = devices_of(user)
    now = datetime.now(UTC)
    # Revoked long ago and idle even longer: it does not count toward the 100.
    already_revoked.is_revoked = True
    already_revoked.last_used_at = now - timedelta(days=25)
    db.session.flush()
    rest.append(create_device(user, remember=True, user_agent=None, ip_address=None)[0])
    first.last_used_at = now
    idle.last_used_at = now - timedelta(days=20)
    for device in rest:
        device.last_used_at = now - timedelta(days=1)
    db.session.commit()
    browser = new_client()
    login(browser, remember=True)
    for device in (first, idle, already_revoked):
        db.session.refresh(device)
    assert not first.is_revoked
    assert idle.is_revoked and idle.revoked_reason == "evicted"
    assert already_revoked.revoked_reason is None
    assert sum(not d.is_revoked for d in devices_of(user)) == 100
    assert browser.get("/account").status_code == 200


# Purge ---------------------------------------------------------------------------


def test_purge_devices_deletes_old_expired_and_revoked_rows(app, runner, user):
    from webapp.security.devices import create_device

    now = datetime.now(UTC)
    keep, _ = create_device(user, remember=True, user_agent=None, ip_address=None)
    old_expired, _ = create_device(user, remember=True, user_agent=None, ip_address=None)
    old_expired.expires_at = now - timedelta(days=40)
    old_revoked, _ = create_device(user, remember=False, user_agent=None, ip_address=None)
    old_revoked.is_revoked, old_revoked.revoked_at = True, now - timedelta(days=31)
    recent_revoked, _ = create_device(user, remember=False, user_agent=None, ip_address=None)
    recent_revoked.is_revoked, recent_revoked.revoked_at = True, now - timedelta(days=1)
    db.session.commit()
    kept_ids = {keep.id, recent_revoked.id}

    result = runner.invoke(args=["purge-devices"])
    assert result.exit_code == 0
    assert "Purged 2 devices." in result.output
    assert {d.id for d in devices_of(user)} == kept_ids
    again = runner.invoke(args=["purge-devices"])
    assert "Purged 0 devices." in again.output
    everything = runner.invoke(args=["purge-devices", "--older-than-days", "0"])
    assert "Purged 1 device." in everything.output
