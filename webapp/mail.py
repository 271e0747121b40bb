"""Sending mail: SMTP through Flask-Mailman, off the request path.

Why Flask-Mailman rather than Flask-Mail: Flask-Mailman is a port of
Django's mail package, code that has carried Django's mail for well over a
decade. It refuses header values with newlines (no header injection
through a subject or an address), takes a connection timeout
(MAIL_TIMEOUT) so a hung SMTP server cannot hold a worker forever, builds
multipart text + HTML messages with `EmailMultiAlternatives`, and has
pluggable backends (smtp, console, file, locmem). Flask-Mail went ten years
without a release (0.9.1 in 2014 to 0.10.0 in 2024) and still has no
setting for a connection timeout and no pluggable backends.

Mail is rendered and sent by a small thread pool with its own app
context, so a request that asks for mail answers in the same time whether
or not any is sent (the reset page must not tell which emails have
accounts), and a slow SMTP server never slows a page. MAIL_SEND_SYNC runs
the same job inline instead (tests read the delivered mail right after the
response). With no MAIL_SERVER the mail is written to the "webapp.mail"
log, line by line, so a developer can follow its link; in production it is
not, because its link is a credential.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, render_template
from flask_mailman import EmailMultiAlternatives
from sqlalchemy import event
from sqlalchemy.orm import Session

from webapp.extensions import db, mail
from webapp.i18n import for_reader
from webapp.logs import safe

logger = logging.getLogger("webapp.mail")

EXTENSION_KEY = "webapp.outbox"
AFTER_COMMIT_KEY = "webapp.mail_after_commit"


@dataclass
class Outbox:
    """The background workers of one app and the jobs they have not finished."""

    executor: Executor
    pending: set[Future] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def init_app(app: Flask) -> None:
    mail.init_app(app)
    executor = ThreadPoolExecutor(max_workers=app.config["MAIL_WORKERS"], thread_name_prefix="mail")
    app.extensions[EXTENSION_KEY] = Outbox(executor=executor)
    if not event.contains(Session, "after_commit", _send_committed):
        event.listen(Session, "after_commit", _send_committed)
        event.listen(Session, "after_rollback", _drop_uncommitted)


def _outbox(app: Flask) -> Outbox:
    return app.extensions[EXTENSION_KEY]


def run_in_background(job: Callable[..., Any], *args: Any) -> None:
    """Run `job(*args)` in its own app context, off the request path.

    Pass plain values, not database objects: the job has its own session.
    A failing job is logged, never raised.
    """
    app = current_app._get_current_object()
    if app.config["MAIL_SEND_SYNC"]:
        _run(app, job, args)
        return
    outbox = _outbox(app)
    future = outbox.executor.submit(_run, app, job, args)
    with outbox.lock:
        outbox.pending.add(future)
    future.add_done_callback(lambda done: _forget(outbox, done))


def send_after_commit(job: Callable[..., Any], *args: Any) -> None:
    """Run `job(*args)` in the background once the current transaction commits.

    For mail that announces what the transaction stores (a link whose token
    it adds, a change it makes): a rollback drops the job, so nobody is
    mailed a link that does not exist or told of a change that did not happen.
    """
    db.session.info.setdefault(AFTER_COMMIT_KEY, []).append((job, args))


def _send_committed(session: Session) -> None:
    for job, args in session.info.pop(AFTER_COMMIT_KEY, []):
        run_in_background(job, *args)


def _drop_uncommitted(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)


def _forget(outbox: Outbox, future: Future) -> None:
    with outbox.lock:
        outbox.pending.discard(future)


def _run(app: Flask, job: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with app.app_context():
        try:
            job(*args)
        except Exception:
            logger.exception("mail job %s failed", getattr(job, "__name__", job))


def wait_for_mail(app: Flask, timeout: float = 10) -> bool:
    """Wait until every queued mail job has run; return whether they all did."""
    outbox = _outbox(app)
    with outbox.lock:
        pending = set(outbox.pending)
    if not pending:
        return True
    _done, not_done = wait_futures(pending, timeout=timeout)
    return not not_done


def send(
    to: str,
    subject: str,
    template: str,
    *,
    language: str | None = None,
    time_zone: str | None = None,
    **context: Any,
) -> None:
    """Send `templates/mail/<template>.txt` and `.html` to `to` (or log it, with no server).

    Written in the recipient's `language` and `time_zone` (English and UTC
    when not given), from a request, a background thread or the CLI alike:
    `subject` is translated here too (pass it marked with `_l`).
    """
    config = current_app.config
    with for_reader(language, time_zone):
        subject = str(subject)
        text = render_template(f"mail/{template}.txt", **context)
        html = render_template(f"mail/{template}.html", **context)
    if not config["MAIL_SERVER"]:
        _log_instead(to, subject, text)
        return
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=config["MAIL_DEFAULT_SENDER"], to=[to]
    )
    message.attach_alternative(html, "text/html")
    message.send()
    logger.info("mail %r sent to %s", subject, safe(to))


def _log_instead(to: str, subject: str, text: str) -> None:
    if current_app.config["ENV_NAME"] == "production":
        logger.error(
            "mail %r to %s not sent: MAIL_SERVER is not set (its text is not logged "
            "in production, where its link is a credential)",
            subject,
            safe(to),
        )
        return
    logger.info("MAIL_SERVER is not set; this mail is not sent, only logged:")
    logger.info("| To: %s", safe(to))
    logger.info("| Subject: %s", subject)
    for line in text.splitlines():
        logger.info("| %s", line)
