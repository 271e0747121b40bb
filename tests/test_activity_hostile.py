"""Hostile input on the activity, security-setting and "This wasn't me" URLs: never a 500."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD, csrf_token, login
from webapp.extensions import db
from webapp.models import RefreshToken, User

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
nasty_text = st.one_of(
    st.text(max_size=300),
    st.just("x" * 5_000),
    st.just("<script>alert(1)</script>"),
    st.just("\x00\x01\x02"),
    st.just("'; DROP TABLE security_events; --"),
    st.just("9" * 40 + "_" + "9" * 40),
    st.just("1700000000000000_1"),
    st.just("-1_-1"),
    st.just("99999999999999999999_1"),
)


def signed_in(client) -> None:
    if client.get("/account").status_code != 200:
        login(client)


@FUZZ
@given(after=nasty_text, before=nasty_text)
def test_activity_cursors(client, user, after, before):
    signed_in(client)
    for query in ({"after": after}, {"before": before}, {"after": after, "before": before}):
        response = client.get("/account/activity", query_string=query)
        assert response.status_code == 200
        assert "<script>alert(1)</script>" not in response.get_data(as_text=True)


@FUZZ
@given(segment=st.text(min_size=1, max_size=80))
def test_not_me_tokens(client, user, segment):
    path = f"/not-me/{quote(segment, safe='')}"
    response = client.get(path)
    # 308: Werkzeug merges the slashes of an encoded "/" in the segment.
    assert response.status_code in (308, 400, 404)
    token = csrf_token(client, "/login")
    assert client.post(path, data={"csrf_token": token}).status_code in (308, 400, 404)
    assert (
        db.session.scalar(
            select(func.count()).select_from(RefreshToken).where(RefreshToken.is_revoked.is_(True))
        )
        == 0
    )


@FUZZ
@given(value=nasty_text, extra=nasty_text)
def test_alert_setting_values(client, user, value, extra):
    signed_in(client)
    token = csrf_token(client, "/account/security")
    response = client.post(
        "/account/security/new-browser-alerts",
        data={"csrf_token": token, "new_browser_alerts": value, "submit": extra},
    )
    assert response.status_code in (302, 400, 413)
    assert client.get("/account/security").status_code == 200


@pytest.fixture
def proxied_app(app_config):
    """The app behind one trusted proxy: X-Forwarded-For names the client address."""
    from tests.conftest import serve

    yield from serve({**app_config, "TRUSTED_PROXIES": 1})


@FUZZ
@given(user_agent=nasty_text, forwarded=nasty_text)
def test_any_user_agent_and_forwarded_address_is_recorded_safely(
    proxied_app, user_agent, forwarded
):
    from tests.conftest import browser

    if db.session.scalar(select(func.count()).select_from(User)) == 0:
        make_alice()
    client = browser(proxied_app, user_agent.replace("\x00", ""))
    client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded.encode("utf-8", "replace").decode(
        "latin-1"
    )
    assert login(client).status_code == 302
    page = client.get("/account/activity")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.get_data(as_text=True)
    devices = client.get("/account/devices")
    assert devices.status_code == 200


def make_alice() -> None:
    from webapp.domain.users import create_user

    create_user("alice", "alice@example.com", TEST_PASSWORD)
    db.session.commit()
