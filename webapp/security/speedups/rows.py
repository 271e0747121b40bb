"""ORM instances built from one row of a joined select, for the reads of the hot paths.

SQLAlchemy's ORM loading (result processors, loader strategies, identity-map
bookkeeping) costs more CPU than the query itself. The reads that run on
every signed-in request and every remember-cookie sign-in select whole
tables joined in one row (`prepared.Prepared`), and the instances are built from it
directly: detached with every column loaded, then adopted by the request's
session (`extensions.adopt`), so a view that changes one and commits works
as if the session had loaded it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import FromClause, select
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import instance_state

from webapp.extensions import adopt
from webapp.security.speedups.prepared import Prepared


class Hydrating:
    """A select of whole tables (and each mapper's SQL-expression attributes), split per mapper.

    Whole tables are selected, not their columns one by one: the statement's
    cache key, hashed at every execution, is then a few names.
    """

    def __init__(self, mappers: tuple[Mapper, ...], from_clause: FromClause, *criteria) -> None:
        self.parts: list[tuple[Mapper, list[str], int, int]] = []
        entries: list[Any] = []
        width = 0
        for mapper in mappers:
            table = mapper.local_table
            by_column = {prop.columns[0]: prop.key for prop in mapper.column_attrs}
            keys = [by_column[column] for column in table.c]
            # Attributes that are SQL expressions (User.has_second_factor), after the table.
            computed = [prop for prop in mapper.column_attrs if prop.key not in keys]
            keys += [prop.key for prop in computed]
            self.parts.append((mapper, keys, width, width + len(keys)))
            entries += [table, *(prop.expression for prop in computed)]
            width += len(keys)
        self.statement = Prepared(select(*entries).select_from(from_clause).where(*criteria))

    def first(self, connection: Any, params: Mapping[str, Any]) -> list | None:
        """Run the select; return one instance a mapper, adopted, or None for no row."""
        row = self.statement.first(connection, params)
        if row is None:
            return None
        return adopt(
            [hydrate(mapper, keys, row[start:end]) for mapper, keys, start, end in self.parts]
        )


def hydrate(mapper: Mapper, keys: list[str], values: tuple) -> Any:
    """Return an instance built from a row: detached, with every column loaded.

    What the ORM's loading does, by hand: a new instance with its state
    (`ClassManager.new_instance`), the row's values in its dict, and its
    identity key. The public way (the constructor, then
    `make_transient_to_detached`) cost several times as much, well over
    the 5 % of a signed-in request that keeps an internal (issue 24,
    bench/RESULTS.md); docs/UPGRADING.md lists it, and
    tests/test_speedups.py fails if a release changes it.
    """
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(zip(keys, values, strict=True))
    instance_state(instance).key = mapper.identity_key_from_primary_key(
        [values[keys.index(c.key)] for c in mapper.primary_key]
    )
    return instance
