"""The hot paths' prepared statements (security/prepared.py) behave as SQLAlchemy's own execution.

They skip SQLAlchemy's per-execution bookkeeping, so these tests hold
them to what that bookkeeping gives: values converted as the ORM loads
them, statements visible to cursor events, errors raised as SQLAlchemy's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import DBAPIError

from tests.conftest import login
from webapp.extensions import autocommit_connection, db
from webapp.models import RefreshToken
from webapp.security.speedups.prepared import PooledConnection, Prepared


@pytest.fixture(params=["sqlalchemy", "pooled"])
def connect(request, app):
    """Open a connection of either kind Prepared runs on."""
    if request.param == "sqlalchemy":
        return autocommit_connection
    return lambda: PooledConnection(db.engine)


DEVICES = RefreshToken.__table__


def only_device() -> RefreshToken:
    db.session.expire_all()
    return db.session.scalars(select(RefreshToken)).one()


def test_a_row_reads_as_the_orm_loads_it(client, user, connect):
    login(client, remember=True)
    device = only_device()
    statement = Prepared(
        select(DEVICES).where(
            DEVICES.c.id == bindparam("device_id"), DEVICES.c.user_id == bindparam("user_id")
        )
    )
    with connect() as connection:
        row = statement.first(connection, {"device_id": device.id, "user_id": user.id})
        missing = statement.first(connection, {"device_id": device.id, "user_id": uuid.uuid4()})
    assert missing is None
    loaded = {column.key: getattr(device, column.key) for column in DEVICES.c}
    assert dict(zip([column.key for column in DEVICES.c], row, strict=True)) == loaded
    assert isinstance(row[DEVICES.c.keys().index("user_id")], uuid.UUID)
    created_at = row[DEVICES.c.keys().index("created_at")]
    assert created_at.tzinfo is not None and created_at.utcoffset() == timedelta(0)
    assert row[DEVICES.c.keys().index("is_remembered")] is True


def test_a_write_converts_its_values_and_commits_at_once(client, user, connect):
    login(client)
    device = only_device()
    when = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    statement = Prepared(
        update(DEVICES)
        .where(DEVICES.c.id == bindparam("device_id"))
        .values(last_used_at=bindparam("when"))
    )
    with connect() as connection:
        assert statement.execute(connection, {"device_id": device.id, "when": when}) == 1
        assert statement.execute(connection, {"device_id": -1, "when": when}) == 0
    # Read back on another connection: committed, and the same instant.
    assert only_device().last_used_at == when


def test_cursor_events_see_the_statements(app, client, user, count_queries, connect):
    login(client)
    device = only_device()
    statement = Prepared(select(DEVICES.c.id).where(DEVICES.c.id == bindparam("device_id")))
    with count_queries() as statements, connect() as connection:
        assert statement.first(connection, {"device_id": device.id}) == (device.id,)
    assert len(statements) == 1
    assert statements[0].startswith("SELECT refresh_tokens.id")


def test_a_signed_in_request_is_still_one_counted_query(client, user, count_queries):
    login(client)
    client.get("/account")
    with count_queries() as statements:
        assert client.get("/account").status_code == 200
    assert len(statements) == 1


def test_a_database_error_is_raised_as_sqlalchemys(app, connect):
    statement = Prepared(select(text("id")).select_from(text("no_such_table")))
    with connect() as connection, pytest.raises(DBAPIError) as raised:
        statement.first(connection, {})
    assert isinstance(raised.value.orig, connection.dialect.loaded_dbapi.Error)
    assert "no_such_table" in str(raised.value)
    # The connection is still good for the next statement.
    with autocommit_connection() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def test_a_pooled_connection_goes_back_to_the_pool_as_it_came(app, client, user):
    """Autocommit (PostgreSQL) ends with the read: the next user of it has transactions."""
    login(client)
    device = only_device()
    statement = Prepared(select(DEVICES.c.name).where(DEVICES.c.id == bindparam("device_id")))
    before = db.engine.pool.checkedout()
    with PooledConnection(db.engine) as connection:
        raw = connection.connection.dbapi_connection
        assert statement.first(connection, {"device_id": device.id}) == (None,)
        assert db.engine.pool.checkedout() == before + 1
    assert db.engine.pool.checkedout() == before
    if db.engine.dialect.name == "postgresql":
        assert raw.autocommit is False
    else:
        assert raw.in_transaction is False


def test_a_lost_pooled_connection_is_replaced(app, client, user):
    login(client)
    statement = Prepared(select(DEVICES.c.id))
    with PooledConnection(db.engine) as connection:
        connection.invalidate(RuntimeError("the server went away"))
    with PooledConnection(db.engine) as connection:
        assert statement.first(connection, {}) is not None


def test_a_pooled_connection_that_cannot_connect_raises_sqlalchemys_error(tmp_path):
    """An outage is SQLAlchemy's OperationalError, which the app answers with a 503."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'app.db'}")
    with pytest.raises(OperationalError):
        PooledConnection(engine)
