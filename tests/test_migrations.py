"""Migrations: upgrade from empty, downgrade to base, upgrade again; schema matches models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import database_url, is_postgres
from tests.databases import fresh_postgres_database
from webapp import create_app
from webapp.extensions import db
from webapp.models import Base
from webapp.models.base import in_models


@pytest.fixture
def migration_url(tmp_path) -> str:
    """An empty database of its own, so the main test schema is left alone."""
    url = database_url(tmp_path, "migrations")
    if not is_postgres(url):
        return url
    return fresh_postgres_database(url, f"{make_url(url).database}_migrations")


@pytest.fixture
def migration_app(migration_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": migration_url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def table_names() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def pending_changes() -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": in_models}
        )
        return compare_metadata(context, Base.metadata)


def test_single_head(migration_app):
    script = ScriptDirectory.from_config(migration_app.extensions["migrate"].migrate.get_config())
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_upgrade(migration_app):
    upgrade()
    assert table_names() == {
        "roles",
        "users",
        "refresh_tokens",
        "audit_events",
        "email_tokens",
        "totp_authenticators",
        "recovery_codes",
        "security_events",
        "known_browsers",
        "webauthn_credentials",
        "webauthn_challenges",
        "outbox",
        "mfa_tokens",
    }
    with db.engine.connect() as conn:
        roles = conn.scalars(text("SELECT name FROM roles ORDER BY name")).all()
    assert roles == ["admin", "user"]
    search_indexes = {
        index["name"]
        for index in inspect(db.engine).get_indexes("users")
        if index["name"].endswith("_trgm")
    }
    if db.engine.dialect.name == "postgresql":
        assert search_indexes == {"ix_users_username_trgm", "ix_users_email_trgm"}
    else:
        assert search_indexes == set()  # SQLite has no trigram index
    downgrade(revision="base")
    assert table_names() == set()
    upgrade()
    assert pending_changes() == []


def test_migrated_schema_matches_the_models(migration_app):
    upgrade()
    assert pending_changes() == []


def test_devices_migration_keeps_existing_rows(migration_app):
    """Upgrading a database that holds data fills the new columns sensibly."""
    upgrade(revision="0001_initial")
    with db.engine.begin() as conn:
        role_id = conn.scalar(text("SELECT id FROM roles WHERE name = 'user'"))
        user_id = (
            "0" * 32
            if db.engine.dialect.name == "sqlite"
            else "0" * 8 + "-0000-0000-0000-" + "0" * 12
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, email, password_hash, role_id, is_active, "
                "created_at, updated_at) VALUES (:id, 'old', 'old@example.com', 'x', :role, "
                "TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": user_id, "role": role_id},
        )
        conn.execute(
            text(
                "INSERT INTO refresh_tokens (user_id, token_hash, expires_at, is_revoked, "
                "created_at) VALUES (:id, 'abc', CURRENT_TIMESTAMP, FALSE, CURRENT_TIMESTAMP)"
            ),
            {"id": user_id},
        )
    upgrade()
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT is_remembered, last_used_at IS NOT NULL FROM refresh_tokens")
        ).one()
    assert bool(row[0]) is True and bool(row[1]) is True
    downgrade(revision="0001_initial")
    with db.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM refresh_tokens")) == 1


def test_two_factor_migration_requires_it_of_admins_and_keeps_devices(migration_app):
    """The admin role requires two-factor; devices from before passed none."""
    upgrade(revision="0004_search_trigrams")
    with db.engine.begin() as conn:
        role_id = conn.scalar(text("SELECT id FROM roles WHERE name = 'admin'"))
        user_id = (
            "1" * 32
            if db.engine.dialect.name == "sqlite"
            else "1" * 8 + "-1111-1111-1111-" + "1" * 12
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, email, password_hash, role_id, is_active, "
                "created_at, updated_at) VALUES (:id, 'boss', 'boss@example.com', 'x', :role, "
                "TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": user_id, "role": role_id},
        )
        conn.execute(
            text(
                "INSERT INTO refresh_tokens (user_id, expires_at, is_revoked, created_at, "
                "last_used_at) VALUES (:id, CURRENT_TIMESTAMP, FALSE, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)"
            ),
            {"id": user_id},
        )
    upgrade()
    with db.engine.connect() as conn:
        required = dict(conn.execute(text("SELECT name, mfa_required FROM roles")).all())
        device = conn.execute(text("SELECT mfa_at, auth_method FROM refresh_tokens")).one()
    assert {name: bool(flag) for name, flag in required.items()} == {"admin": True, "user": False}
    assert tuple(device) == (None, None)
    downgrade(revision="0004_search_trigrams")
    with db.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM refresh_tokens")) == 1
        assert conn.scalar(text("SELECT count(*) FROM users")) == 1
