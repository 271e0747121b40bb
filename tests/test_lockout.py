"""The throttles can be neither dodged nor turned on the owner, and smaller holes
(issue 11, items 3, 4 and 6). Each test is the attack; it fails without the defence.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta

import bcrypt
import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD, csrf_token, login, post_form
from webapp.extensions import db
from webapp.models import AuditEvent, Role, User

STRANGER = "203.0.113.9"
OWNER_HOME = "198.51.100.7"


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


@pytest.fixture
def carol(make_user):
    return make_user("carol", "carol@example.com")


def from_address(client, address: str):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def wrong(client, identifier: str):
    return login(client, identifier, "not-the-password")


def throttled(response) -> bool:
    return response.status_code == 429


# 3. The backoff counts accounts, not spellings -----------------------------------

# What IDNA and Unicode normalisation fold: variation selectors, the combining
# grapheme joiner, Mongolian free variation selectors, the ideographic full stop.
INVISIBLES = ["\ufe00", "\u034f", "\u180b", "\u180c", "\u180d"]


@st.composite
def spellings_of_carol(draw) -> str:
    """Return a spelling of carol's username or email that the lookup still finds."""
    if draw(st.booleans()):
        name = "".join(c.upper() if draw(st.booleans()) else c for c in "carol")
        return (
            name if draw(st.booleans()) else name.translate({ord(c): ord(c) + 0xFEE0 for c in name})
        )
    domain = list("example")
    for _ in range(draw(st.integers(0, 3))):
        domain.insert(draw(st.integers(1, len(domain) - 1)), draw(st.sampled_from(INVISIBLES)))
    dot = draw(st.sampled_from([".", "\u3002"]))
    local = "".join(c.upper() if draw(st.booleans()) else c for c in "carol")
    return f"{local}@{''.join(domain)}{dot}com"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spelling=spellings_of_carol())
def test_a_throttled_account_stays_throttled_whatever_the_spelling(
    app, new_client, carol, spelling
):
    from webapp.domain.users import find_user

    with app.test_request_context():
        assert find_user(spelling).id == carol.id  # the spelling reaches the account
    guesser = new_client()
    for _ in range(app.config["BACKOFF_THRESHOLD"]):
        wrong(guesser, "carol@example.com")  # no-op once throttled (earlier examples)
    assert throttled(login(guesser, spelling, TEST_PASSWORD))


def test_username_and_email_failures_count_against_one_account(app, client, carol):
    for _ in range(3):
        assert not throttled(wrong(client, "carol"))
    for _ in range(2):
        assert not throttled(wrong(client, "carol@example.com"))
    assert throttled(login(client, "CAROL", TEST_PASSWORD))


# 4. A stranger cannot lock the owner out ------------------------------------------


def test_a_strangers_failures_do_not_stop_the_owners_login_from_elsewhere(app, new_client, carol):
    owner = from_address(new_client(), OWNER_HOME)
    assert login(owner, "carol").status_code == 302  # the owner's usual browser
    post_form(owner, "/logout", page="/account")
    stranger = from_address(new_client(), STRANGER)
    for identifier in ["carol", "carol@example.com"] * 4:
        wrong(stranger, identifier)
    assert throttled(login(stranger, "carol", TEST_PASSWORD))  # the stranger is slowed
    response = login(owner, "carol")
    assert response.status_code == 302 and response.headers["Location"] == "/account"


def test_guesses_from_many_addresses_still_meet_an_account_wide_ceiling(app, new_client, carol):
    ceiling = app.config["BACKOFF_ACCOUNT_THRESHOLD"]
    for n in range(ceiling):
        wrong(from_address(new_client(), f"203.0.113.{n % 250 + 1}"), "carol")
    assert throttled(login(from_address(new_client(), "192.0.2.1"), "carol", TEST_PASSWORD))


def test_a_strangers_reset_requests_cannot_keep_the_owner_from_a_reset_mail(
    app, new_client, carol, smtp
):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        stranger = from_address(new_client(), STRANGER)
        for _ in range(3):
            post_form(stranger, "/reset-password", {"email": "carol@example.com"})
        assert len(smtp.to("carol@example.com")) == 1  # one mail per cooldown
        clock.shift(timedelta(minutes=2, seconds=1))
        owner = from_address(new_client(), OWNER_HOME)
        post_form(owner, "/reset-password", {"email": "carol@example.com"})
        assert len(smtp.to("carol@example.com")) == 2


# 6. Smaller holes ---------------------------------------------------------------


def test_the_sole_admin_cannot_delete_their_own_account(app, client, make_user):
    make_user("boss", "boss@example.com", role="admin")
    login(client, "boss")
    response = post_form(client, "/account/delete", {"password": TEST_PASSWORD})
    assert "last active admin" in response.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.username == "boss")) is not None


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, new_client, make_user):
    first = make_user("ann", "ann@example.com", role="admin")
    second = make_user("ben", "ben@example.com", role="admin")
    user_role = db.session.scalar(select(Role.id).where(Role.name == "user"))
    clients = {}
    for name in ("ann", "ben"):
        clients[name] = new_client()
        login(clients[name], name)
    urls = {"ann": f"/admin/users/{second.id}", "ben": f"/admin/users/{first.id}"}
    tokens = {name: csrf_token(clients[name], urls[name]) for name in clients}
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def demote(name: str) -> None:
        barrier.wait()
        response = clients[name].post(
            urls[name], data={"csrf_token": tokens[name], "action": "role", "role": user_role}
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=demote, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status < 500 or status == 503 for status in statuses), statuses
    db.session.expire_all()
    admins = db.session.scalars(
        select(User.username).join(User.role).where(Role.name == "admin", User.is_active)
    ).all()
    assert len(admins) == 1, statuses


@pytest.fixture
def bcrypt_work(monkeypatch):
    """Record the work of every bcrypt check: 2**cost of the hash it checks against."""
    work: list[int] = []
    real = bcrypt.checkpw

    def counting(password, hashed):
        work.append(2 ** int(hashed.split(b"$")[2]))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return work


def test_an_old_cost_hash_answers_a_wrong_password_as_slowly_as_an_unknown_name(
    app, client, new_client, carol, bcrypt_work
):
    app.config["BCRYPT_ROUNDS"] = 7  # raised after carol's hash was made at cost 4
    wrong(client, "carol")
    known = sum(bcrypt_work)
    bcrypt_work.clear()
    wrong(new_client(), "nobody-here")
    assert known == sum(bcrypt_work) == 2**7


def test_repeated_admin_refusals_do_not_flood_the_audit_log(app, client, carol, caplog):
    login(client, "carol")
    for _ in range(30):
        assert client.get("/admin/").status_code == 403
    for n in range(30):
        client.get(f"/admin/users?page={n}")
    refusals = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "admin_access_denied")
    ).all()
    assert 1 < len(refusals) <= 10
    logged = [r for r in caplog.records if "admin access denied" in r.getMessage()]
    assert len(logged) == 60  # every refusal is still logged


def production_jwt_key() -> str:
    """An ES256 signing key in PEM, which production requires (the token API's)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_production_with_memory_storage_warns_at_start(monkeypatch, db_url):
    from webapp import create_app

    monkeypatch.setenv("WEBAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-for-this-test-only")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("JWT_PRIVATE_KEY", production_jwt_key())
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("webapp.throttle")
    logger.addHandler(handler)  # production logs do not propagate to pytest's capture
    try:
        create_app()
    finally:
        logger.removeHandler(handler)
    warning = [r.getMessage() for r in records if "memory://" in r.getMessage()]
    assert warning and "step 5" in warning[0]


def test_log_values_are_quoted_so_they_cannot_add_fields(app, client, caplog):
    caplog.set_level("INFO", logger="webapp")
    login(client, "x ip=10.0.0.1 actor=admin", "wrong-password")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("login_failed")]
    fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*")', line))
    assert set(fields) == {"actor", "target", "ip"}
    assert json.loads(fields["target"]) == "x ip=10.0.0.1 actor=admin"
    assert json.loads(fields["ip"]) == "127.0.0.1"
