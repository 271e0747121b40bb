"""Two app processes on one PostgreSQL database and one Redis: every promise holds.

Processes A and B are separate gunicorn servers (one worker each) on two
loopback ports, sharing the database, the rate-limit storage and the
SECRET_KEY, as two hosts behind a load balancer would. A browser here is a
`requests.Session`: its cookie jar sends the same cookies to either port,
as a browser does to one site whichever host answers.

This test always runs on PostgreSQL (a database of its own, derived from
TEST_DATABASE_URL or `scaleout`) and Redis db 7, and is skipped only when
they cannot be reached. Both deliver mail from the one outbox to one SMTP
server (tests/smtp.py), each with its sender thread.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import URL, make_url

from tests.databases import fresh_postgres_database
from tests.smtp import Mailbox, SmtpServer

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/7"
SECRET_KEY = "scale-out-shared-secret-key-" + "0123456789abcdef" * 2
PASSWORD = "Sc4le-0ut-horse-battery"
ADMIN_PASSWORD = "Adm1n-Sc4le-0ut-staple"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SETUP_KEY_RE = re.compile(r'id="setup-key">([A-Z2-7 ]+)<')
LOGIN_LIMIT = 8  # per-IP login attempts per hour, set for this test


def scale_out_database_url() -> URL:
    """Return this test's own PostgreSQL database, next to the suite's if there is one."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if base.startswith("postgresql"):
        url = make_url(base)
        return url.set(database=f"{url.database}_scaleout")
    return make_url("postgresql+psycopg://postgres@127.0.0.1:5432/scaleout")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(url: URL) -> None:
    """Create the database if missing and empty it (the servers migrate it)."""
    fresh_postgres_database(url, url.database)


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


# Production requires the token API's signing key; both processes share it.
JWT_PRIVATE_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)


def app_env(url: URL, smtp_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TEST_DATABASE_URL", None)
    env.update(
        WEBAPP_ENV="production",
        COOKIE_SECURE="0",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=url.render_as_string(hide_password=False),
        RATELIMIT_ENABLED="1",
        RATELIMIT_STORAGE_URI=REDIS_URL,
        RATELIMIT_LOGIN=f"{LOGIN_LIMIT} per hour",
        RATELIMIT_SIGNUP="100 per hour",
        BCRYPT_ROUNDS="4",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_port),
        MAIL_DEFAULT_SENDER="keystone@example.org",
        MAIL_POLL_SECONDS="1",
        JWT_PRIVATE_KEY=JWT_PRIVATE_KEY,
    )
    return env


def flask_cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_server(name: str, env: dict[str, str], log: Path) -> Server:
    """Start one gunicorn process with one worker and wait until it answers."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if requests.get(server.url + "/healthz", timeout=5).status_code == 200:
                    return server
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"app process {name} did not start:\n{server.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        stop_server(server)
        raise


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@dataclass
class Cluster:
    a: Server
    b: Server
    url: URL
    mailbox: Mailbox


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    url = scale_out_database_url()
    if not reachable(url.host or "127.0.0.1", url.port or 5432):
        pytest.skip(f"PostgreSQL is not reachable at {url.host}:{url.port or 5432}")
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    prepare_database(url)
    flush_redis()
    smtp = SmtpServer()
    smtp.start()
    env = app_env(url, smtp.mailbox.port)
    flask_cli(env, "db", "upgrade")
    flask_cli(
        env,
        "create-admin",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        "--password-stdin",
        stdin=ADMIN_PASSWORD + "\n",
    )
    logs = tmp_path_factory.mktemp("scale-out")
    try:
        a = start_server("A", env, logs / "a.log")
        try:
            b = start_server("B", env, logs / "b.log")
        except BaseException:
            stop_server(a)
            raise
        try:
            yield Cluster(a, b, url, smtp.mailbox)
        finally:
            stop_server(a)
            stop_server(b)
    finally:
        smtp.stop()


@pytest.fixture(autouse=True)
def fresh_limits() -> None:
    """Each test starts with no rate-limit or backoff counts (they live in Redis)."""
    if reachable("127.0.0.1", 6379):
        flush_redis()


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    """A browser: one cookie jar, whichever process answers."""
    sessions: list[requests.Session] = []

    def make() -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


def get(session: requests.Session, server: Server, path: str) -> requests.Response:
    return session.get(server.url + path, allow_redirects=False, timeout=30)


def post_form(
    session: requests.Session, server: Server, path: str, data: dict, page: str | None = None
) -> requests.Response:
    """Submit a form as a browser does: with the CSRF token of the page showing it."""
    shown = get(session, server, page or path)
    assert shown.status_code == 200, (server.name, page or path, shown.status_code)
    match = CSRF_RE.search(shown.text)
    assert match, f"no CSRF token on {page or path} from {server.name}"
    return session.post(
        server.url + path,
        data={"csrf_token": match.group(1), **data},
        allow_redirects=False,
        timeout=30,
    )


def sign_up(session: requests.Session, server: Server, username: str) -> None:
    response = post_form(
        session,
        server,
        "/signup",
        {
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
        },
    )
    assert response.status_code == 302, (server.name, response.status_code, response.text[-500:])


def log_in(
    session: requests.Session,
    server: Server,
    username: str,
    password: str = PASSWORD,
    remember: bool = False,
) -> requests.Response:
    data = {"identifier": username, "password": password}
    if remember:
        data["remember"] = "y"
    return post_form(session, server, "/login", data)


def set_up_totp(session: requests.Session, server: Server) -> str:
    """Turn the authenticator app on through `server`'s pages; return its secret."""
    page = get(session, server, "/account/security/totp")
    assert page.status_code == 200, (server.name, page.status_code)
    secret = SETUP_KEY_RE.search(page.text).group(1).replace(" ", "")
    code = pyotp.TOTP(secret).now()
    done = post_form(session, server, "/account/security/totp", {"code": code})
    assert done.status_code == 302, (server.name, done.status_code, done.text[-500:])
    return secret


def assert_signed_in(session: requests.Session, server: Server, username: str) -> None:
    page = get(session, server, "/account")
    assert page.status_code == 200, (server.name, page.status_code, page.headers.get("Location"))
    assert username in page.text


def assert_signed_out(session: requests.Session, server: Server) -> None:
    page = get(session, server, "/account")
    assert page.status_code == 302, (server.name, page.status_code)
    assert page.headers["Location"].startswith("/login")


def drop_session_cookie(session: requests.Session) -> None:
    """Close the browser: the session cookie goes, the remember cookie stays."""
    session.cookies.clear(domain="127.0.0.1", path="/", name="session")


def test_device_revoked_through_b_is_signed_out_through_a(cluster, browser):
    laptop, phone = browser(), browser()
    sign_up(laptop, cluster.a, "alice")
    assert_signed_in(laptop, cluster.a, "alice")

    assert log_in(phone, cluster.b, "alice").status_code == 302
    devices = get(phone, cluster.b, "/account/devices")
    assert devices.status_code == 200
    # The phone's own row has no Revoke button: the only revoke form is the laptop's.
    (revoke_path,) = re.findall(r'action="(/account/devices/\d+/revoke)"', devices.text)
    revoked = post_form(phone, cluster.b, revoke_path, {}, page="/account/devices")
    assert revoked.status_code == 302

    assert_signed_out(laptop, cluster.a)
    assert_signed_out(laptop, cluster.b)
    assert_signed_in(phone, cluster.a, "alice")


def test_remember_cookie_rotated_through_a_works_through_b(cluster, browser):
    laptop = browser()
    sign_up(browser(), cluster.a, "bob")
    assert log_in(laptop, cluster.b, "bob", remember=True).status_code == 302
    first = laptop.cookies.get("remember")
    assert first

    drop_session_cookie(laptop)
    assert_signed_in(laptop, cluster.a, "bob")
    rotated = laptop.cookies.get("remember")
    assert rotated and rotated != first

    drop_session_cookie(laptop)
    assert_signed_in(laptop, cluster.b, "bob")
    assert laptop.cookies.get("remember") not in {first, rotated}
    assert_signed_in(laptop, cluster.a, "bob")


def test_failed_logins_through_a_and_b_count_toward_one_throttle(cluster, browser):
    sign_up(browser(), cluster.a, "carol")
    attacker = browser()
    # Five failures for one account, spread over both processes: neither saw five.
    for server in (cluster.a, cluster.b, cluster.a, cluster.b, cluster.a):
        failed = log_in(attacker, server, "carol", password="wrong-password-1")
        assert failed.status_code == 200
        assert "Invalid username/email or password." in failed.text

    # The account now waits, whichever process is asked, even for the right password.
    waiting = log_in(browser(), cluster.b, "carol")
    assert waiting.status_code == 429
    assert "Too many failed attempts" in waiting.text

    # The per-IP limit counts every attempt from this address on both processes too.
    sent = 6
    while sent < LOGIN_LIMIT:
        server = (cluster.a, cluster.b)[sent % 2]
        assert log_in(attacker, server, f"nobody{sent}", "wrong").status_code == 200
        sent += 1
    assert log_in(attacker, cluster.a, "nobody", "wrong").status_code == 429
    assert log_in(attacker, cluster.b, "nobody", "wrong").status_code == 429


def test_admin_deactivation_through_b_signs_the_user_out_through_a(cluster, browser):
    user, admin = browser(), browser()
    sign_up(user, cluster.a, "dave")
    assert_signed_in(user, cluster.a, "dave")

    assert log_in(admin, cluster.b, "ops", ADMIN_PASSWORD).status_code == 302
    # Made by `flask create-admin`, the admin sets up two-factor at the first sign-in.
    assert get(admin, cluster.b, "/admin/").headers["Location"] == "/account/security"
    set_up_totp(admin, cluster.a)
    listing = get(admin, cluster.b, "/admin/users?q=dave")
    assert listing.status_code == 200
    (detail,) = set(re.findall(r'href="(/admin/users/[0-9a-f-]{36})"', listing.text))
    done = post_form(admin, cluster.b, detail, {"action": "deactivate"})
    assert done.status_code == 302
    assert "Deactivated" in get(admin, cluster.b, detail).text

    assert_signed_out(user, cluster.a)
    assert log_in(browser(), cluster.a, "dave").status_code == 200  # refused, not signed in


def test_an_authenticator_code_is_accepted_once_across_a_and_b(cluster, browser):
    owner = browser()
    sign_up(owner, cluster.a, "erin")
    secret = set_up_totp(owner, cluster.a)
    # The set-up spent the current step: the next code is the one the app shows next.
    code = pyotp.TOTP(secret).at(time.time() + 30)

    laptop, thief = browser(), browser()
    assert log_in(laptop, cluster.a, "erin").headers["Location"] == "/login/verify"
    assert log_in(thief, cluster.b, "erin").headers["Location"] == "/login/verify"
    first = post_form(laptop, cluster.a, "/login/verify", {"code": code})
    assert first.status_code == 302 and first.headers["Location"] == "/account"
    replayed = post_form(thief, cluster.b, "/login/verify", {"code": code})
    assert replayed.status_code == 200 and "That code is not right." in replayed.text
    assert_signed_in(laptop, cluster.b, "erin")
    assert_signed_out(thief, cluster.a)


def test_a_and_b_deliver_200_queued_mails_each_exactly_once(cluster):
    from webapp import create_app
    from webapp.extensions import db
    from webapp.mail import send
    from webapp.models import utc_now

    queuing = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": cluster.url.render_as_string(hide_password=False),
            "SECRET_KEY": SECRET_KEY,
            "MAIL_WORKER": "external",
            "MAIL_DELIVER_INLINE": False,
        }
    )
    mailbox = cluster.mailbox
    mailbox.delay = 0.01  # long enough that both senders are at it together
    with queuing.app_context():
        for number in range(200):
            send(
                f"crowd{number}@example.com",
                "Your Keystone password was changed",
                "password_changed",
                username=f"crowd{number}",
                browser="Firefox on Linux",
                when=utc_now(),
                ip=None,
                reset_link="http://localhost:5000/reset-password",
            )
        db.session.commit()
        db.engine.dispose()

    def crowd() -> list:
        return [m for m in list(mailbox.messages) if str(m["To"]).startswith("crowd")]

    deadline = time.monotonic() + 90
    while len(crowd()) < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # a second chance for any duplicate to arrive
    message_ids = [message["Message-ID"] for message in crowd()]
    assert len(message_ids) == 200 and len(set(message_ids)) == 200
    # Both processes took part: their logs name the mail each sent.
    sent = [server.log.read_text().count("sent to crowd") for server in (cluster.a, cluster.b)]
    assert sum(sent) == 200 and min(sent) > 0, sent


# --- the token API across processes ---------------------------------------------------


def api(session: requests.Session, server: Server, method: str, path: str, **kwargs):
    return session.request(method, server.url + "/api/v1" + path, timeout=30, **kwargs)


def app_sign_in(session: requests.Session, server: Server, username: str) -> dict:
    response = api(
        session,
        server,
        "POST",
        "/auth/token",
        json={"username": username, "password": PASSWORD, "device_name": "Phone"},
    )
    assert response.status_code == 200, (server.name, response.status_code, response.text)
    return response.json()


def me(session: requests.Session, server: Server, tokens: dict) -> requests.Response:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    return api(session, server, "GET", "/me", headers=headers)


def refresh(session: requests.Session, server: Server, token: str) -> requests.Response:
    return api(session, server, "POST", "/auth/refresh", json={"refresh_token": token})


def test_app_tokens_rotate_across_a_and_b_and_a_replay_is_theft(cluster, browser):
    sign_up(browser(), cluster.a, "frank")
    app = browser()
    first = app_sign_in(app, cluster.a, "frank")
    assert me(app, cluster.b, first).status_code == 200  # B verifies A's token

    second = refresh(app, cluster.b, first["refresh_token"])
    assert second.status_code == 200
    third = refresh(app, cluster.a, second.json()["refresh_token"])
    assert third.status_code == 200
    assert me(app, cluster.b, third.json()).status_code == 200

    # The first refresh token, replaced twice, comes back through B: the device is stolen.
    replay = refresh(browser(), cluster.b, first["refresh_token"])
    assert replay.status_code == 401 and replay.json()["code"] == "invalid_grant"
    assert me(app, cluster.a, third.json()).status_code == 401
    assert refresh(app, cluster.a, third.json()["refresh_token"]).status_code == 401


def test_an_app_revoked_through_b_stops_through_a(cluster, browser):
    owner, app = browser(), browser()
    sign_up(owner, cluster.a, "gina")
    tokens = app_sign_in(app, cluster.a, "gina")
    devices = get(owner, cluster.b, "/account/devices")
    assert "Phone" in devices.text and "App" in devices.text
    revoke_path = f"/account/devices/{tokens['device_id']}/revoke"
    assert revoke_path in devices.text
    revoked = post_form(owner, cluster.b, revoke_path, {}, page="/account/devices")
    assert revoked.status_code == 302
    assert me(app, cluster.a, tokens).status_code == 401
    assert refresh(app, cluster.a, tokens["refresh_token"]).status_code == 401


def test_an_mfa_token_is_single_use_across_a_and_b(cluster, browser):
    owner = browser()
    sign_up(owner, cluster.a, "hank")
    secret = set_up_totp(owner, cluster.a)
    step = api(
        browser(),
        cluster.a,
        "POST",
        "/auth/token",
        json={"username": "hank", "password": PASSWORD, "device_name": "Phone"},
    )
    assert step.status_code == 401 and step.json()["code"] == "mfa_required"
    mfa_token = step.json()["mfa_token"]
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the set-up spent the current step
    done = api(
        browser(), cluster.b, "POST", "/auth/token/mfa", json={"mfa_token": mfa_token, "code": code}
    )
    assert done.status_code == 200, done.text
    again = api(
        browser(),
        cluster.a,
        "POST",
        "/auth/token/mfa",
        json={"mfa_token": mfa_token, "code": pyotp.TOTP(secret).at(time.time() + 60)},
    )
    assert again.status_code == 401 and again.json()["code"] == "invalid_grant"
