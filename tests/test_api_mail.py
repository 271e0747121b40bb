"""The token API's mail: theft of a refresh token, an app's first sign-in, replayed codes."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_PASSWORD, login
from tests.smtp import text_of
from tests.test_api import api_token, assert_problem, bearer, sign_in_app
from webapp.extensions import db
from webapp.models import RefreshToken


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def test_refresh_token_replaced_twice_and_replayed_revokes_the_device(client, smtp, user):
    stolen = sign_in_app(client)
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    second = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first.json["refresh_token"]}
    )
    assert second.status_code == 200
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert_problem(replay, 401, "invalid_grant")
    device = db.session.get(RefreshToken, stolen["device_id"])
    assert device.is_revoked and device.revoked_reason == "theft"
    # The newest access token dies at its next request, and so does the newest refresh token.
    assert_problem(client.get("/api/v1/me", headers=bearer(second.json)), 401, "invalid_token")
    again = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second.json["refresh_token"]}
    )
    assert_problem(again, 401, "invalid_grant")
    subjects = [message["Subject"] for message in smtp.to("alice@example.com")]
    assert any("signed out" in subject.lower() for subject in subjects), subjects


def test_an_apps_sign_in_is_mailed_as_a_new_device(client, new_client, smtp, user):
    login(client)  # the account's first sign-in: nothing to compare with, no mail
    assert smtp.to("alice@example.com") == []
    sign_in_app(new_client("KeystoneApp/2.0"), device_name="Ana's tablet")
    [message] = smtp.to("alice@example.com")
    assert message["Subject"] == "New sign-in to your Keystone account"
    assert "the app “Ana's tablet”" in text_of(message)


def test_wrong_credentials_send_no_mail(client, smtp, user):
    assert api_token(client, password="wrong " + TEST_PASSWORD).status_code == 401
    assert smtp.to("alice@example.com") == []
