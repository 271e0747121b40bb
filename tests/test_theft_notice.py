"""A stolen remember token: the device is revoked and the owner gets a mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.conftest import cookie, login
from tests.smtp import text_of


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def test_theft_revokes_the_whole_device_and_mails_the_owner(app, new_client, user, smtp):
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        owner = new_client()
        login(owner, remember=True)
        stolen = cookie(owner, name).value
        owner.delete_cookie(app.config["SESSION_COOKIE_NAME"])
        assert owner.get("/account").status_code == 200  # rotates: the owner holds B
        clock.shift(timedelta(minutes=5))
        thief = new_client()
        thief.set_cookie(name, stolen)
        assert thief.get("/account").status_code == 302
        owner.delete_cookie(app.config["SESSION_COOKIE_NAME"])
        assert owner.get("/account").status_code == 302  # B is dead too
    [message] = smtp.to("alice@example.com")
    body = text_of(message)
    assert "Chrome on Linux" in body and "signed that device out" in body
    assert stolen not in body
