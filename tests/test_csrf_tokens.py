"""New CSRF tokens (security/csrf.py) are Flask-WTF's own, and Flask-WTF still judges them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from flask import g, session
from flask_wtf.csrf import generate_csrf as flask_wtf_generate_csrf
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from tests.conftest import csrf_token, login
from webapp.security.speedups.csrf import generate_csrf


def test_a_new_token_is_byte_for_byte_flask_wtfs(app):
    with app.test_request_context("/"), time_machine.travel(datetime.now(UTC), tick=False):
        ours = generate_csrf()
        raw = session["csrf_token"]
        del g.csrf_token
        assert flask_wtf_generate_csrf() == ours
        assert session["csrf_token"] == raw  # the same raw token, kept in the session


def test_one_token_per_request_and_per_session(app):
    with app.test_request_context("/"):
        first = generate_csrf()
        assert generate_csrf() == first
        validate_csrf(first)  # Flask-WTF accepts it
    with app.test_request_context("/"):
        with pytest.raises(ValidationError):
            validate_csrf(first)  # another session: refused


def test_a_tampered_token_is_refused(client, user):
    token = csrf_token(client, "/login")
    signed, _, signature = token.rpartition(".")
    # The signature's first character: all six of its bits count.
    forged = f"{signed}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    response = client.post(
        "/login", data={"csrf_token": forged, "identifier": "alice", "password": "x"}
    )
    assert response.status_code == 400


def test_forms_carry_the_token_of_the_session(client, user):
    """The login form's token (made by the forms' CSRF class) signs the user in."""
    assert login(client).status_code == 302
