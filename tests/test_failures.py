"""The database going away: 503 pages, nobody signed in, recovery without a restart.

These tests put a small TCP relay between the app and PostgreSQL, so the
database can "go down" and "come back" without touching the server.
"""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.conftest import (
    TEST_PASSWORD,
    IsolatedClient,
    cookie,
    csrf_token,
    empty_tables,
    login,
)
from tests.databases import fresh_postgres_database
from webapp import create_app
from webapp.extensions import db
from webapp.models import Base

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Relay:
    """Forward a loopback port to PostgreSQL; `down()` drops every connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.close()
        self.sockets: list[socket.socket] = []
        self.running = False

    def up(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        self.running = False
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.sockets.clear()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


def postgres_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def relayed_app(tmp_path):
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    direct = fresh_postgres_database(PG_URL, "test_failover")
    url = make_url(direct)
    engine = create_engine(direct)
    Base.metadata.create_all(engine)
    engine.dispose()
    empty_tables(direct)

    relay = Relay(("127.0.0.1", 5432))
    relay.up()
    relayed = url.set(port=relay.port, query={"connect_timeout": "2"})
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": relayed.render_as_string(hide_password=False),
            "BCRYPT_ROUNDS": 4,
            "RATELIMIT_ENABLED": False,
        }
    )
    app.test_client_class = IsolatedClient
    with app.app_context():
        from webapp.domain.users import create_user

        create_user("alice", "alice@example.com", TEST_PASSWORD)
        db.session.commit()
        yield app, relay
        relay.down()
        db.session.remove()
        db.engine.dispose()


def test_database_down_gives_503_and_recovers_by_itself(relayed_app):
    app, relay = relayed_app
    signed_in = app.test_client()
    login(signed_in, remember=True)
    remember = cookie(signed_in, app.config["REMEMBER_DEVICE_COOKIE_NAME"]).value
    assert signed_in.get("/account").status_code == 200

    visitor = app.test_client()
    token = csrf_token(visitor, "/login")

    relay.down()
    # The login form needs no database, so it still renders...
    assert visitor.get("/login").status_code == 200
    # ...but nothing that reads or writes accounts succeeds, and nothing leaks.
    attempt = {"csrf_token": token, "identifier": "alice", "password": TEST_PASSWORD}
    for response in [
        signed_in.get("/account"),
        visitor.post("/login", data=attempt),
        app.test_client().get("/healthz"),
    ]:
        body = response.get_data(as_text=True)
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        for leak in ["Traceback", "OperationalError", "psycopg", "SELECT", "5432"]:
            assert leak not in body
    cookie_only = app.test_client()
    cookie_only.set_cookie(app.config["REMEMBER_DEVICE_COOKIE_NAME"], remember)
    failed = cookie_only.get("/account")
    assert failed.status_code == 503
    assert "Log out" not in failed.get_data(as_text=True)  # nobody is signed in
    assert app.test_client().get("/healthz").get_json() == {"status": "unavailable"}

    relay.up()
    assert signed_in.get("/account").status_code == 200
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


def test_database_at_a_closed_port_gives_503(tmp_path):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"
            "?connect_timeout=2"
        }
    )
    client = app.test_client()
    assert client.get("/healthz").status_code == 503
    response = client.get("/")
    assert response.status_code in (200, 503)  # the landing page needs no database
    assert client.get("/login").status_code == 200
    assert client.get("/account").status_code in (302, 503)
