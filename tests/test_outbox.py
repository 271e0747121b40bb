"""The mail outbox: a mail is never lost, never sent twice, never readable while it waits."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select, text

from tests.conftest import post_form
from tests.smtp import SmtpServer, reset_link
from webapp import create_app
from webapp.extensions import db
from webapp.mail import deliver_due, send, stop_sender
from webapp.models import OutboxMail, utc_now

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server():
    """The tests' SMTP server, which a test may stop and start again on the same port."""
    smtp_server = SmtpServer()
    smtp_server.start()
    yield smtp_server
    smtp_server.stop()


@pytest.fixture
def smtp(server):
    return server.mailbox


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def outbox() -> list[OutboxMail]:
    db.session.expire_all()
    return db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()


def ask_for_reset(client) -> None:
    response = post_form(client, "/reset-password", {"email": "alice@example.com"})
    assert response.status_code == 200


def queue_notices(count: int) -> None:
    """Queue `count` mails to distinct addresses in one transaction, as a view would."""
    for number in range(count):
        send(
            f"person{number}@example.com",
            "Your Keystone password was changed",
            "password_changed",
            username=f"person{number}",
            browser="Firefox on Linux",
            when=utc_now(),
            ip=None,
            reset_link="http://localhost:5000/reset-password",
        )
    db.session.commit()


def wait_until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# --- the mail server is down or refuses ------------------------------------------


def test_smtp_down_when_due_the_mail_arrives_once_after_it_is_back(app, client, user, server):
    server.stop()
    ask_for_reset(client)
    [waiting] = outbox()
    assert (waiting.status, waiting.attempts) == ("waiting", 1)
    # Tried again within a minute, not at once.
    assert timedelta(0) < waiting.next_attempt_at - utc_now() <= timedelta(minutes=1)
    assert deliver_due() == 0

    server.start()
    with time_machine.travel(utc_now() + timedelta(minutes=1), tick=False):
        assert deliver_due() == 1
    with time_machine.travel(utc_now() + timedelta(hours=3), tick=False):
        assert deliver_due() == 0
    [message] = server.mailbox.to("alice@example.com")
    [sent] = outbox()
    assert (sent.status, sent.attempts, sent.body) == ("sent", 2, None)
    # The link the late mail carries works.
    page = client.get(reset_link(message).removeprefix("http://localhost:5000"))
    assert page.status_code == 200 and "new_password" in page.get_data(as_text=True)


def test_a_451_answer_is_tried_again_with_the_same_message_id(app, client, user, smtp):
    smtp.refuse(1)
    ask_for_reset(client)
    assert smtp.messages == [] and len(smtp.refused) == 1
    with time_machine.travel(utc_now() + timedelta(seconds=31), tick=False):
        assert deliver_due() == 1
    [message] = smtp.to("alice@example.com")
    assert message["Message-ID"] == smtp.refused[0]["Message-ID"]
    assert message["Message-ID"] == outbox()[0].message_id


def test_undelivered_mail_waits_longer_each_time_then_fails_at_error(
    app, client, user, server, caplog
):
    app.config["MAIL_RETRY_HOURS"] = 3
    server.stop()
    queued_at = utc_now()
    ask_for_reset(client)
    waits = []
    now = utc_now()
    with caplog.at_level(logging.WARNING, logger="webapp.mail"):
        while (mail := outbox()[0]).status == "waiting":
            waits.append(mail.next_attempt_at - now)
            now = mail.next_attempt_at
            with time_machine.travel(now, tick=False):
                deliver_due()
    assert [round(wait.total_seconds()) for wait in waits[:5]] == [30, 60, 120, 240, 480]
    assert max(waits) <= timedelta(hours=1)
    # Tried until MAIL_RETRY_HOURS had passed since it was queued, not longer.
    assert now - queued_at == pytest.approx(timedelta(hours=3), abs=timedelta(seconds=2))
    assert (mail.status, mail.body) == ("failed", None)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "failed" in errors[0] and f"in {mail.attempts} tries" in errors[0]
    server.start()
    with time_machine.travel(now + timedelta(hours=1), tick=False):
        assert deliver_due() == 0
    assert server.mailbox.messages == []


# --- a process dies, several processes share the work -------------------------------


def test_mail_pending_when_its_process_dies_is_delivered_by_a_new_app(app_config, app, user, smtp):
    # The first process queues the mail and dies before any sender took it.
    app.config["MAIL_DELIVER_INLINE"] = False
    ask_for_reset(app.test_client())
    assert [mail.status for mail in outbox()] == ["waiting"] and smtp.messages == []

    second = create_app(
        {
            **app_config,
            "MAIL_DELIVER_INLINE": False,
            "MAIL_WORKER": "thread",
            "MAIL_POLL_SECONDS": 1,
        }
    )
    try:
        # Its sender thread starts with its first request (a load balancer's health check).
        assert second.test_client().get("/healthz").status_code == 200
        assert wait_until(lambda: smtp.to("alice@example.com"))
    finally:
        stop_sender(second)
        with second.app_context():
            db.engine.dispose()
    assert len(smtp.messages) == 1
    assert [mail.status for mail in outbox()] == ["sent"]


def start_worker(app_config: dict, smtp, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "WEBAPP_ENV": "testing",
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "MAIL_DEFAULT_SENDER": "keystone@example.org",
        "MAIL_WORKER": "external",
        "MAIL_POLL_SECONDS": "1",
    }
    env.pop("TEST_DATABASE_URL", None)
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own command line
            [sys.executable, "-m", "flask", "--app", "wsgi", "send-mail"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_two_send_mail_workers_deliver_200_mails_each_exactly_once(app_config, app, smtp, tmp_path):
    app.config["MAIL_DELIVER_INLINE"] = False
    smtp.delay = 0.01  # long enough that both workers are at it together
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [start_worker(app_config, smtp, log) for log in logs]
    try:
        assert wait_until(lambda: all("mail worker started" in log.read_text() for log in logs))
        queue_notices(200)
        assert wait_until(lambda: len(smtp.messages) >= 200, seconds=90)
        time.sleep(1.5)  # a second chance for any duplicate to arrive
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=30) for worker in workers]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    message_ids = [message["Message-ID"] for message in smtp.messages]
    assert len(message_ids) == 200 and len(set(message_ids)) == 200
    assert {str(message["To"]) for message in smtp.messages} == {
        f"person{number}@example.com" for number in range(200)
    }
    assert {mail.status for mail in outbox()} == {"sent"}
    # Each worker says how many it delivered: together, each mail once, and both took part.
    counts = [int(log.read_text().rsplit("Delivered ", 1)[1].split()[0]) for log in logs]
    assert sum(counts) == 200 and min(counts) > 0, counts


# --- a rolled-back change, a waiting mail's body ------------------------------------


def test_a_rolled_back_request_sends_no_mail(app, user, smtp):
    @app.post("/test/mail-then-fail/<int:fail>")
    def mail_then_fail(fail: int):
        send(
            "alice@example.com",
            "Your Keystone password was changed",
            "password_changed",
            username="alice",
            browser="Firefox on Linux",
            when=utc_now(),
            ip=None,
            reset_link="http://localhost:5000/reset-password",
        )
        if fail:
            raise RuntimeError("the change fails after its mail was queued")
        db.session.commit()
        return "done"

    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/test/mail-then-fail/1").status_code == 500
    assert outbox() == [] and smtp.messages == []

    assert client.post("/test/mail-then-fail/0").status_code == 200
    assert len(smtp.to("alice@example.com")) == 1


def test_mail_queued_after_the_last_commit_is_not_sent_and_the_log_says_so(app, user, smtp, caplog):
    @app.get("/test/mail-without-commit")
    def mail_without_commit():
        send(
            "alice@example.com",
            "Your Keystone password was changed",
            "password_changed",
            username="alice",
            browser="Firefox on Linux",
            when=utc_now(),
            ip=None,
            reset_link="http://localhost:5000/reset-password",
        )
        return "done"

    with caplog.at_level(logging.WARNING, logger="webapp.mail"):
        assert app.test_client().get("/test/mail-without-commit").status_code == 200
    assert outbox() == [] and smtp.messages == []
    assert any("ended without a commit" in r.getMessage() for r in caplog.records)


def test_a_failed_password_change_queues_no_notice(app, client, user, smtp):
    from tests.conftest import login

    login(client)
    post_form(
        client,
        "/account/password",
        {
            "current_password": "not-the-password",
            "new_password": "a-brand-new-passphrase-42",
            "confirm_new_password": "a-brand-new-passphrase-42",
        },
    )
    assert outbox() == [] and smtp.messages == []


def test_no_link_is_stored_in_plain_text_while_the_mail_waits(app, client, user, smtp):
    app.config["MAIL_DELIVER_INLINE"] = False
    ask_for_reset(client)
    with db.engine.connect() as connection:
        [row] = connection.execute(text("SELECT * FROM outbox")).all()
    stored = " ".join(str(value) for value in row)
    assert "reset-password" not in stored and "http" not in stored
    assert "Reset your Keystone password" not in stored and "alice" in stored  # the recipient

    assert deliver_due() == 1
    [message] = smtp.to("alice@example.com")
    token = reset_link(message).rsplit("/", 1)[1]
    with db.engine.connect() as connection:
        [row] = connection.execute(text("SELECT * FROM outbox")).all()
    stored = " ".join(str(value) for value in row)
    assert token not in stored and "sent" in stored
    assert outbox()[0].body is None


# --- what the admin and the log see; the purge --------------------------------------


def test_admin_mail_page_counts_without_content(app, client, admin, user, server):
    from tests.conftest import login

    app.config["MAIL_DELIVER_INLINE"] = False
    ask_for_reset(client)  # waiting
    queue_notices(2)
    assert deliver_due() == 3
    server.stop()
    queue_notices(1)
    with time_machine.travel(utc_now() - timedelta(hours=30), tick=False):
        queue_notices(1)  # queued long ago: it fails at its next try
    assert deliver_due() == 0
    queue_notices(1)
    mails = outbox()
    mails[-1].created_at = utc_now() - timedelta(minutes=20)
    db.session.commit()

    assert login(client, "root-admin").status_code == 302
    page = client.get("/admin/mail")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Mail delivery" in html
    assert 'id="mail-waiting">2<' in html
    assert 'id="mail-sent">3<' in html
    assert 'id="mail-failed">1<' in html
    assert "20 minutes" in html
    assert "@example.com" not in html and "reset-password/" not in html
    assert 'href="/admin/mail"' in client.get("/admin/").get_data(as_text=True)


def test_mail_waiting_over_15_minutes_is_logged_at_warning(app, client, user, server, caplog):
    from webapp.mail import BacklogWatch

    app.config["MAIL_DELIVER_INLINE"] = False
    ask_for_reset(client)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="webapp.mail"):
        with time_machine.travel(utc_now() + timedelta(minutes=14), tick=False):
            BacklogWatch().check()
        assert caplog.records == []
        with time_machine.travel(utc_now() + timedelta(minutes=16), tick=False):
            BacklogWatch().check()
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING and "16 minutes" in warning.getMessage()


def test_purge_activity_deletes_mail_sent_or_failed_over_7_days_ago(app, runner, server):
    app.config["MAIL_DELIVER_INLINE"] = False
    eight_days_ago = utc_now() - timedelta(days=8)
    with time_machine.travel(eight_days_ago, tick=False):
        queue_notices(2)
        deliver_due()  # sent eight days ago
    server.stop()
    with time_machine.travel(eight_days_ago - timedelta(days=1), tick=False):
        queue_notices(1)
    with time_machine.travel(eight_days_ago, tick=False):
        deliver_due()  # past MAIL_RETRY_HOURS: failed eight days ago
    server.start()
    queue_notices(1)
    deliver_due()  # sent today
    queue_notices(1)  # waiting
    statuses = sorted(mail.status for mail in outbox())
    assert statuses == ["failed", "sent", "sent", "sent", "waiting"]

    result = runner.invoke(args=["purge-activity"])
    assert result.exit_code == 0, result.output
    assert "Purged 3 mails" in result.output
    assert sorted(mail.status for mail in outbox()) == ["sent", "waiting"]


def test_send_mail_once_delivers_what_is_due_and_exits(app, runner, smtp):
    app.config["MAIL_DELIVER_INLINE"] = False
    queue_notices(3)
    result = runner.invoke(args=["send-mail", "--once"])
    assert result.exit_code == 0, result.output
    assert "Delivered 3 mails." in result.output
    assert len(smtp.messages) == 3
