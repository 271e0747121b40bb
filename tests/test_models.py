"""The data model: constraints, cascades, restrictions and aware timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import RefreshToken, Role, User
from webapp.security.devices import create_device


def test_user_id_is_a_uuid_and_timestamps_come_back_aware(user):
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    assert isinstance(fresh.id, uuid.UUID)
    for value in (fresh.created_at, fresh.updated_at, fresh.role.created_at):
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - fresh.created_at) < timedelta(minutes=1)


def test_updated_at_changes_on_update(user):
    before = user.updated_at
    user.is_active = False
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(User, user.id).updated_at > before


def test_naive_datetimes_are_refused(user):
    device, _ = create_device(user, remember=False, user_agent=None, ip_address=None)
    device.expires_at = datetime(2030, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(Exception, match="naive"):
        db.session.commit()
    db.session.rollback()


def test_device_properties(user):
    device, _ = create_device(user, remember=True, user_agent=None, ip_address=None)
    assert device.is_valid and not device.is_expired
    device.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert device.is_expired and not device.is_valid
    device.expires_at = datetime.now(UTC) + timedelta(days=1)
    device.is_revoked = True
    assert not device.is_valid


def test_deleting_a_user_deletes_their_devices_in_the_database(user):
    create_device(user, remember=True, user_agent=None, ip_address=None)
    db.session.commit()
    # Bypass the ORM: the database's ON DELETE CASCADE does the work.
    db.session.execute(text("DELETE FROM users"))
    db.session.commit()
    assert db.session.scalars(select(RefreshToken)).all() == []


def test_deleting_a_role_held_by_users_is_restricted(user):
    role = db.session.scalars(select(Role).where(Role.name == "user")).one()
    with pytest.raises(IntegrityError):
        db.session.execute(text("DELETE FROM roles WHERE id = :id"), {"id": role.id})
        db.session.commit()
    db.session.rollback()
    assert db.session.get(User, user.id) is not None


def test_username_and_email_are_unique_in_the_database(user, make_user):
    from webapp.domain.users import DuplicateAccount, create_user

    with pytest.raises(DuplicateAccount) as taken:
        create_user("alice", "other@example.com", "some password!")
    assert taken.value.field == "username"
    with pytest.raises(DuplicateAccount) as taken:
        create_user("alice2", "alice@example.com", "some password!")
    assert taken.value.field == "email"


def test_series_is_unique(user):
    """A remember cookie names its device by series: two devices can never share one."""
    first, _ = create_device(user, remember=True, user_agent=None, ip_address=None)
    db.session.commit()
    second, _ = create_device(user, remember=True, user_agent=None, ip_address=None)
    second.series = first.series
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
