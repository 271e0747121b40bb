"""Hostile input on the two-factor pages: whatever arrives, a page, never a 500 or a sign-in."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD, csrf_token
from tests.test_hostile_input import FUZZ, nasty_text, signed_in
from webapp.extensions import db
from webapp.models import RefreshToken, TotpAuthenticator

NEW_URLS = (
    "/account/security",
    "/account/security/totp",
    "/account/security/totp/disable",
    "/account/security/recovery-codes",
    "/login/verify",
)
codes = st.one_of(
    nasty_text,
    st.text(alphabet="0123456789", min_size=0, max_size=12),
    st.text(alphabet="0123456789abcdefghjkmnpqrstvwxyz- ", min_size=10, max_size=20),
)


def device_count() -> int:
    return db.session.scalar(select(func.count()).select_from(RefreshToken))


@FUZZ
@given(code=codes)
def test_the_code_field_of_the_second_step_never_fails(client, make_user, code):
    if db.session.scalar(select(func.count()).select_from(TotpAuthenticator)) == 0:
        make_user("carol", two_factor=True)
    token = csrf_token(client, "/login")
    step = client.post(
        "/login", data={"csrf_token": token, "identifier": "carol", "password": TEST_PASSWORD}
    )
    assert step.status_code in (302, 429)
    # The password step begins a new session, with a new CSRF token.
    token = csrf_token(client, "/login")
    response = client.post("/login/verify", data={"csrf_token": token, "code": code})
    # 302: the step ended (too many wrong codes) or had not begun (throttled).
    assert response.status_code in (200, 302, 413, 429)
    if response.status_code == 302:
        assert response.headers["Location"] == "/login"
    assert device_count() == 0


@FUZZ
@given(code=codes, others=nasty_text)
def test_the_code_field_of_the_setup_page_never_fails(client, user, code, others):
    signed_in(client)
    token = csrf_token(client, "/account/security/totp")
    response = client.post(
        "/account/security/totp",
        data={"csrf_token": token, "code": code, "sign_out_others": others},
    )
    assert response.status_code in (200, 413)
    assert db.session.scalar(select(func.count()).select_from(TotpAuthenticator)) == 0


@FUZZ
@given(key=nasty_text, value=nasty_text)
def test_new_urls_take_any_query_and_form_field(client, user, key, value):
    signed_in(client)
    token = csrf_token(client, "/account")
    for url in NEW_URLS:
        query = f"?{quote(key)}={quote(value)}"
        assert client.get(url + query).status_code in (200, 302, 405), url
        response = client.post(url + query, data={"csrf_token": token, key: value})
        assert response.status_code in (200, 302, 400, 405, 413), url
    assert client.get("/account").status_code == 200


@FUZZ
@given(raw=st.binary(max_size=400))
def test_raw_bytes_in_the_code_fields(client, user, raw):
    signed_in(client)
    token = csrf_token(client, "/account").encode()
    body = b"csrf_token=" + token + b"&code=" + raw
    for url in ("/account/security/totp", "/login/verify"):
        response = client.post(url, data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code in (200, 302, 400), url
