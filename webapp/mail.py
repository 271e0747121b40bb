"""Mail: written to an outbox with the change it announces, then delivered over SMTP.

Why Flask-Mailman rather than Flask-Mail: Flask-Mailman is a port of
Django's mail package, code that has carried Django's mail for well over a
decade. It refuses header values with newlines (no header injection
through a subject or an address), takes a connection timeout
(MAIL_TIMEOUT) so a hung SMTP server cannot hold a sender forever, builds
multipart text + HTML messages with `EmailMultiAlternatives`, and has
pluggable backends (smtp, console, file, locmem). Flask-Mail went ten years
without a release (0.9.1 in 2014 to 0.10.0 in 2024) and still has no
setting for a connection timeout and no pluggable backends.

The transactional outbox. `send` contacts no server: it writes one row to
`outbox` on the current transaction (the recipient, the template, the
subject and context encrypted with Fernet, since their links are
credentials, and a Message-ID) with its reader's language and time zone,
in which the sender renders the templates, whichever process it runs in
(the subject is translated when queued). A rollback drops the mail with the change;
a commit keeps it, whatever then happens to the process. A sender claims
due rows and delivers them:

- MAIL_WORKER=thread: a thread in each app process, started by its first
  request, woken by each commit that queued mail and every
  MAIL_POLL_SECONDS for mail other processes queued or that is due again.
- MAIL_WORKER=external: only `flask --app wsgi send-mail` workers.

A claim moves the row's `next_attempt_at` past the time the sender needs
(its lease) in one short transaction: on PostgreSQL the rows are picked
with SELECT ... FOR UPDATE SKIP LOCKED, so senders never wait for each
other; on SQLite, where writers take turns, by one conditional UPDATE. A
sender that dies holding mail leaves it to the next once the lease ends:
it may then go twice, with the same Message-ID, but it is never lost.
A mail the server did not take is tried again after 30 seconds, then after
twice the last wait (at most an hour) until MAIL_RETRY_HOURS have passed
since it was queued; then it is "failed", logged at ERROR. Its body is
deleted once it is sent or has failed; the row stays 7 days for
/admin/mail's counts (`purge_outbox`).

`run_in_background` keeps work off the request where a page's timing must
not tell anything (the reset page looks the address up after answering):
a small thread pool, each job in its own app context and transaction,
committed when it returns. MAIL_SEND_SYNC runs those jobs inline, and
MAIL_DELIVER_INLINE delivers due mail in the thread that committed it, right
after the commit (both on under WEBAPP_ENV=testing, so a test reads the
delivered mail after the response). With no MAIL_SERVER the mail is
written to the "webapp.mail" log, line by line, so a developer can follow
its link; in production it is not, because its link is a credential.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import secrets
import signal
import smtplib
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app, render_template
from flask_mailman import EmailMultiAlternatives
from sqlalchemy import and_, bindparam, delete, event, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from webapp.extensions import db, mail
from webapp.i18n import DEFAULT_LANGUAGE, DEFAULT_ZONE, for_reader, languages, valid_zone
from webapp.logs import safe
from webapp.models import MailStatus, OutboxMail, utc_now

logger = logging.getLogger("webapp.mail")

EXTENSION_KEY = "webapp.outbox"
QUEUED_KEY = "webapp.mail_queued"

FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
BATCH = 20
KEPT = timedelta(days=7)
BACKLOG_WARNING = timedelta(minutes=15)
BACKLOG_CHECK_SECONDS = 60

WAITING, SENT, FAILED = MailStatus.WAITING, MailStatus.SENT, MailStatus.FAILED
_OUTBOX = OutboxMail.__table__
_C = _OUTBOX.c
_INSERT = _OUTBOX.insert()
_CLAIMED = (
    _C.id,
    _C.message_id,
    _C.recipient,
    _C.template,
    _C.locale,
    _C.timezone,
    _C.body,
    _C.attempts,
    _C.created_at,
)
# Failures that end the connection: the batch's other mails wait for the next try.
_CONNECTION_ERRORS = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPNotSupportedError,
)


class Sender:
    """The sender thread of one app process (MAIL_WORKER=thread)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self.lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start the thread in this process (a forked worker has none) unless it runs."""
        if self.pid == os.getpid() or self.stopping.is_set():
            return
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.wake = threading.Event()
            self.thread = threading.Thread(target=self._run, name="mail-sender", daemon=True)
            self.thread.start()
            atexit.register(self.stop)

    def stop(self, timeout: float | None = None) -> None:
        """Finish the mail in hand, leave the rest to others, and end the thread."""
        self.stopping.set()
        self.wake.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.app.config["MAIL_TIMEOUT"] + 5 if timeout is None else timeout)

    def _run(self) -> None:
        poll = self.app.config["MAIL_POLL_SECONDS"]
        backlog = BacklogWatch()
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                with self.app.app_context():
                    deliver_due(self.stopping)
                    backlog.check()
            except Exception:
                logger.exception("the mail sender's pass failed; it tries again")
            self.wake.wait(poll)


@dataclass
class Outbox:
    """The background jobs of one app and its sender thread, if it has one."""

    executor: Executor
    pending: set[Future] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sender: Sender | None = None


def init_app(app: Flask) -> None:
    mail.init_app(app)
    executor = ThreadPoolExecutor(max_workers=app.config["MAIL_WORKERS"], thread_name_prefix="mail")
    outbox = Outbox(executor=executor)
    app.extensions[EXTENSION_KEY] = outbox
    if app.config["MAIL_WORKER"] == "thread" and not app.config["MAIL_DELIVER_INLINE"]:
        outbox.sender = sender = Sender(app)
        # Started by the first request of each process, never by a command
        # (`flask db upgrade` must not start sending).
        app.before_request(sender.ensure_running)
    app.teardown_appcontext(_warn_of_uncommitted_mail)
    if not event.contains(Session, "after_commit", _queued_mail_committed):
        event.listen(Session, "after_commit", _queued_mail_committed)
        event.listen(Session, "after_rollback", _queued_mail_dropped)


def _outbox(app: Flask) -> Outbox:
    return app.extensions[EXTENSION_KEY]


def stop_sender(app: Flask, timeout: float | None = None) -> None:
    """Stop this app's sender thread, if it has one (tests, and an orderly exit)."""
    sender = _outbox(app).sender
    if sender is not None:
        sender.stop(timeout)


# --- queueing -----------------------------------------------------------------


def send(
    to: str,
    subject: str,
    template: str,
    *,
    language: str | None = None,
    time_zone: str | None = None,
    **context: Any,
) -> None:
    """Queue `templates/mail/<template>.txt` and `.html` for `to`, in the current transaction.

    The mail goes out once the transaction commits, and never if it rolls
    back. It is written in the recipient's `language` and `time_zone`
    (English and UTC when not given): the subject and any lazy text in
    `context` are translated now (pass them marked with `_l`), the
    templates when the mail is delivered, by whichever sender takes it.
    `context` holds plain values (text, numbers, datetimes, None).
    """
    config = current_app.config
    now = utc_now()
    # Stored as for_reader reads them, so every sender writes it the same way.
    locale = language if language in languages() else DEFAULT_LANGUAGE
    zone_name = valid_zone(time_zone) or DEFAULT_ZONE
    with for_reader(locale, zone_name):
        payload = json.dumps(
            {"subject": str(subject), "context": context}, default=_plain, separators=(",", ":")
        )
    db.session.connection().execute(
        _INSERT,
        {
            "message_id": _message_id(config),
            "recipient": to,
            "template": template,
            "locale": locale,
            "timezone": zone_name,
            "body": _fernet(config).encrypt(payload.encode("utf-8")).decode("ascii"),
            "status": WAITING,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        },
    )
    db.session.info[QUEUED_KEY] = True


def send_after_commit(job: Callable[..., Any], *args: Any) -> None:
    """Run `job(*args)` now: the mail it queues is written in the current transaction.

    So it goes out only once that transaction commits: nobody is mailed a
    link that does not exist or told of a change that did not happen.
    """
    job(*args)


def _queued_mail_committed(session: Session) -> None:
    if not session.info.pop(QUEUED_KEY, False):
        return
    app = current_app._get_current_object()
    if app.config["MAIL_DELIVER_INLINE"]:
        deliver_due()
        return
    sender = _outbox(app).sender
    if sender is not None:
        sender.ensure_running()
        sender.wake.set()


def _queued_mail_dropped(session: Session) -> None:
    session.info.pop(QUEUED_KEY, None)


def _warn_of_uncommitted_mail(exc: BaseException | None) -> None:
    """Say so when mail was queued and its transaction then neither committed nor rolled back.

    That mail is dropped with the transaction: the code that queued it
    should have committed after queuing (a notice goes before the commit).
    """
    if exc is None and db.session.registry.has() and db.session().info.get(QUEUED_KEY):
        logger.warning(
            "mail was queued in a transaction that ended without a commit: it is not sent"
        )


def _plain(value: Any) -> Any:
    """Encode what JSON has no type for: datetimes tagged, lazy texts as text."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if hasattr(value, "__html__") or type(value).__name__ == "LazyString":
        return str(value)
    raise TypeError(f"a mail's context cannot hold {type(value).__name__}")


def _unplain(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$datetime" in obj:
        return datetime.fromisoformat(obj["$datetime"])
    return obj


def _message_id(config: dict[str, Any]) -> str:
    """A Message-ID made when the mail is queued, the same at every try."""
    host = urlsplit(config["PUBLIC_URL"]).hostname or "localhost"
    return f"<{secrets.token_hex(16)}@{host}>"


_FERNETS: dict[str, Fernet] = {}


def _fernet(config: dict[str, Any]) -> Fernet:
    """The key of waiting mail: derived from SECRET_KEY by HKDF, as the authenticator secrets'.

    A mail waits at most MAIL_RETRY_HOURS, and its links are signed with
    SECRET_KEY anyway, so it needs no key of its own to survive a rotation.
    """
    secret = config["SECRET_KEY"]
    fernet = _FERNETS.get(secret)
    if fernet is None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"keystone mail bodies"
        ).derive(secret.encode("utf-8"))
        fernet = _FERNETS[secret] = Fernet(base64.urlsafe_b64encode(key))
    return fernet


# --- background jobs ----------------------------------------------------------------


def run_in_background(job: Callable[..., Any], *args: Any) -> None:
    """Run `job(*args)` in its own app context and transaction, off the request path.

    Pass plain values, not database objects: the job has its own session,
    committed when the job returns (with the mail it queued) and rolled
    back if it raises. A failing job is logged, never raised.
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


def _forget(outbox: Outbox, future: Future) -> None:
    with outbox.lock:
        outbox.pending.discard(future)


def _run(app: Flask, job: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with app.app_context():
        try:
            job(*args)
            db.session.commit()
        except Exception:
            db.session.rollback()
            logger.exception("mail job %s failed", getattr(job, "__name__", job))


def wait_for_mail(app: Flask, timeout: float = 10) -> bool:
    """Wait until every queued background job has run; return whether they all did."""
    outbox = _outbox(app)
    with outbox.lock:
        pending = set(outbox.pending)
    if not pending:
        return True
    _done, not_done = wait_futures(pending, timeout=timeout)
    return not not_done


# --- delivery -----------------------------------------------------------------


def deliver_due(stopping: threading.Event | None = None) -> int:
    """Claim and deliver the mail that is due, a batch at a time; return how many went.

    Stops after the mail in hand once `stopping` is set, handing back the
    rest of its batch.
    """
    delivered = 0
    while not (stopping and stopping.is_set()):
        batch = _claim()
        if batch:
            delivered += _deliver(batch, stopping)
        if len(batch) < BATCH:
            break
    return delivered


def _lease() -> timedelta:
    """How long a claimed batch is ours: every mail in it timing out, and a margin."""
    return timedelta(seconds=BATCH * current_app.config["MAIL_TIMEOUT"] + 60)


@dataclass(frozen=True)
class Claimed:
    row: Row
    claim: str


# The claim's statements, composed once.
_DUE = (
    select(_C.id)
    .where(_C.status == WAITING, _C.next_attempt_at <= bindparam("now"))
    .order_by(_C.next_attempt_at, _C.id)
)
_ANY_DUE = _DUE.limit(1)
_DUE_SKIP_LOCKED = _DUE.limit(BATCH).with_for_update(skip_locked=True)
_TAKE = update(_OUTBOX).values(
    next_attempt_at=bindparam("lease_end"),
    claim=bindparam("new_claim"),
    attempts=_C.attempts + 1,
)
_TAKE_IDS = _TAKE.where(_C.id.in_(bindparam("ids", expanding=True))).returning(*_CLAIMED)
# SQLite: one statement, run under the database's write lock, so its
# condition is checked against what other senders committed.
_TAKE_DUE = _TAKE.where(
    _C.id.in_(_DUE.limit(BATCH).scalar_subquery()),
    _C.status == WAITING,
    _C.next_attempt_at <= bindparam("now"),
).returning(*_CLAIMED)


def _claim() -> list[Claimed]:
    now = utc_now()
    values = {"now": now, "lease_end": now + _lease(), "new_claim": secrets.token_hex(16)}
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            ids = connection.scalars(_DUE_SKIP_LOCKED, values).all()
            if not ids:
                return []
            rows = connection.execute(_TAKE_IDS, {**values, "ids": ids}).all()
        else:
            if connection.execute(_ANY_DUE, values).first() is None:
                return []  # nothing due: no write lock taken
            rows = connection.execute(_TAKE_DUE, values).all()
    return [Claimed(row, values["new_claim"]) for row in sorted(rows, key=lambda row: row.id)]


def _deliver(batch: list[Claimed], stopping: threading.Event | None) -> int:
    """Send a claimed batch over one SMTP connection; return how many the server took."""
    config = current_app.config
    connection = mail.get_connection() if config["MAIL_SERVER"] else None
    delivered = 0
    try:
        for index, claimed in enumerate(batch):
            if stopping and stopping.is_set():
                _hand_back(batch[index:])
                break
            try:
                message = _message(claimed.row)
            except Exception as exc:  # noqa: BLE001 - unreadable or unrenderable: it never will be
                _give_up(claimed, exc)
                continue
            if connection is None:
                _log_instead(claimed.row.recipient, message.subject, message.body)
                _finish(claimed, SENT if config["ENV_NAME"] != "production" else FAILED)
                continue
            try:
                connection.open()
                connection.send_messages([message])
            except ValueError as exc:  # a header with a newline: it never will go
                _give_up(claimed, exc)
                continue
            except (smtplib.SMTPException, OSError) as exc:
                _try_again(claimed, exc)
                if _connection_lost(exc):
                    # Down, refusing or timing out: the rest of the batch waits too.
                    for later in batch[index + 1 :]:
                        _try_again(later, exc, quiet=True)
                    break
                continue
            _finish(claimed, SENT)
            logger.info("mail %s sent to %s", claimed.row.template, safe(claimed.row.recipient))
            delivered += 1
    finally:
        if connection is not None:
            _close(connection)
    return delivered


def _connection_lost(exc: BaseException) -> bool:
    """Whether a failure ended the conversation (not one message refused, as by a 451)."""
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)


def _close(connection: Any) -> None:
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        smtp, connection.connection = connection.connection, None
        if smtp is not None:
            smtp.close()


def _message(row: Row) -> EmailMultiAlternatives:
    """Decrypt and render a claimed mail, in its reader's language and time zone."""
    config = current_app.config
    try:
        payload = _fernet(config).decrypt(row.body.encode("ascii"))
    except (InvalidToken, AttributeError) as exc:
        raise ValueError("the mail's body cannot be read (SECRET_KEY changed?)") from exc
    data = json.loads(payload, object_hook=_unplain)
    context = data["context"]
    with for_reader(row.locale, row.timezone):
        text = render_template(f"mail/{row.template}.txt", **context)
        html = render_template(f"mail/{row.template}.html", **context)
    message = EmailMultiAlternatives(
        subject=data["subject"],
        body=text,
        from_email=config["MAIL_DEFAULT_SENDER"],
        to=[row.recipient],
        headers={"Message-ID": row.message_id},
    )
    message.attach_alternative(html, "text/html")
    return message


_FINISH = (
    update(_OUTBOX)
    .where(_C.id == bindparam("mail_id"), _C.claim == bindparam("mail_claim"))
    .values(
        status=bindparam("new_status"),
        body=None,
        claim=None,
        next_attempt_at=None,
        finished_at=bindparam("now"),
    )
)
_RETRY = (
    update(_OUTBOX)
    .where(_C.id == bindparam("mail_id"), _C.claim == bindparam("mail_claim"))
    .values(next_attempt_at=bindparam("when"), claim=None, attempts=bindparam("tries"))
)


def _finish(claimed: Claimed, status: str) -> None:
    """Mark a claimed mail sent or failed and delete its body."""
    with db.engine.begin() as connection:
        done = connection.execute(
            _FINISH,
            {
                "mail_id": claimed.row.id,
                "mail_claim": claimed.claim,
                "new_status": status,
                "now": utc_now(),
            },
        ).rowcount
    if not done:
        logger.warning(
            "mail %s (Message-ID %s) was taken by another sender while this one held it",
            claimed.row.id,
            claimed.row.message_id,
        )


def _give_up(claimed: Claimed, exc: BaseException) -> None:
    _finish(claimed, FAILED)
    logger.error(
        "mail %s to %s failed and will not be tried again: %s",
        claimed.row.template,
        safe(claimed.row.recipient),
        _describe(exc),
    )


def _try_again(claimed: Claimed, exc: BaseException, quiet: bool = False) -> None:
    """Put a mail the server did not take back in the queue, or give it up when it is too late."""
    row = claimed.row
    now = utc_now()
    deadline = row.created_at + timedelta(hours=current_app.config["MAIL_RETRY_HOURS"])
    if now >= deadline:
        _finish(claimed, FAILED)
        logger.error(
            "mail %s to %s failed: not delivered in %d tries over %s hours (%s)",
            row.template,
            safe(row.recipient),
            row.attempts,
            current_app.config["MAIL_RETRY_HOURS"],
            _describe(exc),
        )
        return
    wait = min(FIRST_RETRY * 2 ** max(row.attempts - 1, 0), LONGEST_WAIT)
    when = min(now + wait, deadline)
    with db.engine.begin() as connection:
        connection.execute(
            _RETRY,
            {"mail_id": row.id, "mail_claim": claimed.claim, "when": when, "tries": row.attempts},
        )
    if not quiet:
        logger.warning(
            "mail %s to %s not delivered (try %d: %s); trying again at %s",
            row.template,
            safe(row.recipient),
            row.attempts,
            _describe(exc),
            when.strftime("%H:%M:%S UTC"),
        )


def _hand_back(batch: list[Claimed]) -> None:
    """Give claimed mail back at once, untried (this sender is stopping)."""
    now = utc_now()
    with db.engine.begin() as connection:
        for claimed in batch:
            connection.execute(
                _RETRY,
                {
                    "mail_id": claimed.row.id,
                    "mail_claim": claimed.claim,
                    "when": now,
                    "tries": claimed.row.attempts - 1,
                },
            )


def _describe(exc: BaseException) -> str:
    """Name a failure without its text (an SMTP reply may quote the address)."""
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


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


# --- the external worker, the backlog, the counts, the purge ----------------------


def run_worker(once: bool = False) -> int:
    """Deliver the outbox until SIGTERM or SIGINT (`flask send-mail`); return how many went.

    A signal lets the mail in hand finish; the rest of its batch goes back
    to the queue for the other workers. With `once`, deliver what is due and return.
    """
    if once:
        return deliver_due()
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    poll = current_app.config["MAIL_POLL_SECONDS"]
    backlog = BacklogWatch()
    delivered = 0
    logger.info("mail worker started (pid %d)", os.getpid())
    try:
        while not stopping.is_set():
            try:
                delivered += deliver_due(stopping)
                backlog.check()
            except Exception:
                logger.exception("the mail worker's pass failed; it tries again")
            stopping.wait(poll)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return delivered


class BacklogWatch:
    """Log at WARNING, at most once a minute, while the oldest waiting mail is 15+ minutes old."""

    def __init__(self) -> None:
        self.next_check = 0.0

    def check(self) -> None:
        now = utc_now()
        if now.timestamp() < self.next_check:
            return
        self.next_check = now.timestamp() + BACKLOG_CHECK_SECONDS
        age = oldest_waiting_age(now)
        if age is not None and age > BACKLOG_WARNING:
            logger.warning(
                "the oldest waiting mail was queued %d minutes ago: is the SMTP server reachable?",
                age.total_seconds() // 60,
            )


def oldest_waiting_age(now: datetime | None = None) -> timedelta | None:
    """How long the oldest waiting mail has waited, or None when none waits."""
    now = now or utc_now()
    with db.engine.connect() as connection:
        oldest = connection.scalar(select(func.min(_C.created_at)).where(_C.status == WAITING))
    return None if oldest is None else now - oldest


@dataclass(frozen=True)
class DeliveryCounts:
    """What /admin/mail shows: numbers and an age, never an address or a link."""

    waiting: int
    sent: int
    failed: int
    oldest_waiting: timedelta | None


def delivery_counts(now: datetime | None = None) -> DeliveryCounts:
    """Count the waiting mail, and the mail sent and failed in the last 24 hours."""
    now = now or utc_now()
    since = now - timedelta(hours=24)
    statement = select(
        func.count().filter(_C.status == WAITING),
        func.count().filter(and_(_C.status == SENT, _C.finished_at >= since)),
        func.count().filter(and_(_C.status == FAILED, _C.finished_at >= since)),
    )
    with db.engine.connect() as connection:
        waiting, sent, failed = connection.execute(statement).one()
    return DeliveryCounts(waiting, sent, failed, oldest_waiting_age(now) if waiting else None)


def purge_outbox(now: datetime | None = None) -> int:
    """Delete the rows of mail sent or failed more than 7 days ago; return how many."""
    before = (now or utc_now()) - KEPT
    with db.engine.begin() as connection:
        return connection.execute(
            delete(_OUTBOX).where(_C.status != WAITING, _C.finished_at < before)
        ).rowcount
