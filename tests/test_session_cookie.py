"""The session cookie is verified once per process and remembered (security/sessions.py).

What is remembered must never let through a cookie that Flask's own check
would refuse: a tampered copy, a cookie past the session lifetime, or one
signed with a key that has since been retired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from flask import request

from tests.conftest import cookie, login


def session_of(app, value: str) -> dict:
    """Return what the app reads from a session cookie (empty if it refuses it)."""
    name = app.config["SESSION_COOKIE_NAME"]
    with app.test_request_context("/", headers={"Cookie": f"{name}={value}"}):
        return dict(app.session_interface.open_session(app, request))


def signed_in_cookie(app, client) -> str:
    login(client)
    assert client.get("/account").status_code == 200
    return cookie(client, app.config["SESSION_COOKIE_NAME"]).value


def test_a_verified_cookie_reads_the_same_the_next_time(app, client, user):
    value = signed_in_cookie(app, client)
    first = session_of(app, value)
    assert first["_user_id"].startswith(f"{user.id}:")
    assert session_of(app, value) == first


def test_each_request_gets_its_own_copy_of_a_remembered_session(app, client, user):
    value = signed_in_cookie(app, client)
    name = app.config["SESSION_COOKIE_NAME"]
    with app.test_request_context("/", headers={"Cookie": f"{name}={value}"}):
        first = app.session_interface.open_session(app, request)
        first["_user_id"] = "someone else"
    assert session_of(app, value)["_user_id"].startswith(f"{user.id}:")


def test_a_tampered_copy_of_a_verified_cookie_is_refused(app, client, new_client, user):
    value = signed_in_cookie(app, client)
    assert session_of(app, value)
    payload, timestamp, signature = value.rsplit(".", 2)
    swapped = "B" if signature[0] == "A" else "A"
    forged = f"{payload}.{timestamp}.{swapped}{signature[1:]}"
    assert session_of(app, forged) == {}
    thief = new_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], forged)
    response = thief.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_a_verified_cookie_is_refused_once_past_the_session_lifetime(app, client, user):
    value = signed_in_cookie(app, client)
    assert session_of(app, value)
    lifetime = app.permanent_session_lifetime
    with time_machine.travel(datetime.now(UTC) + lifetime + timedelta(seconds=2), tick=False):
        assert session_of(app, value) == {}
    with time_machine.travel(datetime.now(UTC) - timedelta(minutes=5), tick=False):
        assert session_of(app, value) == {}  # signed "in the future": refused too


def test_a_verified_cookie_is_refused_once_its_key_is_retired(app, client, user):
    value = signed_in_cookie(app, client)
    assert session_of(app, value)
    old_key = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "a new secret key, the old one retired outright"
    assert session_of(app, value) == {}
    # Kept as a fallback during a rotation, the old key still verifies it.
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    assert session_of(app, value)["_user_id"].startswith(f"{user.id}:")


def test_cookies_are_interchangeable_with_flasks_own(app, client, user):
    """A deploy that switches to or from Flask's stock sessions keeps everyone signed in."""
    from flask.sessions import SecureCookieSessionInterface

    value = signed_in_cookie(app, client)
    ours = app.session_interface
    stock = SecureCookieSessionInterface()
    name = app.config["SESSION_COOKIE_NAME"]
    with app.test_request_context("/", headers={"Cookie": f"{name}={value}"}):
        read_by_flask = dict(stock.open_session(app, request))
    assert read_by_flask == session_of(app, value)
    with time_machine.travel(datetime.now(UTC), tick=False):  # one timestamp for both
        assert stock.get_signing_serializer(app).dumps(read_by_flask) == (
            ours.get_signing_serializer(app).dumps(read_by_flask)
        )


def test_values_json_cannot_carry_are_still_tagged_as_flask_tags_them(app):
    from flask.sessions import SecureCookieSessionInterface
    from markupsafe import Markup

    stock = SecureCookieSessionInterface().get_signing_serializer(app)
    ours = app.session_interface.get_signing_serializer(app)
    samples = [
        {"_user_id": "u:1:0", "_fresh": True, "fresh_until": 1.5, "n": None},
        {"pair": (1, 2), "when": datetime(2030, 1, 2, tzinfo=UTC)},
        {"note": Markup("<b>hi</b>")},
        {" t": "looks like a tag"},  # a one-key dict named like a tag
    ]
    with time_machine.travel(datetime.now(UTC), tick=False):
        for data in samples:
            assert ours.dumps(data) == stock.dumps(data)
            assert ours.loads(ours.dumps(data)) == stock.loads(stock.dumps(data))


def test_a_large_session_is_compressed_as_flask_compresses_it(app):
    """The lighter zlib set-up makes the same bytes, up to the largest cookie a browser keeps."""
    from flask.sessions import SecureCookieSessionInterface

    stock = SecureCookieSessionInterface().get_signing_serializer(app)
    ours = app.session_interface.get_signing_serializer(app)
    samples = [
        {"_user_id": "u:1:0", "csrf_token": "ab" * 20},
        {"notes": ["Your password was changed."] * 40, "n": list(range(200))},
        {f"key{i}": f"{i:x}" * (i % 13) for i in range(300)},
    ]
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False):
        for data in samples:
            value = ours.dumps(data)
            assert value == stock.dumps(data)
            assert value.startswith(".")  # compressed: each of these is shorter so
            assert stock.loads(value) == data


def test_vary_names_the_cookie_once_beside_what_the_view_set(app, client, user):
    from flask import session

    @app.get("/vary-probe")
    def vary_probe():
        session["probe"] = "x"
        return "ok", {"Vary": "Accept-Encoding"}

    response = client.get("/vary-probe")
    assert response.headers["Vary"] == "Accept-Encoding, Cookie"
    assert cookie(client, app.config["SESSION_COOKIE_NAME"]) is not None


def test_an_emptied_session_deletes_its_cookie(app, client, user):
    from flask import session

    @app.get("/clear-probe")
    def clear_probe():
        session.clear()
        return "ok"

    assert signed_in_cookie(app, client)
    response = client.get("/clear-probe")
    name = app.config["SESSION_COOKIE_NAME"]
    cleared = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert cleared and "Expires=Thu, 01 Jan 1970" in cleared[0]
    assert response.headers["Vary"] == "Cookie"
    assert client.get("/account").status_code == 302  # signed out
