"""Mail: real SMTP on loopback, the log without a server, the password-changed notice."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy import select

from tests.conftest import BROWSER_UA, TEST_PASSWORD, login, post_form
from tests.smtp import free_port, html_of, reset_link, text_of
from webapp import create_app
from webapp.extensions import db
from webapp.mail import run_in_background, wait_for_mail
from webapp.models import OutboxMail

NEW_PASSWORD = "a-brand-new-passphrase-42"


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def test_reset_mail_is_delivered_over_smtp_with_text_and_html(client, user, smtp):
    post_form(client, "/reset-password", {"email": "alice@example.com"})
    [message] = smtp.to("alice@example.com")
    assert message["From"] == "keystone@example.org"
    assert message["Subject"] == "Reset your Keystone password"
    link = reset_link(message)
    assert link.startswith("http://localhost:5000/reset-password/")
    assert "Hello alice" in text_of(message)
    assert f'href="{link}"' in html_of(message)
    assert smtp.envelopes[0] == ("keystone@example.org", ["alice@example.com"])


def test_password_change_mails_a_notice_naming_browser_and_time(client, user, smtp):
    login(client)
    response = post_form(
        client,
        "/account/password",
        {
            "current_password": TEST_PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_new_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    [notice] = smtp.to("alice@example.com")
    assert notice["Subject"] == "Your Keystone password was changed"
    text = text_of(notice)
    assert "changed from Chrome on Linux at " in text
    assert " UTC" in text
    assert "If it was not you, reset your password now" in text
    assert "http://localhost:5000/reset-password" in text
    assert NEW_PASSWORD not in text and NEW_PASSWORD not in html_of(notice)
    assert "Chrome on Linux" in html_of(notice)


def test_failed_password_change_mails_nothing(client, user, smtp):
    login(client)
    post_form(
        client,
        "/account/password",
        {
            "current_password": "not-my-password",
            "new_password": NEW_PASSWORD,
            "confirm_new_password": NEW_PASSWORD,
        },
    )
    assert smtp.messages == []


def test_queued_mail_is_delivered_once_the_workers_drain(app, client, user, smtp):
    app.config["MAIL_SEND_SYNC"] = False
    response = post_form(client, "/reset-password", {"email": "alice@example.com"})
    assert response.status_code == 200
    assert wait_for_mail(app)
    [message] = smtp.to("alice@example.com")
    assert reset_link(message)


def test_background_job_runs_in_a_worker_thread(app):
    app.config["MAIL_SEND_SYNC"] = False
    seen: list[str] = []

    def job(label: str) -> None:
        seen.append(f"{label}:{threading.current_thread().name}")

    run_in_background(job, "one")
    assert wait_for_mail(app)
    assert len(seen) == 1
    assert seen[0].startswith("one:mail")
    assert threading.current_thread().name not in seen[0]


def test_unreachable_smtp_server_does_not_break_the_page(app_config, user, caplog):
    # Nothing listens on this port.
    unreachable = create_app({**app_config, "MAIL_PORT": free_port()})
    with unreachable.app_context(), caplog.at_level(logging.WARNING, logger="webapp.mail"):
        client = unreachable.test_client()
        response = post_form(client, "/reset-password", {"email": "alice@example.com"})
        waiting = db.session.execute(select(OutboxMail.status, OutboxMail.attempts)).all()
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 200
    assert "Check your email" in response.get_data(as_text=True)
    # The mail waits for the next try, and the log says so.
    assert waiting == [("waiting", 1)]
    [warning] = [r.getMessage() for r in caplog.records if r.name == "webapp.mail"]
    assert "not delivered" in warning and "trying again" in warning


def test_without_mail_server_the_mail_and_its_link_go_to_the_log(app, client, user, caplog):
    app.config["MAIL_SERVER"] = ""
    with caplog.at_level(logging.INFO, logger="webapp.mail"):
        post_form(client, "/reset-password", {"email": "alice@example.com"})
    lines = [r.getMessage() for r in caplog.records if r.name == "webapp.mail"]
    assert any("To: alice@example.com" in line for line in lines)
    links = [line for line in lines if "/reset-password/" in line]
    assert len(links) == 1
    assert links[0].startswith("| http://localhost:5000/reset-password/")
    # One link per line, so a developer can open it straight from the log.
    assert "\n" not in links[0]


def test_in_production_without_mail_server_the_link_is_not_logged(app, client, user):
    app.config["MAIL_SERVER"] = ""
    app.config["ENV_NAME"] = "production"
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("webapp.mail")
    logger.addHandler(handler)
    try:
        post_form(client, "/reset-password", {"email": "alice@example.com"})
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert any("MAIL_SERVER is not set" in m for m in messages)
    assert not any("/reset-password/" in m for m in messages)


def test_notice_names_an_unknown_browser_plainly(app, user, smtp):
    from webapp.domain.notices import mail_notice

    with app.test_request_context(headers={"User-Agent": BROWSER_UA}):
        mail_notice("password_changed", user, "curl/8.0", "192.0.2.1")
        db.session.commit()  # the notice goes with the change it announces
    [notice] = smtp.to("alice@example.com")
    assert "192.0.2.1" in text_of(notice)
