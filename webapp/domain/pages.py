"""Keyset pagination, newest first: the admin lists and the activity page share it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import Select, or_

from webapp.extensions import db

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list and the cursors of its neighbours."""

    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None


def cursor(created_at: datetime, ident: object) -> str:
    """Return a row's position in a newest-first list: creation time and id."""
    micros = (created_at - EPOCH) // timedelta(microseconds=1)
    key = ident.hex if isinstance(ident, uuid.UUID) else str(ident)
    return f"{micros}_{key}"


def parse_cursor(text: str | None, id_type: type) -> tuple[datetime, object] | None:
    """Return the (created_at, id) a cursor names, or None if it is not one."""
    if not text or len(text) > 64:
        return None
    micros, _, key = text.partition("_")
    try:
        when = EPOCH + timedelta(microseconds=int(micros))
        if id_type is uuid.UUID:
            return when, uuid.UUID(hex=key)
        if not key.isdigit() or len(key) > 18:
            return None
        return when, int(key)
    except (ValueError, OverflowError):
        return None


def newest_first_page(
    stmt: Select, model, after: str | None, before: str | None, page_size: int = PAGE_SIZE
) -> Page:
    """Return one page of `stmt`, newest first by (created_at, id).

    Keyset pagination: an index on created_at (or on (owner, created_at, id))
    serves the order whatever the page, and one extra row tells whether
    there is a next page, so nothing is counted. `after` pages to older
    rows, `before` back to newer ones. One query, whatever the table size.
    """
    created, ident = model.created_at, model.id
    id_type = ident.type.python_type

    def cursor_of(row) -> str:
        return cursor(row.created_at, row.id)

    position = parse_cursor(before, id_type)
    if position is not None:
        when, key = position
        rows = list(
            db.session.scalars(
                stmt.where(created >= when, or_(created > when, ident > key))
                .order_by(created.asc(), ident.asc())
                .limit(page_size + 1)
            )
        )
        items = list(reversed(rows[:page_size]))
        has_newer = len(rows) > page_size
        return Page(
            items=items,
            next_cursor=cursor_of(items[-1]) if items else None,
            prev_cursor=cursor_of(items[0]) if has_newer and items else None,
        )
    position = parse_cursor(after, id_type)
    if position is not None:
        when, key = position
        stmt = stmt.where(created <= when, or_(created < when, ident < key))
    rows = list(
        db.session.scalars(stmt.order_by(created.desc(), ident.desc()).limit(page_size + 1))
    )
    items = rows[:page_size]
    return Page(
        items=items,
        next_cursor=cursor_of(items[-1]) if len(rows) > page_size else None,
        prev_cursor=cursor_of(items[0]) if position is not None and items else None,
    )
