"""The hot paths' statements, compiled once and run on the connection's DBAPI cursor.

SQLAlchemy's execution of an already compiled, cached statement still
costs several times the SQLite query it runs: a cache key, an
execution context, a result object, a transaction begun and rolled back.
A signed-in request runs one such read and a remember-cookie sign-in a
read and a write, so those few statements skip that machinery and keep
what matters of it:

- SQLAlchemy compiles them (once per dialect) and its own bind and result
  processors convert the values, so a row is what the ORM would load;
- the connection's `before_cursor_execute` and `after_cursor_execute`
  events fire (with no execution context, which SQLAlchemy allows), so
  query counters and tracing see these statements like any other;
- a DBAPI error is raised as SQLAlchemy's (an outage is still an
  `OperationalError`), and a lost connection is invalidated in the pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql import Executable


class _Plan:
    """One statement compiled for one dialect, with its value converters."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = compiled.positional
        # In the order the paramstyle wants: positions (SQLite's "?"), or names.
        names = compiled.positiontup if compiled.positional else compiled.binds
        self.names = tuple(names or ())
        self.unique_names = tuple(dict.fromkeys(self.names))
        self.bind_processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.bind_processors[name] = processor
        self.result_processors: list[tuple[int, Callable[[Any], Any]]] = []
        if statement.is_select:
            for index, column in enumerate(statement.selected_columns):
                processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
                if processor is not None:
                    self.result_processors.append((index, processor))

    def parameters(self, params: Mapping[str, Any]) -> tuple | dict:
        processors = self.bind_processors
        values = {
            name: processors[name](params[name]) if name in processors else params[name]
            for name in self.unique_names
        }
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values

    def convert(self, row: tuple) -> tuple:
        values = list(row)
        for index, processor in self.result_processors:
            values[index] = processor(values[index])
        return tuple(values)


class Prepared:
    """A Core statement run without SQLAlchemy's per-execution bookkeeping.

    Meant for a few fixed statements on paths that run on every request;
    everything else goes through SQLAlchemy as usual.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: dict[Dialect, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect)
        if plan is None:
            plan = self._plans[dialect] = _Plan(self.statement, dialect)
        return plan

    def first(
        self, connection: Connection | PooledConnection, params: Mapping[str, Any]
    ) -> tuple | None:
        """Run a select; return its first row, converted, or None."""
        plan = self._plan(connection.dialect)
        row = self._run(connection, plan, params, fetch=True)
        return None if row is None else plan.convert(row)

    def execute(self, connection: Connection | PooledConnection, params: Mapping[str, Any]) -> int:
        """Run a write and commit it at once; return the number of rows it matched.

        The connection must have no transaction of SQLAlchemy's open: the
        commit is the DBAPI connection's (a no-op in autocommit mode).
        """
        plan = self._plan(connection.dialect)
        return self._run(connection, plan, params, fetch=False)

    def _run(
        self,
        connection: Connection | PooledConnection,
        plan: _Plan,
        params: Mapping[str, Any],
        fetch: bool,
    ):
        parameters = plan.parameters(params)
        dbapi_connection = connection.connection
        cursor = dbapi_connection.cursor()
        events = connection.dispatch
        try:
            if events.before_cursor_execute:
                events.before_cursor_execute(connection, cursor, plan.sql, parameters, None, False)
            cursor.execute(plan.sql, parameters)
            if events.after_cursor_execute:
                events.after_cursor_execute(connection, cursor, plan.sql, parameters, None, False)
            if fetch:
                return cursor.fetchone()
            count = cursor.rowcount
            dbapi_connection.commit()
            return count
        except connection.dialect.loaded_dbapi.Error as error:
            lost = connection.dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                connection.invalidate(error)
            raise exc.DBAPIError.instance(
                plan.sql,
                parameters,
                error,
                connection.dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=connection.dialect,
            ) from error
        finally:
            with contextlib.suppress(connection.dialect.loaded_dbapi.Error):
                cursor.close()


class PooledConnection:
    """A pooled DBAPI connection with what `Prepared` uses of a SQLAlchemy Connection.

    For the statements of every signed-in request and remember-cookie
    sign-in: SQLAlchemy's `Connection` around the pooled connection costs
    as much again as the checkout and check-in themselves. Used as a
    context manager: the connection goes back to the pool (which rolls
    back whatever is open) at the end. On PostgreSQL it is in autocommit
    mode meanwhile: no BEGIN before a statement and no ROLLBACK after it,
    two round trips to the server. On SQLite it is left as is: pysqlite
    begins a transaction only before a write, which `Prepared.execute`
    commits.
    """

    __slots__ = ("connection", "dialect", "dispatch", "_autocommit")

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect
        # The engine's listeners, as a Connection of it would fire them.
        self.dispatch = engine.dispatch
        self._autocommit = self.dialect.name != "sqlite"
        try:
            self.connection = engine.raw_connection()
        except self.dialect.loaded_dbapi.Error as error:
            # Raised as SQLAlchemy's, as engine.connect() raises it (an outage: a 503).
            Connection._handle_dbapi_exception_noconnection(error, self.dialect, engine)

    def __enter__(self) -> PooledConnection:
        if self._autocommit:
            try:
                self.dialect.set_isolation_level(self.connection.dbapi_connection, "AUTOCOMMIT")
            except BaseException as error:
                self.connection.close()
                if isinstance(error, self.dialect.loaded_dbapi.Error):
                    Connection._handle_dbapi_exception_noconnection(error, self.dialect)
                raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        pooled = self.connection
        try:
            if self._autocommit and pooled.is_valid:
                self.dialect.reset_isolation_level(pooled.dbapi_connection)
        finally:
            pooled.close()

    def invalidate(self, error: BaseException) -> None:
        """Discard the connection (it was lost); the pool opens a new one next time."""
        self.connection.invalidate(error)
