"""The flask commands of the contract."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import login, set_up_totp
from webapp.extensions import db
from webapp.models import User

GOOD = "a long admin passphrase"


def create_admin(runner, *args, password=GOOD):
    return runner.invoke(args=["create-admin", *args, "--password-stdin"], input=password + "\n")


def test_create_admin_from_stdin_can_log_in(runner, client):
    result = create_admin(runner, "--username", "Boss", "--email", "Boss@Example.com")
    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User)).one()
    assert user.username == "boss" and user.email == "boss@example.com"
    assert user.role.name == "admin" and user.is_active
    assert GOOD not in result.output
    assert login(client, "boss", GOOD).headers["Location"] == "/account"
    # The admin role requires two-factor: the first sign-in asks to set it up.
    assert client.get("/admin/").headers["Location"] == "/account/security"
    set_up_totp(client)
    assert client.get("/admin/").status_code == 200


def test_create_admin_from_prompt(runner):
    result = runner.invoke(
        args=["create-admin", "--username", "boss", "--email", "boss@example.com"],
        input=f"{GOOD}\n{GOOD}\n",
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalars(select(User)).one().username == "boss"


def test_create_admin_refuses_duplicates_and_bad_input(runner, user):
    dup = create_admin(runner, "--username", "ALICE", "--email", "x@example.com")
    assert dup.exit_code != 0 and "already exists" in dup.output
    for args, password, message in [
        (["--username", "b", "--email", "b@example.com"], GOOD, "Username"),
        (["--username", "bob", "--email", "nope"], GOOD, "Email"),
        (["--username", "bob", "--email", "b@example.com"], "short", "Password"),
        (["--username", "bob", "--email", "b@example.com"], "password1234", "too easy to guess"),
    ]:
        result = create_admin(runner, *args, password=password)
        assert result.exit_code != 0 and message in result.output
    assert len(db.session.scalars(select(User)).all()) == 1


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    import pytest

    from webapp import create_app
    from webapp.config import ConfigError

    monkeypatch.setenv("WEBAPP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        create_app()


def test_development_keeps_its_generated_secret_key(monkeypatch, tmp_path):
    from webapp.config import load_config

    monkeypatch.setenv("WEBAPP_ENV", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config(str(tmp_path))["SECRET_KEY"]
    assert len(first) >= 32
    assert load_config(str(tmp_path))["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_defaults(monkeypatch, tmp_path):
    from webapp.config import load_config

    monkeypatch.setenv("WEBAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.delenv("COOKIE_SECURE", raising=False)
    config = load_config(str(tmp_path))
    assert config["COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert config["REMEMBER_DEVICE_COOKIE_NAME"] == "__Host-remember"
    assert config["REMEMBER_DAYS"] == 30 and config["REMEMBER_IDLE_DAYS"] == 14
    assert config["BCRYPT_ROUNDS"] >= 12
