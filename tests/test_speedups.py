"""The hot paths' own reads (webapp/security/speedups/rows.py) give what the ORM would.

A signed-in request builds its device, user and role from one row instead
of loading them through the ORM; a view may then change and commit them.
These tests hold the built instances to what `Session.execute(select(...))`
loads: the same values, the same identity, nothing pending, and changes
that commit like a loaded object's.
"""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session as OrmSession

from tests.conftest import login
from webapp.extensions import autocommit_connection, db
from webapp.models import RefreshToken, Role, User
from webapp.security import devices


def loaded_by_the_orm(device_id: int) -> tuple[RefreshToken, User, Role]:
    """The device, its user and the role, loaded by a session of their own."""
    with OrmSession(db.engine) as session:
        device = session.get(RefreshToken, device_id)
        user = device.user
        role = user.role
        for instance in (device, user, role):
            session.expunge(instance)
        return device, user, role


def column_values(instance) -> dict:
    mapper = inspect(instance).mapper
    return {prop.key: getattr(instance, prop.key) for prop in mapper.column_attrs}


def built_from_the_row(device_id: int, user_id) -> RefreshToken:
    with autocommit_connection() as connection:
        return devices._load_device(
            connection, devices._SESSION_DEVICE, {"device_id": device_id, "user_id": user_id}
        )


def test_built_instances_hold_what_the_orm_loads(app, client, user):
    login(client, remember=True)
    device_id = db.session.scalars(select(RefreshToken.id)).one()
    user_id = db.session.scalars(select(User.id)).one()
    db.session.remove()
    with app.test_request_context():
        built = built_from_the_row(device_id, user_id)
        expected = loaded_by_the_orm(device_id)
        for got, want in zip((built, built.user, built.user.role), expected, strict=True):
            assert type(got) is type(want)
            assert column_values(got) == column_values(want)
            state = inspect(got)
            assert state.key == inspect(want).key  # the same identity
            assert not state.modified and not state.expired_attributes
            assert state.persistent or state.detached


def test_a_built_user_changed_in_a_view_commits_like_a_loaded_one(app, client, user):
    """The request's session adopts the built instances: a change is one UPDATE, no reload."""
    login(client)
    device_id = db.session.scalars(select(RefreshToken.id)).one()
    user_id = db.session.scalars(select(User.id)).one()
    db.session.remove()
    with app.test_request_context():
        built = built_from_the_row(device_id, user_id)
        session = db.session()  # created after the read: it adopts what was built
        assert built in session and built.user in session and built.user.role in session
        assert not session.dirty and not session.new
        built.user.new_browser_alerts = False
        session.commit()
        db.session.remove()
    with OrmSession(db.engine) as session:
        assert session.get(User, user_id).new_browser_alerts is False


def test_an_instance_the_session_already_holds_wins(app, client, user):
    """As for a query: a row read again does not replace the session's own object."""
    login(client)
    device_id = db.session.scalars(select(RefreshToken.id)).one()
    user_id = db.session.scalars(select(User.id)).one()
    db.session.remove()
    with app.test_request_context():
        mine = db.session.get(User, user_id)
        built = built_from_the_row(device_id, user_id)
        assert built.user is mine
        db.session.remove()


def test_a_signed_in_request_is_still_one_counted_query(client, user, count_queries):
    """The signed-in read goes through SQLAlchemy's execution: query counters see it."""
    login(client)
    client.get("/account")
    with count_queries() as statements:
        assert client.get("/account").status_code == 200
    assert len(statements) == 1
    assert statements[0].lstrip().startswith("SELECT refresh_tokens.id")
