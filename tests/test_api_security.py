"""The token API under attack: forged tokens, the second factor, backoff, admin rights, keys."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD, TOTP_SECRETS, login, post_form, serve
from tests.test_api import api_token, assert_problem, bearer, sign_in_app
from webapp.extensions import db
from webapp.models import AuditEvent, RefreshToken, Role, User
from webapp.security import access_tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _me(client, token: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def assert_refused(response) -> None:
    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# --- forged and altered access tokens -----------------------------------------------


def test_a_genuine_token_passes_and_is_es256_with_every_claim(app, client, user):
    tokens = sign_in_app(client)
    header, claims, _ = _parts(tokens["access_token"])
    assert header["alg"] == "ES256" and header["kid"] == access_tokens.jwks()["keys"][0]["kid"]
    assert set(claims) == {"iss", "sub", "sid", "iat", "exp", "jti", "amr"}
    assert claims["iss"] == app.config["PUBLIC_URL"]
    assert claims["sub"] == str(user.id) and claims["sid"] == str(tokens["device_id"])
    assert claims["exp"] - claims["iat"] == 300 and claims["amr"] == ["pwd"]
    assert _me(client, tokens["access_token"]).status_code == 200


def test_alg_none_is_refused(client, user):
    tokens = sign_in_app(client)
    header, claims, _ = _parts(tokens["access_token"])
    forged = ".".join(
        [
            _b64(json.dumps({**header, "alg": "none"}).encode()),
            _b64(json.dumps(claims).encode()),
            "",
        ]
    )
    assert_refused(_me(client, forged))


def test_hs256_signed_with_the_public_key_is_refused(client, user):
    tokens = sign_in_app(client)
    header, claims, _ = _parts(tokens["access_token"])
    public_pem = (
        access_tokens._keys()
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = ".".join(
        [
            _b64(json.dumps({**header, "alg": "HS256"}).encode()),
            _b64(json.dumps(claims).encode()),
        ]
    )
    import hashlib
    import hmac

    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_refused(_me(client, f"{signing_input}.{_b64(signature)}"))


def _signed(claims: dict, key=None, kid: str | None = None) -> str:
    keys = access_tokens._keys()
    return jwt.encode(
        claims, key or keys.private_key, algorithm="ES256", headers={"kid": kid or keys.kid}
    )


def test_an_expired_token_is_refused(client, user):
    tokens = sign_in_app(client)
    _, claims, _ = _parts(tokens["access_token"])
    now = int(time.time())
    assert _me(client, _signed({**claims, "iat": now - 60, "exp": now + 60})).status_code == 200
    assert_refused(_me(client, _signed({**claims, "iat": now - 600, "exp": now - 1})))


def test_a_token_verified_before_is_refused_once_it_expires(client, user):
    """Verified tokens are remembered per process: their expiry is still checked each time."""
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        tokens = sign_in_app(client)
        assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 200
        clock.shift(timedelta(seconds=299))
        assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 200
        clock.shift(timedelta(seconds=2))
        assert_refused(client.get("/api/v1/me", headers=bearer(tokens)))


def test_a_wrong_issuer_is_refused(client, user):
    tokens = sign_in_app(client)
    _, claims, _ = _parts(tokens["access_token"])
    assert_refused(_me(client, _signed({**claims, "iss": "https://evil.example"})))


def test_an_unknown_kid_or_a_key_not_ours_is_refused(client, user):
    tokens = sign_in_app(client)
    _, claims, _ = _parts(tokens["access_token"])
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert_refused(_me(client, _signed(claims, kid="not-a-key-of-ours")))
    assert_refused(_me(client, _signed(claims, key=stranger)))  # our kid, their signature


def test_a_tampered_payload_is_refused(client, user, make_user):
    bob = make_user("bob")
    tokens = sign_in_app(client)
    header, claims, signature = _parts(tokens["access_token"])
    tampered = {**claims, "sub": str(bob.id)}
    forged = ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(tampered).encode()), signature]
    )
    assert_refused(_me(client, forged))


def test_a_missing_claim_is_refused(client, user):
    tokens = sign_in_app(client)
    _, claims, _ = _parts(tokens["access_token"])
    del claims["sid"]
    assert_refused(_me(client, _signed(claims)))


def test_a_browser_device_id_in_sid_is_refused(client, new_client, user):
    """A token names an app's device; a browser's session device is no substitute."""
    tokens = sign_in_app(client)
    browser = new_client()
    login(browser)
    browser_device = db.session.scalars(
        select(RefreshToken).where(RefreshToken.kind == "browser")
    ).one()
    _, claims, _ = _parts(tokens["access_token"])
    assert_refused(_me(client, _signed({**claims, "sid": str(browser_device.id)})))


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer not.a.jwt", "bearer x.y.z"])
def test_garbage_authorization_headers_are_401(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_deactivated_users_token_stops_at_once(client, user):
    tokens = sign_in_app(client)
    user.is_active = False
    db.session.commit()
    assert_refused(client.get("/api/v1/me", headers=bearer(tokens)))


# --- keys: rotation, production, the JWKS -------------------------------------------


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _old_token_on_new_app(config: dict, old_key, old_kid: str):
    """Serve an app with `config`; return its JWKS kids, its signing kid and its
    answer to a token of the old key."""
    from webapp.domain.users import create_user

    served = serve(config)
    app = next(served)
    try:
        user = create_user("alice", "alice@example.com", TEST_PASSWORD)
        db.session.commit()
        client = app.test_client()
        tokens = sign_in_app(client)
        _, claims, _ = _parts(tokens["access_token"])
        assert claims["sub"] == str(user.id)
        # A token the old key signed for this device, as one issued before the rotation.
        old_token = jwt.encode(claims, old_key, algorithm="ES256", headers={"kid": old_kid})
        kids = [key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]]
        return kids, _parts(tokens["access_token"])[0]["kid"], _me(client, old_token)
    finally:
        next(served, None)  # the app's clean-up: its session and engine


def test_a_retired_key_keeps_verifying_after_rotation(app_config, tmp_path):
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    old_kid = access_tokens.public_jwk(old.public_key())["kid"]
    new_kid = access_tokens.public_jwk(new.public_key())["kid"]
    rotated = {**app_config, "JWT_PRIVATE_KEY": _pem(new)}
    # Without the retired key, tokens of the old one stop at once.
    kids, signing_kid, answer = _old_token_on_new_app(rotated, old, old_kid)
    assert kids == [new_kid] and signing_kid == new_kid
    assert_refused(answer)
    # With it, they keep working (until they expire), and the JWKS lists both keys.
    retired = tmp_path / "retired.pem"
    retired.write_text(_public_pem(old))
    kids, signing_kid, answer = _old_token_on_new_app(
        {**rotated, "JWT_RETIRED_PUBLIC_KEYS_FILE": str(retired)}, old, old_kid
    )
    assert kids == [new_kid, old_kid] and signing_kid == new_kid
    assert answer.status_code == 200


def test_production_refuses_to_start_without_a_key(monkeypatch, db_url):
    from webapp import create_app

    monkeypatch.setenv("WEBAPP_ENV", "production")
    monkeypatch.delenv("JWT_PRIVATE_KEY_FILE", raising=False)
    monkeypatch.delenv("JWT_PRIVATE_KEY", raising=False)
    with pytest.raises(access_tokens.KeyConfigError, match="JWT_PRIVATE_KEY_FILE"):
        create_app({"SQLALCHEMY_DATABASE_URI": db_url})


def test_a_key_that_is_not_p256_is_refused(app_config):
    from webapp import create_app

    other_curve = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(access_tokens.KeyConfigError, match="P-256"):
        create_app({**app_config, "JWT_PRIVATE_KEY": _pem(other_curve)})


def test_the_jwks_holds_only_public_members(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    [key] = response.json["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert "d" not in key


# --- the second factor --------------------------------------------------------------------


@pytest.fixture
def carol(make_user):
    return make_user("carol", two_factor=True)


def code_of(user: User, at: float | None = None) -> str:
    return pyotp.TOTP(TOTP_SECRETS[user.id]).at(at if at is not None else time.time())


def wrong_code(user: User) -> str:
    return "000000" if code_of(user) != "000000" else "111111"


def mfa_step(client, username="carol") -> str:
    response = api_token(client, username)
    body = assert_problem(response, 401, "mfa_required")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    return body["mfa_token"]


def send_code(client, mfa_token: str, code: str):
    return client.post("/api/v1/auth/token/mfa", json={"mfa_token": mfa_token, "code": code})


def mid_step() -> datetime:
    now = time.time()
    start = int(now) // 30 * 30 + 15
    return datetime.fromtimestamp(start if start >= now + 1 else start + 30, UTC)


def test_the_right_code_signs_the_app_in_with_otp_in_amr(client, carol):
    token = mfa_step(client)
    assert db.session.scalars(select(RefreshToken)).all() == []  # no device before the code
    response = send_code(client, token, code_of(carol))
    assert response.status_code == 200
    assert _parts(response.json["access_token"])[1]["amr"] == ["pwd", "otp"]
    device = db.session.get(RefreshToken, response.json["device_id"])
    assert device.auth_method == "password+totp" and device.mfa_at is not None


def test_an_mfa_token_cannot_be_replayed(client, carol):
    token = mfa_step(client)
    assert send_code(client, token, code_of(carol)).status_code == 200
    from tests.conftest import current_code

    replay = send_code(client, token, current_code("carol"))
    assert_problem(replay, 401, "invalid_grant")
    assert len(db.session.scalars(select(RefreshToken)).all()) == 1


def test_a_wrong_code_is_invalid_code_and_audited(client, carol):
    token = mfa_step(client)
    assert_problem(send_code(client, token, wrong_code(carol)), 401, "invalid_code")
    failed = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mfa_failed")).one()
    assert failed.target_username == "carol"


def test_five_wrong_codes_end_the_mfa_token(client, carol):
    with time_machine.travel(mid_step(), tick=False) as clock:
        token = mfa_step(client)
        for _ in range(5):
            assert_problem(send_code(client, token, wrong_code(carol)), 401, "invalid_code")
        clock.shift(timedelta(seconds=125))  # past the account's backoff, inside 5 minutes
        dead = send_code(client, token, code_of(carol))
        assert_problem(dead, 401, "invalid_grant")
        assert db.session.scalars(select(RefreshToken)).all() == []
        # A new sign-in still works: the token ended, not the account.
        fresh = mfa_step(client)
        assert send_code(client, fresh, code_of(carol)).status_code == 200


def test_an_mfa_token_ends_after_five_minutes(client, carol):
    with time_machine.travel(mid_step(), tick=False) as clock:
        token = mfa_step(client)
        clock.shift(timedelta(seconds=301))
        assert_problem(send_code(client, token, code_of(carol)), 401, "invalid_grant")
    assert db.session.scalars(select(RefreshToken)).all() == []


def test_a_totp_code_used_on_the_web_is_refused_by_the_api_and_back(client, new_client, carol):
    with time_machine.travel(mid_step(), tick=False):
        code = code_of(carol)
        post_form(client, "/login", {"identifier": "carol", "password": TEST_PASSWORD})
        assert post_form(client, "/login/verify", {"code": code}, page="/login").status_code == 302
        app_client = new_client()
        token = mfa_step(app_client)
        assert_problem(send_code(app_client, token, code), 401, "invalid_code")
        replayed = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "mfa_failed")
        ).one()
        assert replayed.details.get("replayed") is True


def test_a_totp_code_used_by_the_api_is_refused_on_the_web(client, new_client, carol):
    with time_machine.travel(mid_step(), tick=False):
        code = code_of(carol)
        token = mfa_step(client)
        assert send_code(client, token, code).status_code == 200
        browser = new_client()
        post_form(browser, "/login", {"identifier": "carol", "password": TEST_PASSWORD})
        page = post_form(browser, "/login/verify", {"code": code}, page="/login")
        assert page.status_code == 200 and "That code is not right." in page.get_data(as_text=True)


def test_a_recovery_code_works_once(client, carol):
    from webapp.security import two_factor

    [recovery, *_] = two_factor.replace_recovery_codes(carol.id)
    db.session.commit()
    token = mfa_step(client)
    assert send_code(client, token, recovery).status_code == 200
    again = mfa_step(client)
    assert_problem(send_code(client, again, recovery), 401, "invalid_code")


def test_an_mfa_token_waiting_when_the_owner_takes_the_account_back_is_dead(
    client, new_client, carol
):
    """An intruder who knows the password holds an mfa_token; the owner changes the password."""
    with time_machine.travel(mid_step(), tick=False) as clock:
        intruders = mfa_step(client)
        owner = new_client()
        tokens = send_code(owner, mfa_step(owner), code_of(carol)).json
        clock.shift(timedelta(seconds=1))
        changed = owner.post(
            "/api/v1/me/password",
            json={"current_password": TEST_PASSWORD, "new_password": "a brand new 4ever phrase"},
            headers=bearer(tokens),
        )
        assert changed.status_code == 204
        clock.shift(timedelta(seconds=30))  # the intruder phishes the next code
        late = send_code(client, intruders, code_of(carol))
        assert_problem(late, 401, "invalid_grant")
        assert [d.id for d in db.session.scalars(select(RefreshToken))] == [tokens["device_id"]]


def test_unknown_mfa_tokens_are_invalid_grant(client, carol):
    assert_problem(send_code(client, "x" * 43, "123456"), 401, "invalid_grant")


# --- the backoff and limits shared with /login --------------------------------------------


def test_api_failures_count_toward_the_login_backoff(app, client, new_client, user):
    for _ in range(app.config["BACKOFF_THRESHOLD"]):
        assert_problem(api_token(client, password="wrong password 1"), 401, "invalid_credentials")
    page = post_form(client, "/login", {"identifier": "alice", "password": TEST_PASSWORD})
    assert page.status_code == 429
    throttled = api_token(client)
    assert_problem(throttled, 429, "throttled")
    assert int(throttled.headers["Retry-After"]) > 0


def test_login_failures_count_toward_the_api_backoff(app, client, user):
    for _ in range(app.config["BACKOFF_THRESHOLD"]):
        post_form(client, "/login", {"identifier": "alice", "password": "wrong password 1"})
    assert_problem(api_token(client), 429, "throttled")


def test_wrong_api_codes_count_toward_the_second_step_backoff(app, client, carol):
    with time_machine.travel(mid_step(), tick=False):
        token = mfa_step(client)
        for _ in range(5):
            send_code(client, token, wrong_code(carol))
        # The web's sign-in for the same account now waits too, the right password included.
        page = post_form(client, "/login", {"identifier": "carol", "password": TEST_PASSWORD})
        assert page.status_code == 429
        assert "Too many failed attempts" in page.get_data(as_text=True)


def test_the_per_ip_login_limit_is_shared_with_the_api(app_config):
    for app in serve({**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN": "3 per minute"}):
        from webapp.domain.users import create_user

        create_user("alice", "alice@example.com", TEST_PASSWORD)
        db.session.commit()
        client = app.test_client()
        for _ in range(2):
            post_form(client, "/login", {"identifier": "nobody", "password": "x" * 12})
        assert api_token(client, "nobody").status_code == 401  # the third in the minute
        limited = api_token(client, "nobody")
        assert_problem(limited, 429)
        assert limited.headers["Retry-After"]


# --- admin endpoints ------------------------------------------------------------------------


@pytest.fixture
def root(make_user):
    return make_user("root", role="admin")


def test_admin_endpoints_need_the_admin_role(client, user):
    tokens = sign_in_app(client)
    for method, path in [
        ("get", "/api/v1/admin/users"),
        ("get", "/api/v1/admin/roles"),
        ("get", "/api/v1/admin/audit"),
        ("post", f"/api/v1/admin/users/{user.id}/revoke-devices"),
    ]:
        response = getattr(client, method)(path, headers=bearer(tokens))
        assert_problem(response, 403, "forbidden")
    assert_problem(client.get("/api/v1/admin/users"), 401)


def test_admin_endpoints_need_a_second_factor_in_amr(client, root):
    tokens = sign_in_app(client, "root")
    _, claims, _ = _parts(tokens["access_token"])
    assert claims["amr"] == ["pwd", "otp"]
    assert client.get("/api/v1/admin/users", headers=bearer(tokens)).status_code == 200
    # The same admin and device, with a token whose sign-in showed no second factor.
    password_only = _signed({**claims, "amr": ["pwd"]})
    response = client.get(
        "/api/v1/admin/users", headers={"Authorization": f"Bearer {password_only}"}
    )
    assert_problem(response, 403, "mfa_required")


def test_a_role_that_requires_two_factor_without_it_reaches_only_me(client, make_user):
    make_user("newadmin", role="admin", two_factor=False)
    tokens = sign_in_app(client, "newadmin")
    amr = _parts(tokens["access_token"])[1]["amr"]
    assert amr == ["pwd", "mfa_setup_required"]
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 200
    for path in ("/api/v1/me/devices", "/api/v1/me/activity", "/api/v1/admin/users"):
        assert_problem(client.get(path, headers=bearer(tokens)), 403, "mfa_setup_required")
    assert client.post("/api/v1/auth/logout", headers=bearer(tokens)).status_code == 204


def test_admin_lists_and_searches_users(client, root, make_user):
    for n in range(3):
        make_user(f"zed{n}")
    tokens = sign_in_app(client, "root")
    response = client.get("/api/v1/admin/users?q=ZED", headers=bearer(tokens))
    assert response.status_code == 200
    assert sorted(item["username"] for item in response.json["items"]) == ["zed0", "zed1", "zed2"]
    assert response.json["next_cursor"] is None
    one = response.json["items"][0]
    assert set(one) == {"id", "username", "email", "role", "is_active", "created_at"}
    detail = client.get(f"/api/v1/admin/users/{one['id']}", headers=bearer(tokens))
    assert detail.json == one


def test_admin_deactivation_signs_out_everywhere_and_is_audited(client, new_client, root, user):
    victim = sign_in_app(new_client())
    tokens = sign_in_app(client, "root")
    response = client.patch(
        f"/api/v1/admin/users/{user.id}", json={"is_active": False}, headers=bearer(tokens)
    )
    assert response.status_code == 200 and response.json["is_active"] is False
    assert_refused(new_client().get("/api/v1/me", headers=bearer(victim)))
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user_deactivated")
    ).one()
    assert event.actor_username == "root" and event.target_username == "alice"


def test_admin_cannot_demote_or_deactivate_the_last_admin(client, root):
    tokens = sign_in_app(client, "root")
    for body in ({"role": "user"}, {"is_active": False}, {"role": "user", "is_active": False}):
        response = client.patch(f"/api/v1/admin/users/{root.id}", json=body, headers=bearer(tokens))
        assert_problem(response, 409, "last_admin")
    db.session.expire_all()
    assert db.session.get(User, root.id).is_admin


def test_admin_role_change_and_unknown_role(client, root, user):
    tokens = sign_in_app(client, "root")
    unknown = client.patch(
        f"/api/v1/admin/users/{user.id}", json={"role": "wizard"}, headers=bearer(tokens)
    )
    assert "role" in assert_problem(unknown, 422)["errors"]
    empty = client.patch(f"/api/v1/admin/users/{user.id}", json={}, headers=bearer(tokens))
    assert_problem(empty, 422)
    missing = client.get(
        "/api/v1/admin/users/00000000-0000-0000-0000-000000000000", headers=bearer(tokens)
    )
    assert_problem(missing, 404)


def test_admin_revokes_a_users_devices(client, new_client, root, user):
    victim = sign_in_app(new_client())
    tokens = sign_in_app(client, "root")
    response = client.post(f"/api/v1/admin/users/{user.id}/revoke-devices", headers=bearer(tokens))
    assert response.status_code == 204
    assert_refused(new_client().get("/api/v1/me", headers=bearer(victim)))


def test_admin_roles_create_update_delete(client, root, make_user):
    tokens = sign_in_app(client, "root")
    created = client.post(
        "/api/v1/admin/roles",
        json={"name": "Editor", "description": "Edits things"},
        headers=bearer(tokens),
    )
    assert created.status_code == 201 and created.json["name"] == "editor"
    duplicate = client.post("/api/v1/admin/roles", json={"name": "editor"}, headers=bearer(tokens))
    assert_problem(duplicate, 409)
    role_id = created.json["id"]
    updated = client.patch(
        f"/api/v1/admin/roles/{role_id}", json={"mfa_required": True}, headers=bearer(tokens)
    )
    assert updated.status_code == 200 and updated.json["mfa_required"] is True
    listed = client.get("/api/v1/admin/roles", headers=bearer(tokens)).json["items"]
    assert {role["name"] for role in listed} == {"admin", "user", "editor"}
    holder = make_user("ed")
    holder.role = db.session.get(Role, role_id)
    db.session.commit()
    in_use = client.delete(f"/api/v1/admin/roles/{role_id}", headers=bearer(tokens))
    assert_problem(in_use, 409)
    holder.role = db.session.scalars(select(Role).where(Role.name == "user")).one()
    db.session.commit()
    assert (
        client.delete(f"/api/v1/admin/roles/{role_id}", headers=bearer(tokens)).status_code == 204
    )
    assert_problem(client.delete(f"/api/v1/admin/roles/{role_id}", headers=bearer(tokens)), 404)


def test_admin_audit_shows_app_sign_ins(client, root, user, new_client):
    sign_in_app(new_client(), device_name="Ana's phone")
    tokens = sign_in_app(client, "root")
    response = client.get("/api/v1/admin/audit", headers=bearer(tokens))
    assert response.status_code == 200
    logins = [item for item in response.json["items"] if item["action"] == "login"]
    assert any(item["details"].get("app") == "Ana's phone" for item in logins)


def test_admin_audit_page_shows_the_app(client, new_client, root, user):
    sign_in_app(new_client(), device_name="Ana's phone")
    from tests.conftest import login as web_login

    web_login(client, "root")
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "Ana&#39;s phone" in page or "Ana's phone" in page


def test_development_creates_a_key_in_instance_once_and_keeps_it(tmp_path):
    first = access_tokens.load_keys({"ENV_NAME": "development"}, str(tmp_path))
    again = access_tokens.load_keys({"ENV_NAME": "development"}, str(tmp_path))
    assert first.kid == again.kid
    key_file = tmp_path / access_tokens.DEVELOPMENT_KEY_FILE
    assert key_file.stat().st_mode & 0o077 == 0


def test_purge_devices_deletes_expired_mfa_tokens(app, client, carol, runner):
    from webapp.models import MfaToken

    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        mfa_step(client)
        clock.shift(timedelta(seconds=301))
        live = mfa_step(client)
        result = runner.invoke(args=["purge-devices"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert len(db.session.scalars(select(MfaToken)).all()) == 1
    assert send_code(client, live, code_of(carol)).status_code == 200
