"""Throttling: per-IP limits (Flask-Limiter) and the per-account backoff."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine

from tests.conftest import CSRF_RE, TEST_PASSWORD, IsolatedClient, browser, login, post_form
from webapp import create_app
from webapp.extensions import db
from webapp.security import passwords

REDIS_URI = "redis://127.0.0.1:6379/5"
LOGIN_FAILED = "Invalid username/email or password."


@pytest.fixture
def fresh_redis():
    """Redis database 5, emptied first (this suite's own)."""
    connection = redis.Redis.from_url(REDIS_URI)
    connection.flushdb()
    yield REDIS_URI
    connection.flushdb()
    connection.close()


def limited(app_config: dict, **overrides) -> dict:
    return {**app_config, "RATELIMIT_ENABLED": True, **overrides}


def wrong_login(client, identifier: str = "alice"):
    return login(client, identifier, "not-the-password")


def login_via(client, identifier: str, forwarded_for: str):
    """Log in with an X-Forwarded-For header, as a client or a proxy sets it."""
    return post_form(
        client,
        "/login",
        {"identifier": identifier, "password": "not-the-password"},
        headers={"X-Forwarded-For": forwarded_for},
    )


@contextmanager
def another_process(config: dict) -> Iterator[object]:
    """Run a second app on the same database, as another process would."""
    other = create_app(config)
    other.test_client_class = IsolatedClient
    with other.app_context():
        yield other
        db.session.remove()
        db.engine.dispose()


def without_csrf(page: str) -> str:
    return CSRF_RE.sub('name="csrf_token" value=""', page)


# Per-IP limits ---------------------------------------------------------------


@pytest.fixture
def app_config(app_config, request):
    """The suite's settings, with a test's own on top (see `with_limits`)."""
    return {**app_config, **getattr(request, "param", {})}


def with_limits(**overrides):
    """Run a test with the per-IP limits on, and these settings."""
    settings = {"RATELIMIT_ENABLED": True, **overrides}
    return pytest.mark.parametrize("app_config", [settings], indirect=True, ids=["limits"])


@with_limits(RATELIMIT_LOGIN="3 per minute")
def test_login_posts_past_the_limit_get_429_and_the_page(client, user):
    for index in range(3):
        assert wrong_login(client, f"someone{index}").status_code == 200
    response = wrong_login(client, "someone-else")
    assert response.status_code == 429
    assert "Too many requests" in response.get_data(as_text=True)
    # Reading the form is not limited, and the right password waits too.
    assert client.get("/login").status_code == 200
    assert login(client).status_code == 429


@with_limits(RATELIMIT_SIGNUP="2 per minute")
def test_signup_posts_are_limited(client):
    for index in range(2):
        post_form(client, "/signup", {"username": f"u{index}x", "email": "bad"})
    response = post_form(client, "/signup", {"username": "late", "email": "bad"})
    assert response.status_code == 429


@with_limits(RATELIMIT_RESET="2 per minute")
def test_reset_requests_are_limited(client):
    for _ in range(2):
        assert post_form(client, "/reset-password", {"email": "a@example.com"}).status_code == 200
    response = post_form(client, "/reset-password", {"email": "a@example.com"})
    assert response.status_code == 429


@with_limits(RATELIMIT_LOGIN="3 per minute")
def test_limit_window_passes(client, user):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for index in range(3):
            wrong_login(client, f"someone{index}")
        assert wrong_login(client, "x1").status_code == 429
        clock.shift(timedelta(seconds=61))
        assert login(client).status_code == 302


@with_limits(RATELIMIT_LOGIN="3 per minute")
def test_forged_forwarded_for_does_not_escape_the_limit(client, user):
    statuses = [login_via(client, f"guess{i}", f"198.51.100.{i}").status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


@with_limits(RATELIMIT_LOGIN="3 per minute", TRUSTED_PROXIES=1)
def test_behind_one_proxy_only_the_address_it_adds_counts(client, new_client, user):
    # The proxy appends the real client address; whatever the client put
    # before it is ignored.
    statuses = [
        login_via(client, "guess", f"10.0.0.{i}, 203.0.113.7").status_code for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    # Another real client behind the same proxy has its own count.
    assert login_via(new_client(), "guess", "10.0.0.1, 203.0.113.8").status_code == 200


def test_limits_are_off_with_ratelimit_enabled_0(client, user):
    # The fixtures run with RATELIMIT_ENABLED False: many posts, no 429 from
    # the per-IP limit (distinct names, so the backoff does not step in).
    for index in range(15):
        assert wrong_login(client, f"someone{index}").status_code == 200


def test_memory_counters_belong_to_one_process(app_config, user):
    """memory:// keeps counts in the process: a new process starts from zero."""
    config = {**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN": "2 per minute"}
    with another_process(config) as first:
        client = browser(first)
        for index in range(2):
            assert wrong_login(client, f"someone{index}").status_code == 200
        assert wrong_login(client, "x").status_code == 429
    with another_process(config) as second:
        assert wrong_login(browser(second), "y").status_code == 200


def test_redis_counters_are_shared_between_processes(app_config, user, fresh_redis):
    """redis:// keeps counts outside the process: the next process continues them."""
    config = {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_LOGIN": "2 per minute",
        "RATELIMIT_STORAGE_URI": fresh_redis,
    }
    with another_process(config) as first:
        client = browser(first)
        for index in range(2):
            assert wrong_login(client, f"someone{index}").status_code == 200
    with another_process(config) as second:
        assert wrong_login(browser(second), "y").status_code == 429
    assert redis.Redis.from_url(fresh_redis).keys("*keystone*")


# Per-account backoff ----------------------------------------------------------


def test_five_failures_make_the_account_wait_even_for_the_right_password(client, user):
    with time_machine.travel(datetime(2026, 11, 27, 14, 0, tzinfo=UTC), tick=False) as clock:
        for _ in range(5):
            response = wrong_login(client)
            assert response.status_code == 200
            assert LOGIN_FAILED in response.get_data(as_text=True)
        waiting = login(client)
        assert waiting.status_code == 429
        page = waiting.get_data(as_text=True)
        assert "Too many failed attempts" in page
        assert "in 1 minute (after 14:01 UTC)" in page
        assert waiting.headers["Retry-After"] == "60"
        assert client.get("/account").status_code == 302

        clock.shift(timedelta(seconds=61))
        assert login(client).status_code == 302


def test_success_resets_the_count(client, new_client, user):
    with time_machine.travel(datetime.now(UTC), tick=False):
        for _ in range(4):
            wrong_login(client)
        assert login(new_client()).status_code == 302
        for _ in range(4):
            assert wrong_login(client).status_code == 200
        assert login(new_client()).status_code == 302


def test_wait_doubles_and_stops_at_fifteen_minutes(client, user):
    with time_machine.travel(datetime(2026, 11, 27, 14, 0, tzinfo=UTC), tick=False) as clock:
        for _ in range(5):
            wrong_login(client)
        waits = []
        for _ in range(6):
            # Step minute by minute until an attempt is let through again.
            waited = 0
            while wrong_login(client).status_code == 429:
                clock.shift(timedelta(minutes=1))
                waited += 1
            waits.append(waited)
        # The first wait was already running; then each failure doubles it.
        assert waits[1:] == [2, 4, 8, 15, 15]


def test_unknown_names_behave_exactly_like_known_ones(client, new_client, user):
    def strip(page: str) -> str:
        return re.sub(r"\d\d:\d\d UTC", "", without_csrf(page))

    with time_machine.travel(datetime.now(UTC), tick=False):
        pages = {}
        for name in ("alice", "nobody-here"):
            browser = new_client()
            for _ in range(5):
                assert wrong_login(browser, name).status_code == 200
            waiting = wrong_login(browser, name)
            assert waiting.status_code == 429
            pages[name] = strip(waiting.get_data(as_text=True)).replace(name, "NAME")
        assert pages["alice"] == pages["nobody-here"]


def test_backoff_is_keyed_by_the_normalized_identifier(client, user):
    with time_machine.travel(datetime.now(UTC), tick=False):
        for typed in ("alice", "ALICE", " Alice ", "ａｌｉｃｅ", "alice"):
            wrong_login(client, typed)
        assert login(client, "Alice").status_code == 429


def test_backoff_stays_on_when_per_ip_limits_are_off(app, client, user):
    assert app.config["RATELIMIT_ENABLED"] is False
    for _ in range(5):
        wrong_login(client)
    assert login(client).status_code == 429


def test_backoff_shared_through_redis(app_config, user, fresh_redis):
    config = {**app_config, "RATELIMIT_STORAGE_URI": fresh_redis}
    with another_process(config) as first:
        for _ in range(5):
            assert wrong_login(browser(first)).status_code == 200
    with another_process(config) as second:
        assert login(browser(second)).status_code == 429
    # The storage holds a keyed hash of the name, never the name itself.
    keys = b" ".join(redis.Redis.from_url(fresh_redis).keys("*"))
    assert b"backoff" in keys and b"alice" not in keys


def test_backoff_fails_open_when_its_storage_is_down(app_config, user, caplog):
    with another_process({**app_config, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"}) as down:
        assert login(browser(down)).status_code == 302
    assert any("backoff storage unavailable" in r.getMessage() for r in caplog.records)


def test_failed_password_confirmations_count_too(client, new_client, user):
    """A non-fresh session cannot be used to guess the password on the confirm page."""
    login(client, remember=True)
    client.delete_cookie("session")
    assert "Confirm your password" in client.get("/account/password").get_data(as_text=True)
    for _ in range(5):
        response = post_form(
            client,
            "/account/password",
            {"reauth_password": "wrong-guess"},
            page="/account/password",
        )
        assert response.status_code == 200
    refused = post_form(
        client, "/account/password", {"reauth_password": TEST_PASSWORD}, page="/account/password"
    )
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.get_data(as_text=True)
    # The same account's login waits as well.
    assert login(new_client()).status_code == 429


# The login check itself ------------------------------------------------------


@pytest.fixture
def bcrypt_checks(monkeypatch):
    calls = []
    real = passwords.bcrypt.checkpw

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(passwords.bcrypt, "checkpw", counting)
    return calls


@pytest.mark.parametrize(
    ("identifier", "password"),
    [
        ("nobody-here", "whatever-password"),
        ("alice", "wrong-password"),
        ("alice", TEST_PASSWORD),
        ("alice", "x" * 80),
    ],
)
def test_every_login_costs_exactly_one_bcrypt_check(
    client, user, bcrypt_checks, identifier, password
):
    login(client, identifier, password)
    assert len(bcrypt_checks) == 1


def test_a_throttled_login_costs_no_bcrypt_check(client, user, bcrypt_checks):
    for _ in range(5):
        wrong_login(client)
    bcrypt_checks.clear()
    assert login(client).status_code == 429
    assert bcrypt_checks == []


def test_one_message_for_unknown_user_wrong_password_and_inactive(client, new_client, make_user):
    make_user("alice", "alice@example.com")
    make_user("bob", "bob@example.com", active=False)
    pages = []
    for name, password in (("nobody", "x-password"), ("alice", "wrong"), ("bob", TEST_PASSWORD)):
        response = login(new_client(), name, password)
        assert response.status_code == 200
        pages.append(without_csrf(response.get_data(as_text=True)).replace(name, "NAME"))
    assert LOGIN_FAILED in pages[0]
    assert pages[0] == pages[1] == pages[2]


def test_login_rehashes_when_the_cost_rises(app, client, user):
    assert user.password_hash.startswith("$2b$04$")
    app.config["BCRYPT_ROUNDS"] = 5
    assert login(client).status_code == 302
    db.session.refresh(user)
    assert user.password_hash.startswith("$2b$05$")
    assert passwords.check_password(TEST_PASSWORD, user.password_hash)
