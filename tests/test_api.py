"""The token API for apps (/api/v1): every row of the contract's table, and its rules.

Each test is what an app (or an attacker holding one piece) sees.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD, current_code, login, post_form
from webapp.extensions import db
from webapp.models import AuditEvent, DeviceKind, RefreshToken, SecurityEvent, User

PROBLEM = "application/problem+json"


def api_token(client, username="alice", password=TEST_PASSWORD, device_name="Ana's phone"):
    return client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password, "device_name": device_name},
    )


def sign_in_app(client, username="alice", password=TEST_PASSWORD, device_name="Ana's phone"):
    """Sign an app in (with the authenticator code when asked); return the tokens."""
    response = api_token(client, username, password, device_name)
    if response.status_code == 401 and response.json["code"] == "mfa_required":
        response = client.post(
            "/api/v1/auth/token/mfa",
            json={"mfa_token": response.json["mfa_token"], "code": current_code(username)},
        )
    assert response.status_code == 200, response.json
    return response.json


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.json
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    return body


# --- auth/token -------------------------------------------------------------------


def test_token_signs_the_app_in_as_a_device(client, user):
    tokens = sign_in_app(client)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 300
    device = db.session.get(RefreshToken, tokens["device_id"])
    assert device.kind == DeviceKind.APP
    assert device.name == "Ana's phone"
    assert device.user_id == user.id
    me = client.get("/api/v1/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json["username"] == "alice"
    assert me.json["two_factor"] is False
    assert set(me.json) == {
        "id",
        "username",
        "email",
        "email_verified",
        "role",
        "created_at",
        "two_factor",
    }


def test_token_takes_an_email_too(client, user):
    assert sign_in_app(client, username="ALICE@example.com")["device_id"]


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password 123"), ("nobody", TEST_PASSWORD), ("", TEST_PASSWORD)],
)
def test_wrong_credentials_get_one_answer(client, user, username, password):
    response = api_token(client, username, password)
    if username == "":
        assert_problem(response, 422)
        return
    body = assert_problem(response, 401, "invalid_credentials")
    assert body["detail"] == "Invalid username/email or password."
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert db.session.scalars(select(RefreshToken)).all() == []


def test_inactive_account_gets_the_same_answer(client, make_user):
    make_user("bob", active=False)
    body = assert_problem(api_token(client, "bob"), 401, "invalid_credentials")
    assert body["detail"] == "Invalid username/email or password."


def test_app_sign_in_is_audited_and_on_the_activity_page(client, user):
    sign_in_app(client, device_name="Work laptop")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login")).one()
    assert event.details["app"] == "Work laptop"
    login(client)
    page = client.get("/account/activity").get_data(as_text=True)
    assert "Signed in with the app “Work laptop”" in page


# --- the device page ---------------------------------------------------------------


def test_device_page_shows_the_app_with_its_name_and_revoke(client, new_client, user):
    app_client = new_client("KeystoneApp/1.0 (Android 15)")
    tokens = sign_in_app(app_client, device_name="Pixel of Ana")
    login(client)
    page = client.get("/account/devices").get_data(as_text=True)
    assert "Pixel of Ana" in page
    assert '<span class="badge badge-app">App</span>' in page
    assert "Revoke Pixel of Ana" in page
    # Revoking it there stops its access token and its refresh token at their next use.
    response = post_form(
        client, f"/account/devices/{tokens['device_id']}/revoke", page="/account/devices"
    )
    assert response.status_code == 302
    me = app_client.get("/api/v1/me", headers=bearer(tokens))
    assert_problem(me, 401, "invalid_token")
    assert me.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    refreshed = app_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_problem(refreshed, 401, "invalid_grant")


def test_me_devices_lists_browsers_and_apps(client, new_client, user):
    login(client)
    app_client = new_client("KeystoneApp/1.0")
    tokens = sign_in_app(app_client, device_name="CLI")
    response = app_client.get("/api/v1/me/devices", headers=bearer(tokens))
    assert response.status_code == 200
    items = response.json["items"]
    assert {item["kind"] for item in items} == {"browser", "app"}
    mine = next(item for item in items if item["current"])
    assert mine["id"] == tokens["device_id"]
    assert mine["name"] == "CLI"
    browser = next(item for item in items if item["kind"] == "browser")
    assert browser["browser"] == "Chrome"
    assert browser["os"] == "Linux"
    assert set(mine) == {
        "id",
        "name",
        "kind",
        "browser",
        "os",
        "ip",
        "location",
        "created_at",
        "last_active_at",
        "expires_at",
        "remembered",
        "current",
    }


def test_delete_a_device(client, new_client, user, make_user):
    login(client)
    browser_device = db.session.scalars(select(RefreshToken)).one()
    tokens = sign_in_app(new_client())
    response = client.get("/account/devices")  # still signed in
    assert response.status_code == 200
    deleted = new_client().delete(f"/api/v1/me/devices/{browser_device.id}", headers=bearer(tokens))
    assert deleted.status_code == 204
    assert client.get("/account/devices").status_code == 302  # signed out


def test_delete_another_users_or_unknown_device_is_404(client, new_client, user, make_user):
    make_user("bob")
    bob_tokens = sign_in_app(new_client(), "bob")
    tokens = sign_in_app(client)
    for device_id in (bob_tokens["device_id"], 999999, 2**40):
        response = client.delete(f"/api/v1/me/devices/{device_id}", headers=bearer(tokens))
        assert_problem(response, 404)
    assert client.get("/api/v1/me", headers=bearer(bob_tokens)).status_code == 200


def test_revoke_others_keeps_only_this_app(client, new_client, user):
    login(client)
    other = sign_in_app(new_client(), device_name="Old tablet")
    tokens = sign_in_app(new_client(), device_name="Phone")
    response = new_client().post("/api/v1/me/devices/revoke-others", headers=bearer(tokens))
    assert response.status_code == 204
    assert client.get("/account/devices").status_code == 302
    assert_problem(new_client().get("/api/v1/me", headers=bearer(other)), 401, "invalid_token")
    assert new_client().get("/api/v1/me", headers=bearer(tokens)).status_code == 200


def test_logout_revokes_this_device(client, user):
    tokens = sign_in_app(client)
    assert client.post("/api/v1/auth/logout", headers=bearer(tokens)).status_code == 204
    assert_problem(client.get("/api/v1/me", headers=bearer(tokens)), 401, "invalid_token")
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(response, 401, "invalid_grant")


# --- refresh, rotation and theft -------------------------------------------------------


def test_refresh_rotates_and_the_new_tokens_work(client, user):
    tokens = sign_in_app(client)
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    fresh = response.json
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["device_id"] == tokens["device_id"]
    assert client.get("/api/v1/me", headers=bearer(fresh)).status_code == 200


def test_refresh_within_the_grace_period_hands_back_the_current_token(client, user):
    tokens = sign_in_app(client)
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    lost = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert lost.status_code == 200
    assert lost.json["refresh_token"] == first.json["refresh_token"]
    assert not db.session.get(RefreshToken, tokens["device_id"]).is_revoked


@pytest.mark.parametrize("raw", ["", "x", "a" * 22 + "." + "b" * 43, "a" * 199])
def test_unknown_refresh_tokens_are_invalid_grant(client, user, raw):
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": raw})
    assert response.status_code in (401, 422)
    assert response.mimetype == PROBLEM


def test_a_browser_remember_cookie_is_no_refresh_token(client, user, app):
    login(client, remember=True)
    raw = client.get_cookie(app.config["REMEMBER_DEVICE_COOKIE_NAME"]).value
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": raw})
    assert_problem(response, 401, "invalid_grant")


# --- password ---------------------------------------------------------------------------


def test_password_change_signs_out_every_other_device(client, new_client, user):
    login(client)
    other = sign_in_app(new_client(), device_name="Tablet")
    tokens = sign_in_app(new_client(), device_name="Phone")
    response = new_client().post(
        "/api/v1/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": "a brand new passphrase 42"},
        headers=bearer(tokens),
    )
    assert response.status_code == 204
    assert client.get("/account/devices").status_code == 302
    assert_problem(new_client().get("/api/v1/me", headers=bearer(other)), 401, "invalid_token")
    assert new_client().get("/api/v1/me", headers=bearer(tokens)).status_code == 200
    assert sign_in_app(new_client(), password="a brand new passphrase 42")


def test_password_change_with_a_wrong_current_password_is_403(client, user):
    tokens = sign_in_app(client)
    response = client.post(
        "/api/v1/me/password",
        json={"current_password": "not it at all", "new_password": "a brand new passphrase 42"},
        headers=bearer(tokens),
    )
    assert_problem(response, 403, "wrong_password")
    assert sign_in_app(client)  # the old password still works


def test_password_change_checks_the_policy(client, user):
    tokens = sign_in_app(client)
    response = client.post(
        "/api/v1/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": "short"},
        headers=bearer(tokens),
    )
    body = assert_problem(response, 422)
    assert "new_password" in body["errors"]


# --- activity ---------------------------------------------------------------------------


def test_activity_newest_first_with_a_cursor(client, user, app):
    tokens = sign_in_app(client)
    for _ in range(55):
        db.session.add(
            SecurityEvent(user_id=user.id, event="login", details={"method": "password"})
        )
    db.session.commit()
    first = client.get("/api/v1/me/activity", headers=bearer(tokens))
    assert first.status_code == 200
    assert len(first.json["items"]) == 50
    assert first.json["next_cursor"]
    second = client.get(
        f"/api/v1/me/activity?cursor={first.json['next_cursor']}", headers=bearer(tokens)
    )
    assert len(second.json["items"]) == 6  # 55 + the app's own sign-in
    assert second.json["next_cursor"] is None
    assert any(
        "the app" in item["description"] for item in second.json["items"] + first.json["items"]
    )


# --- signup -----------------------------------------------------------------------------


def test_signup_creates_the_account_and_signs_the_app_in(client, app):
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "username": "Carol",
            "email": "Carol@Example.com",
            "password": TEST_PASSWORD,
            "device_name": "Carol's phone",
        },
    )
    assert response.status_code == 201, response.json
    assert response.json["user"]["username"] == "carol"
    assert response.json["user"]["email"] == "carol@example.com"
    assert client.get("/api/v1/me", headers=bearer(response.json)).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "a b"), ("email", "not-an-email"), ("password", "password1234")],
)
def test_signup_field_problems_are_422(client, field, value):
    body = {
        "username": "dave",
        "email": "dave@example.com",
        "password": TEST_PASSWORD,
        "device_name": "d",
    }
    body[field] = value
    response = client.post("/api/v1/auth/signup", json=body)
    problem = assert_problem(response, 422)
    assert field in problem["errors"]
    assert db.session.scalars(select(User)).all() == []


def test_signup_taken_address_is_422_in_optional_mode(client, user):
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "username": "other",
            "email": "ALICE@example.com",
            "password": TEST_PASSWORD,
            "device_name": "d",
        },
    )
    assert "email" in assert_problem(response, 422)["errors"]


def test_signup_mass_assignment_is_refused(client):
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "username": "eve",
            "email": "eve@example.com",
            "password": TEST_PASSWORD,
            "device_name": "d",
            "role": "admin",
        },
    )
    assert "role" in assert_problem(response, 422)["errors"]
    assert db.session.scalars(select(User)).all() == []


# --- the rules for every /api/ response ----------------------------------------------------


def test_a_browser_session_does_not_authenticate_the_api(client, user, app):
    login(client, remember=True)
    assert client.get("/account").status_code == 200
    response = client.get("/api/v1/me")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Set-Cookie" not in response.headers


def test_the_api_sets_no_cookies(client, user):
    tokens = sign_in_app(client)
    for response in (
        client.get("/api/v1/me", headers=bearer(tokens)),
        client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
        api_token(client),
        client.get("/api/v1/nowhere"),
    ):
        assert "Set-Cookie" not in response.headers


def test_no_csrf_token_needed(app, user):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    assert sign_in_app(client)


def test_errors_are_problem_json(client, user):
    assert_problem(client.get("/api/v1/nowhere"), 404, "not_found")
    wrong_method = client.get("/api/v1/auth/token")
    assert_problem(wrong_method, 405, "method_not_allowed")
    assert "POST" in wrong_method.headers["Allow"]
    assert_problem(client.post("/api/v1/auth/token", data="username=a"), 415)
    assert_problem(
        client.post("/api/v1/auth/token", data="{not json", content_type="application/json"), 400
    )
    big = '{"username": "' + "a" * 70000 + '"}'
    assert_problem(
        client.post("/api/v1/auth/token", data=big, content_type="application/json"), 413
    )
    missing = assert_problem(client.post("/api/v1/auth/token", json={"username": "a"}), 422)
    assert set(missing["errors"]) == {"password", "device_name"}
    wrong_type = assert_problem(
        client.post(
            "/api/v1/auth/token", json={"username": 1, "password": [], "device_name": None}
        ),
        422,
    )
    assert set(wrong_type["errors"]) == {"username", "password", "device_name"}
    assert_problem(client.post("/api/v1/auth/token", json=["a list"]), 422)


def test_500_is_problem_json(app, client, monkeypatch, user):
    from webapp.domain import apps

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(apps, "sign_in_app", broken)
    response = api_token(client)
    body = assert_problem(response, 500, "internal_error")
    assert "boom" not in response.get_data(as_text=True)
    assert "Traceback" not in body["detail"]


def test_cors_only_for_listed_origins(app_config):
    from tests.conftest import serve

    app_config["API_CORS_ORIGINS"] = ["https://app.example.org"]
    for app in serve(app_config):
        client = app.test_client()
        preflight = client.options(
            "/api/v1/me",
            headers={
                "Origin": "https://app.example.org",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.org"
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        foreign = client.get("/api/v1/me", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in foreign.headers
        page = client.get("/login", headers={"Origin": "https://app.example.org"})
        assert "Access-Control-Allow-Origin" not in page.headers


def test_no_cors_headers_without_configured_origins(client):
    response = client.get("/api/v1/me", headers={"Origin": "https://app.example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert spec.json["openapi"] == "3.1.0"
    paths = spec.json["paths"]
    for path in (
        "/api/v1/auth/signup",
        "/api/v1/auth/token",
        "/api/v1/auth/token/mfa",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/me/devices",
        "/api/v1/me/devices/{device_id}",
        "/api/v1/me/devices/revoke-others",
        "/api/v1/me/password",
        "/api/v1/me/activity",
        "/api/v1/admin/users",
        "/api/v1/admin/users/{user_id}",
        "/api/v1/admin/users/{user_id}/revoke-devices",
        "/api/v1/admin/roles",
        "/api/v1/admin/roles/{role_id}",
        "/api/v1/admin/audit",
    ):
        assert path in paths, path
    token_body = paths["/api/v1/auth/token"]["post"]["requestBody"]["content"]["application/json"]
    assert token_body["schema"]["$ref"].endswith("/TokenRequest")
    errors = spec.json["components"]["responses"]
    for name in ("DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"):
        assert list(errors[name]["content"]) == ["application/problem+json"], name
    assert "default" in paths["/api/v1/me"]["get"]["responses"]
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script>" not in html  # no inline script: the CSP would block it
    assert "cdn" not in html.lower()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()
    assert client.get("/api/docs/assets/../../etc/passwd").status_code == 404


def test_a_bearer_token_does_not_sign_a_page_in(client, user):
    tokens = sign_in_app(client)
    response = client.get("/account", headers=bearer(tokens))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- EMAIL_VERIFICATION=mandatory -------------------------------------------------------


@pytest.fixture
def mandatory(app):
    app.config["EMAIL_VERIFICATION"] = "mandatory"
    return app


def signup_body(username: str, email: str) -> dict:
    return {"username": username, "email": email, "password": TEST_PASSWORD, "device_name": "d"}


def test_mandatory_signup_is_202_alike_for_a_new_and_a_taken_address(client, mandatory, user):
    new = client.post("/api/v1/auth/signup", json=signup_body("newbie", "newbie@example.com"))
    taken = client.post("/api/v1/auth/signup", json=signup_body("other", "alice@example.com"))
    assert new.status_code == taken.status_code == 202
    assert new.json == taken.json == {"status": "confirmation_sent"}
    assert "access_token" not in new.json
    created = db.session.scalars(select(User).where(User.username == "newbie")).one()
    assert created.email_verified_at is None
    assert db.session.scalars(select(User).where(User.username == "other")).first() is None
    assert db.session.scalars(select(RefreshToken)).all() == []


def test_mandatory_signup_with_a_taken_username_is_a_field_problem(client, mandatory, user):
    response = client.post("/api/v1/auth/signup", json=signup_body("alice", "x@example.com"))
    assert "username" in assert_problem(response, 422)["errors"]


def test_mandatory_unconfirmed_address_gets_403_email_unconfirmed(client, mandatory, user):
    response = api_token(client)
    assert_problem(response, 403, "email_unconfirmed")
    assert db.session.scalars(select(RefreshToken)).all() == []
    # A wrong password still gets the one generic answer, not the address's state.
    assert_problem(api_token(client, password="wrong password 99"), 401, "invalid_credentials")
