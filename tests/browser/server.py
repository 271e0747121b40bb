"""The app as a browser meets it: gunicorn on a loopback port, a fresh database, real SMTP.

Shared by the browser tests (tests/browser/conftest.py) and scripts/screenshots.py.
"""

from __future__ import annotations

import email
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import make_url

from tests.databases import fresh_postgres_database

ROOT = Path(__file__).resolve().parents[2]
# The browser the tests and `make screenshots` drive: Debian's by default.
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET_KEY = "browser-tests-secret-key-not-for-production"


def free_port() -> int:
    """Return a TCP port nobody listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(tmp_dir: Path, name: str = "browser") -> str:
    """Return the URL of an empty database: SQLite in tmp_dir, or `<db>_<name>` on PostgreSQL.

    On PostgreSQL (TEST_DATABASE_URL set) the browser tests get a database of
    their own next to the suite's, so a live server never races the suite's
    fixtures that empty tables; its schema is dropped and created again.
    """
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_dir / f'{name}.db'}"
    return fresh_postgres_database(base, f"{make_url(base).database}_{name}")


def _tool(name: str) -> list[str]:
    """Return the command for a console script of this Python's environment."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-m", name]


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message delivered to it."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        message = email.message_from_bytes(envelope.content, policy=default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """Return the messages delivered to `address`, oldest first."""
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """Run an SMTP server on a free loopback port for the length of the block."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@dataclass
class LiveServer:
    """A running app: its base URL, its database, and the environment it was started with."""

    url: str
    database_url: str
    env: dict[str, str]
    log_path: Path

    def flask(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run `flask --app wsgi <args>` against this server's database."""
        return subprocess.run(
            [*_tool("flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )

    def create_admin(self, username: str, email_address: str, password: str) -> None:
        self.flask(
            "create-admin",
            "--username",
            username,
            "--email",
            email_address,
            "--password-stdin",
            stdin=password + "\n",
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Poll /healthz until the server answers (it takes a moment to boot)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log_path.read_text()
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the app did not answer on {url}:\n{log_path.read_text()}")


@contextmanager
def live_server(
    tmp_dir: Path,
    smtp_port: int | None = None,
    extra_env: dict[str, str] | None = None,
    database: str = "browser",
) -> Iterator[LiveServer]:
    """Migrate a fresh database, serve the app with gunicorn, and stop it afterwards.

    `database` names the database (on PostgreSQL, `<TEST_DATABASE_URL's>_<database>`),
    so a second server beside the session's gets one of its own.
    """
    database_url = fresh_database(tmp_dir, database)
    port = free_port()
    # Served on loopback and opened as localhost: a passkey's relying party ID
    # is PUBLIC_URL's host, and browsers refuse an IP address there.
    url = f"http://localhost:{port}"
    env = {
        **os.environ,
        "WEBAPP_ENV": "testing",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "BCRYPT_ROUNDS": "4",
        "RATELIMIT_ENABLED": "0",
        "COOKIE_SECURE": "0",
        "PUBLIC_URL": url,
        # The mail is sent before the response, so the test finds it in the mailbox.
        "MAIL_SEND_SYNC": "1",
        "MAIL_SERVER": "127.0.0.1" if smtp_port else "",
        "MAIL_PORT": str(smtp_port or 25),
        "MAIL_USE_TLS": "0",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    env.pop("TEST_DATABASE_URL", None)
    server = LiveServer(url=url, database_url=database_url, env=env, log_path=tmp_dir / "app.log")
    server.flask("db", "upgrade")
    with server.log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            [
                *_tool("gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(url, process, server.log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
