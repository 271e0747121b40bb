"""Fixtures: app -> client -> db -> users, on SQLite or on PostgreSQL.

The suite runs on SQLite by default and on PostgreSQL when
TEST_DATABASE_URL is set. The schema is created once per run; each test
starts from empty tables and the two built-in roles.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, select, text

os.environ["WEBAPP_ENV"] = "testing"
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")

from webapp import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Base, Role, User  # noqa: E402


def compile_catalogs() -> None:
    """Build each .mo from its .po when missing or older, as `make catalogs` does."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    catalogs = Path(__file__).resolve().parent.parent / "webapp" / "translations"
    for po in catalogs.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source)
            with mo.open("wb") as target:
                write_mo(target, catalog)


compile_catalogs()

TEST_PASSWORD = "Tr0ub4dor&3-horse"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def database_url(tmp_dir: Path, name: str = "webapp") -> str:
    """Return the URL of the test database: PostgreSQL if asked, else a SQLite file."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_dir / f'{name}.db'}"


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@pytest.fixture(scope="session")
def db_url(tmp_path_factory) -> str:
    url = database_url(tmp_path_factory.mktemp("db"))
    engine = create_engine(url)
    with engine.begin() as conn:
        if is_postgres(url):
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        Base.metadata.create_all(conn)
    engine.dispose()
    return url


def empty_tables(url: str) -> None:
    """Delete every row and put back the built-in roles."""
    engine = create_engine(url)
    names = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if is_postgres(url):
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - our table names
        conn.execute(
            Role.__table__.insert(),
            [
                {
                    "name": "admin",
                    "description": "Manages users, roles and the audit log",
                    "mfa_required": True,
                },
                {"name": "user", "description": "A member", "mfa_required": False},
            ],
        )
    engine.dispose()


class IsolatedClient(FlaskClient):
    """A test client whose requests run as in production: each in its own
    app context (own `g`, own database session), not in the test's."""

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            db.session.expire_all()  # the test's own session sees what the request wrote
        return response


@pytest.fixture
def app_config(db_url) -> dict:
    """Settings of the app under test; tests may change them before `app` is made."""
    return {
        "SQLALCHEMY_DATABASE_URI": db_url,
        "BCRYPT_ROUNDS": 4,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "MAIL_SERVER": "",
        "SERVER_NAME": None,
    }


@pytest.fixture
def smtp():
    """A real SMTP server on loopback; its mailbox holds what the app delivered."""
    from tests.smtp import smtp_server

    with smtp_server() as mailbox:
        yield mailbox


@pytest.fixture
def mail_config(smtp) -> dict:
    """Settings that send the app's mail to `smtp`, inline with the request."""
    return {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp.port,
        "MAIL_DEFAULT_SENDER": "keystone@example.org",
        "MAIL_SEND_SYNC": True,
    }


def serve(app_config: dict):
    """Yield an app on empty tables, inside its app context, then close its engine."""
    empty_tables(app_config["SQLALCHEMY_DATABASE_URI"])
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(app_config):
    yield from serve(app_config)


# Requests as a browser sends them over HTTPS (Flask-WTF checks the Referer there).
HTTPS = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/"}}


@pytest.fixture
def secure_app(monkeypatch, app_config):
    """The app with COOKIE_SECURE, as in production: __Host- cookies, Secure, HSTS."""
    monkeypatch.setenv("COOKIE_SECURE", "1")
    yield from serve(app_config)


def browser(app, user_agent: str = BROWSER_UA):
    """Return a test client that sends a browser's user agent."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


@pytest.fixture
def client(app):
    return browser(app)


@pytest.fixture
def new_client(app) -> Callable[..., object]:
    """Make another browser: its own cookie jar and user agent."""

    def make(user_agent: str = BROWSER_UA):
        return browser(app, user_agent)

    return make


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# The authenticator secrets of the users made with one, by user id, so
# `login` can complete the second step as the person's phone would.
TOTP_SECRETS: dict = {}


def enable_totp(user: User) -> str:
    """Turn the authenticator app on for `user` directly in the database; return its secret."""
    from webapp.security import two_factor

    secret = two_factor.new_secret()
    two_factor.add_authenticator(user, secret, accepted_step=0)
    db.session.commit()
    db.session.refresh(user)
    TOTP_SECRETS[user.id] = secret
    return secret


@pytest.fixture
def make_user(app) -> Callable[..., User]:
    """Create a user directly in the database; keyword arguments override defaults.

    A user whose role requires two-factor authentication (admin) gets an
    authenticator app, unless `two_factor=False`; `login` then types its code.
    """
    from webapp.domain.users import create_user

    counter = {"n": 0}

    def make(
        username: str | None = None,
        email: str | None = None,
        password: str = TEST_PASSWORD,
        role: str = "user",
        active: bool = True,
        two_factor: bool | None = None,
    ) -> User:
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        user = create_user(username, email or f"{username}@example.com", password, role)
        user.is_active = active
        db.session.commit()
        if two_factor or (two_factor is None and user.role.mfa_required):
            enable_totp(user)
        return user

    return make


@pytest.fixture
def user(make_user) -> User:
    return make_user("alice", "alice@example.com")


@pytest.fixture
def admin(make_user) -> User:
    return make_user("root-admin", "admin@example.com", role="admin")


def csrf_token(client, url: str, **kwargs) -> str:
    """Return the CSRF token of the form on the page at `url`."""
    page = client.get(url, **kwargs)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def post_form(client, url: str, data: dict | None = None, *, page: str | None = None, **kwargs):
    """POST a form as a browser would: with the CSRF token of the page showing it."""
    base = {"base_url": kwargs["base_url"]} if "base_url" in kwargs else {}
    fields = {"csrf_token": csrf_token(client, page or url, **base)}
    fields.update(data or {})
    return client.post(url, data=fields, **kwargs)


def login(client, identifier: str = "alice", password: str = TEST_PASSWORD, **extra):
    """Log in through the form; for an account with an authenticator app, type its code too.

    Returns the answer of the last step: the redirect after signing in, or
    the form with its error.
    """
    data = {"identifier": identifier, "password": password}
    if extra.pop("remember", False):
        data["remember"] = "y"
    data.update(extra)
    response = post_form(client, "/login", data)
    if response.status_code == 302 and response.headers["Location"] == "/login/verify":
        return post_form(client, "/login/verify", {"code": current_code(identifier)})
    return response


SETUP_KEY_RE = re.compile(r'<code class="setup-key" id="setup-key">([A-Z2-7 ]+)</code>')


def set_up_totp(client, sign_out_others: bool = True):
    """Turn the authenticator app on through the set-up page, as a person with
    a phone would; return the secret and the answer to "Turn on"."""
    import pyotp

    page = client.get("/account/security/totp").get_data(as_text=True)
    match = SETUP_KEY_RE.search(page)
    assert match, "no setup key on /account/security/totp"
    secret = match.group(1).replace(" ", "")
    data = {"code": pyotp.TOTP(secret).now()}
    if sign_out_others:
        data["sign_out_others"] = "y"
    response = post_form(client, "/account/security/totp", data)
    if response.status_code == 302:
        from webapp.security import two_factor

        found = db.session.scalars(
            select(two_factor.TotpAuthenticator).order_by(two_factor.TotpAuthenticator.id.desc())
        ).first()
        TOTP_SECRETS[found.user_id] = secret
    return secret, response


def current_code(identifier: str) -> str:
    """Return the current authenticator code of a user made with one.

    Each code works once; logging in again within its 30 seconds stands for
    a later code, so the user's last accepted step is forgotten first.
    """
    import pyotp
    from sqlalchemy import update

    from webapp.domain.users import find_user
    from webapp.models import TotpAuthenticator

    user = find_user(identifier)
    assert user is not None and user.id in TOTP_SECRETS, f"{identifier} has no known secret"
    db.session.execute(
        update(TotpAuthenticator).where(TotpAuthenticator.user_id == user.id).values(last_step=None)
    )
    db.session.commit()
    return pyotp.TOTP(TOTP_SECRETS[user.id]).now()


def cookie(client, name: str):
    """Return the client's cookie called `name`, or None."""
    return client.get_cookie(name)


class HeldJobs(list):
    """Background jobs held instead of run, as busy mail workers would hold them."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        self.append((fn, args))
        return Future()

    def run(self) -> None:
        """Run the held jobs, and any job they queue, each in its own app context."""
        while self:
            fn, args = self.pop(0)
            fn(*args)


@pytest.fixture
def held_jobs(app) -> HeldJobs:
    """Hold the app's background jobs (mail, quiet signups) until `held_jobs.run()`."""
    app.config["MAIL_SEND_SYNC"] = False
    held = HeldJobs()
    app.extensions["webapp.outbox"].executor = held
    return held


@pytest.fixture
def count_queries(app) -> Callable[[], object]:
    """Count the SQL statements run inside a `with count_queries() as n:` block."""

    @contextmanager
    def counting() -> Iterator[list[str]]:
        statements: list[str] = []

        def before(conn, cursor, statement, *args):
            statements.append(statement)

        with _before_each_statement(before):
            yield statements

    return counting


@contextmanager
def _before_each_statement(listener: Callable[..., None]) -> Iterator[None]:
    """Call `listener` before each statement the app's engine runs inside the block."""
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


@pytest.fixture
def query_plans(app) -> Callable[[Callable[[str], bool]], object]:
    """Collect the plan of each statement `wanted(sql)` picks inside a `with` block.

    Each plan is the text of EXPLAIN (PostgreSQL) or EXPLAIN QUERY PLAN
    (SQLite), run with the statement's own parameters. On PostgreSQL
    sequential scans are discouraged while explaining: test tables are
    small, and the question is which index the planner would use.
    """

    @contextmanager
    def explaining(wanted: Callable[[str], bool]) -> Iterator[list[str]]:
        plans: list[str] = []
        postgres = db.engine.dialect.name == "postgresql"

        def before(conn, cursor, statement, parameters, context, executemany):
            if executemany or not wanted(statement):
                return
            if postgres:
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("EXPLAIN " + statement, parameters)
                plans.append(str(cursor.fetchall()))
                cursor.execute("SET LOCAL enable_seqscan = on")
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                plans.append(str(cursor.fetchall()))

        with _before_each_statement(before):
            yield plans

    return explaining
