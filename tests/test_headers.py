"""Security headers, caching, error pages and logs."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import TEST_PASSWORD, cookie, login, post_form


@pytest.fixture
def boom_app(app):
    """The app with a test-only route that fails."""

    @app.get("/test-only/boom")
    def boom():
        raise RuntimeError("secret detail sqlalchemy Traceback")

    return app


PATHS = ["/", "/login", "/signup", "/static/css/app.css", "/nope", "/test-only/boom"]


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_security_headers(boom_app, client, path):
    response = client.get(path)
    response.close()  # static files are streamed from an open file
    csp = response.headers["Content-Security-Policy"]
    for directive in [
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "script-src 'self'",
        "style-src 'self'",
    ]:
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"]


@pytest.mark.parametrize("path", ["/login", "/signup", "/account", "/account/devices"])
def test_auth_and_signed_in_pages_are_not_cached(client, user, path):
    login(client)
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_error_pages_are_pages_not_tracebacks(boom_app, client, caplog):
    missing = client.get("/nope")
    assert missing.status_code == 404 and "Page not found" in missing.get_data(as_text=True)
    caplog.set_level(logging.ERROR, logger="webapp.errors")
    failed = client.get("/test-only/boom")
    body = failed.get_data(as_text=True)
    assert failed.status_code == 500
    assert "Something went wrong" in body
    for leak in ["Traceback", "secret detail", "Werkzeug", "sqlalchemy", "RuntimeError"]:
        assert leak not in body
    reference = re.search(r"<code>([0-9a-f]{12})</code>", body).group(1)
    assert any(reference in record.getMessage() for record in caplog.records)


def test_no_debugger_console_and_no_version_in_server_header(client):
    response = client.get("/console")
    assert response.status_code == 404
    assert not re.search(r"\d", response.headers.get("Server", ""))


def test_unused_methods_are_refused(client):
    assert client.open("/", method="TRACE").status_code == 405
    assert client.delete("/login").status_code == 405
    assert client.get("/logout").status_code == 405


def test_oversized_request_gets_413_page(client):
    response = client.post("/login", data={"identifier": "x" * 200_000, "password": "y"})
    assert response.status_code == 413
    assert "Request too large" in response.get_data(as_text=True)


def test_logs_hold_no_password_or_cookie_and_escape_newlines(
    app, client, new_client, make_user, caplog
):
    caplog.set_level(logging.DEBUG)
    canary = "canary-password-4f1e9b"
    make_user("alice", password=canary)
    login(client, "alice", canary, remember=True)
    remember = cookie(client, app.config["REMEMBER_DEVICE_COOKIE_NAME"]).value
    login(new_client(), "bob\nINFO admin ok", "whatever password")
    text = "\n".join(record.getMessage() for record in caplog.records)
    formatted = [
        handler.format(record)
        for record in caplog.records
        for handler in logging.getLogger("webapp").handlers
    ]
    assert canary not in text and remember not in text
    assert TEST_PASSWORD not in text
    assert not any("\nINFO admin ok" in line for line in formatted)
    assert any("bob\\nINFO admin ok" in line for line in formatted)


def test_logout_form_works_from_every_signed_in_page(client, user):
    login(client)
    html = client.get("/account/devices").get_data(as_text=True)
    assert 'action="/logout"' in html and "Log out" in html
    assert post_form(client, "/logout", page="/account/devices").headers["Location"] == "/login"
