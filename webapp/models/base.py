"""The declarative base, constraint naming and the aware-UTC timestamp type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


# Attaches the zone to a naive datetime as replace(tzinfo=UTC) does, without
# parsing keywords as replace does (it runs for every datetime column read).
_combine = datetime.combine


def _as_utc(value: datetime | None) -> datetime | None:
    """Return a timestamp read back as aware UTC: naive ones (SQLite) are UTC by construction."""
    if value is None:
        return None
    if value.tzinfo is None:
        return _combine(value.date(), value.time(), UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware.

    PostgreSQL keeps the zone (timestamptz); SQLite drops it, so values read
    back naive are UTC by construction and get their zone back here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return _as_utc(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any]:
        """Return the dialect's own processor and the UTC step, in one function.

        Same results as TypeDecorator's generic version (which calls
        `process_result_value`), without its two extra Python calls a value:
        a page of 100 devices reads 300 timestamps.
        """
        impl_processor = self.impl_instance.result_processor(dialect, coltype)
        if impl_processor is None:
            return _as_utc

        def process(value: Any) -> datetime | None:
            value = impl_processor(value)
            if value is None:
                return None
            if value.tzinfo is None:
                return _combine(value.date(), value.time(), UTC)
            return value.astimezone(UTC)

        return process


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def in_models(obj, name, type_, reflected, compare_to) -> bool:
    """Tell Alembic's comparison what the models describe.

    The trigram search indexes exist only on PostgreSQL (migration 0004), so
    the models leave them out and the comparison skips them.
    """
    return not (type_ == "index" and name and name.endswith("_trgm"))
